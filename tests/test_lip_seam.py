"""The lip seam of a head model, from its named regions or from its mesh topology, checked against
heads whose seams are known by construction: a small FLAME-topology head written as an official
FLAME pickle (a grid surface with a neck cut, an eye slit and a mouth slit), and the demo head with
its mouth cavity taken out; and the lip gap against rigid jaw rotation computed independently."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from being_kernel.errors import InputError
from being_kernel.head.data import HeadModelData
from being_kernel.head.demo_head import build_demo_head
from being_kernel.head.loaders import load_flame_pkl
from being_kernel.metrics.lipsync import (
    CLOSED_GAP_M,
    boundary_loops,
    has_lip_seam,
    head_for_motion_space,
    lip_gap,
    lip_seam,
    split_mouth_loop,
)
from being_kernel.types import DEMO_HEAD, FLAME_2020, Motion
from test_loaders import py2_pickle, write_flame_pkl

NR, NC = 14, 32  # grid rows (crown to neck cut) and columns around
MOUTH_ROW, MOUTH_COLS = 9, (13, 19)  # slit from column 13 to 19; 14..18 are cut in two
EYE_ROW, EYE_COLS = 5, (11, 21)  # a longer slit, not on the jaw (shorter than the neck cut, as in FLAME)
LINING_M = 0.004  # the mouth's lower edge sits this far below the upper one at rest, as in FLAME


@dataclasses.dataclass
class Grid:
    """A FLAME-topology test head and what its construction says about it."""

    arrays: dict[str, np.ndarray]  # the official FLAME file's arrays
    grid: np.ndarray  # [NR, NC] vertex index of each grid point (the upper side of a slit)
    copies: dict[str, np.ndarray]  # slit name -> lower-side copies of its inner columns, in column order
    jaw_joint: np.ndarray  # [3]


def grid_head(jaw: bool = True) -> Grid:
    """A head-sized surface of revolution, open at the bottom (the neck cut), with a vertex at the
    crown; along the mouth and eye slits the vertices are doubled (the copies belong to the faces
    below), so each slit is a hole whose ends are its corners. ``jaw``: the face below the mouth
    (and the mouth's lower edge) is skinned to the jaw; otherwise everything follows the root."""
    theta = np.linspace(0.35, 2.3, NR)  # polar angle from the crown
    phi = 2 * np.pi * np.arange(NC) / NC - np.pi  # column NC / 2 faces forward (+z)
    ring = lambda i, j: 0.1 * np.array([np.sin(theta[i]) * np.sin(phi[j]), np.cos(theta[i]),  # noqa: E731
                                        np.sin(theta[i]) * np.cos(phi[j])])
    points = [np.array([0.0, 0.1, 0.0])] + [ring(i, j) for i in range(NR) for j in range(NC)]
    grid = 1 + np.arange(NR * NC).reshape(NR, NC)
    copies, rows = {}, {}
    for name, row, (c0, c1), drop in (("mouth", MOUTH_ROW, MOUTH_COLS, LINING_M), ("eye", EYE_ROW, EYE_COLS, 0.0)):
        cols = np.arange(c0 + 1, c1)
        copies[name] = len(points) + np.arange(len(cols))
        points += [ring(row, j) - [0.0, drop, 0.0] for j in cols]
        rows[row] = dict(zip(cols.tolist(), copies[name].tolist()))
    faces = [[0, grid[0, (j + 1) % NC], grid[0, j]] for j in range(NC)]
    for i in range(NR - 1):
        top = [rows.get(i, {}).get(j, grid[i, j]) for j in range(NC)]
        for j in range(NC):
            a, b, c, d = top[j], top[(j + 1) % NC], grid[i + 1, (j + 1) % NC], grid[i + 1, j]
            faces += [[a, b, c], [a, c, d]]
    v = np.array(points)
    weights = np.zeros((len(v), 5))
    weights[:, 0] = 1.0
    if jaw:
        below = np.zeros(len(v), bool)
        below[grid[MOUTH_ROW + 1:NR - 2, 10:23].ravel()] = True  # lower lip and chin, not the neck
        below[copies["mouth"]] = True
        weights[below] = [0.0, 0.0, 1.0, 0.0, 0.0]
    regressor = np.zeros((5, len(v)))
    for k, ids in enumerate((grid[-1], grid[-2], grid[MOUTH_ROW - 1, [8, 24]], grid[EYE_ROW - 1, [19]],
                             grid[EYE_ROW - 1, [13]])):
        regressor[k, ids] = 1.0 / len(ids)
    rng = np.random.default_rng(0)
    arrays = {"v_template": v, "f": np.array(faces, np.uint32), "shapedirs": rng.normal(0.0, 1e-4, (len(v), 3, 304)),
              "posedirs": np.zeros((len(v), 3, 36)), "J_regressor": regressor, "weights": weights,
              "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)}
    return Grid(arrays, grid, copies, regressor[2] @ v)


def load(g: Grid, folder: Path, masks: dict[str, np.ndarray] | None = None) -> HeadModelData:
    path = write_flame_pkl(folder / "generic_model.pkl", g.arrays)
    if masks is not None:
        (folder / "FLAME_masks.pkl").write_bytes(py2_pickle(masks))
    return load_flame_pkl(path)


def slit(g: Grid, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, lower, corners) of a slit, by construction."""
    row, (c0, c1) = (MOUTH_ROW, MOUTH_COLS) if name == "mouth" else (EYE_ROW, EYE_COLS)
    return g.grid[row, c0 + 1:c1], g.copies[name], g.grid[row, [c0, c1]]


def test_boundary_loops_are_the_holes_of_the_construction() -> None:
    g = grid_head()
    loops = boundary_loops(g.arrays["f"].astype(np.int64))
    want = [set(g.grid[-1])] + [set(np.concatenate(slit(g, name))) for name in ("mouth", "eye")]
    assert sorted(map(set, loops), key=min) == sorted(want, key=min)
    edges = {tuple(sorted(e)) for f in g.arrays["f"].tolist() for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    for loop in loops:  # in walking order: each step is an edge of the mesh, and the loop closes
        assert all(tuple(sorted((int(a), int(b)))) in edges for a, b in zip(loop, np.roll(loop, -1)))


def test_the_seam_from_topology_encloses_the_mouth_hole(tmp_path: Path) -> None:
    g = grid_head()
    head = load(g, tmp_path)
    assert not head.regions  # no masks file: nothing is named, the topology and the rig must do
    upper, lower, corners = slit(g, "mouth")
    loop = next(l for l in boundary_loops(head.faces) if set(l) == set(np.concatenate([upper, lower, corners])))
    got_up, got_lo, got_corners = split_mouth_loop(loop, head.v_template)
    assert sorted(got_corners) == sorted(corners)  # the mouth corners: the loop's extreme-x vertices
    assert set(got_up) == set(upper) and set(got_lo) == set(lower)
    perimeter = {name: 2 * np.linalg.norm(np.diff(head.v_template[np.r_[c[0], u, c[1]]], axis=0), axis=1).sum()
                 for name, (u, _, c) in (("mouth", slit(g, "mouth")), ("eye", slit(g, "eye")))}
    assert perimeter["eye"] > perimeter["mouth"]
    seam = lip_seam(head)  # the mouth, not the longer eye slit: the mouth moves with the jaw
    assert "jaw" in seam.source
    centre = np.abs(head.v_template[upper, 0]) <= (head.v_template[corners[1], 0] - head.v_template[corners[0], 0]) / 6
    np.testing.assert_array_equal(np.sort(seam.upper), np.sort(upper[centre]))
    np.testing.assert_array_equal(seam.lower, lower[np.searchsorted(upper, seam.upper)])  # each faces its own copy
    assert seam.rest_gap == pytest.approx(LINING_M, rel=1e-5)


def test_the_lips_region_finds_the_mouth_where_nothing_follows_the_jaw(tmp_path: Path) -> None:
    g = grid_head(jaw=False)
    assert not has_lip_seam(load(g, tmp_path / "bare"))  # three holes, none on the jaw: which is the mouth?
    mouth = np.concatenate(slit(g, "mouth"))
    head = load(g, tmp_path / "masked", {"lips": np.unique(np.concatenate([mouth, g.grid[MOUTH_ROW + 1, 12:21]])),
                                         "boundary": g.grid[-1]})
    seam = lip_seam(head)
    assert "'lips' region" in seam.source and set(seam.upper) <= set(slit(g, "mouth")[0])


def test_the_demo_heads_seam_from_topology_matches_its_named_regions() -> None:
    head = build_demo_head()
    named = lip_seam(head)
    assert named.source.startswith("regions") and named.rest_gap == 0.0
    # FLAME has no mouth cavity: take the demo head's out, and its names, and find the seam again
    faces = head.faces[~np.isin(head.faces, head.regions["mouth_interior"]).any(axis=1)]
    derived = lip_seam(dataclasses.replace(head, faces=faces, regions={}))
    assert "jaw" in derived.source
    np.testing.assert_array_equal(derived.upper, named.upper)
    np.testing.assert_array_equal(derived.lower, named.lower)
    loop = next(l for l in boundary_loops(faces) if np.isin(l, head.regions["lip_inner_upper"]).any())
    up, lo, corners = split_mouth_loop(loop, head.v_template)
    assert set(up) == set(head.regions["lip_inner_upper"]) and set(lo) == set(head.regions["lip_inner_lower"])
    assert set(corners) == set(head.regions["mouth_corners"])


def test_lip_gap_against_a_rigid_jaw_rotation(tmp_path: Path) -> None:
    g = grid_head()
    head = load(g, tmp_path)
    seam = lip_seam(head)
    motion = Motion.zeros(3, 0, space=FLAME_2020)
    motion.jaw[1, 0], motion.jaw[2, 0] = 0.05, 0.2
    gap = lip_gap(motion, head)
    v = g.arrays["v_template"]
    for k, angle in enumerate((0.0, 0.05, 0.2)):
        # the lower edge is skinned to the jaw only: it turns rigidly about the jaw joint
        turned = Rotation.from_rotvec([angle, 0.0, 0.0]).apply(v[seam.lower] - g.jaw_joint) + g.jaw_joint
        want = np.linalg.norm(turned - v[seam.upper], axis=1).mean() - LINING_M
        assert gap[k] == pytest.approx(want, abs=2e-6)
    assert abs(gap[0]) < 1e-6 < CLOSED_GAP_M < gap[2]  # shut at rest although the edges are 4 mm apart


def test_the_default_head_is_that_of_the_motion_space() -> None:
    head = build_demo_head()
    motion = Motion.zeros(2, head.n_expression, space=DEMO_HEAD)
    motion.jaw[1, 0] = 0.2
    np.testing.assert_allclose(lip_gap(motion), lip_gap(motion, head))
    assert lip_gap(motion)[1] > 5e-3


def test_head_models_of_motion_spaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEING_FLAME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # FLAME is nowhere
    with pytest.raises(InputError, match="^no head model for motion space being-fake$"):
        head_for_motion_space("being-fake")
    with pytest.raises(InputError, match=r"^no head model for motion space flame2020: FLAME 2020 model "
                                         r"\(generic_model.pkl\)") as missing:
        head_for_motion_space(FLAME_2020)
    assert "flame.is.tue.mpg.de" in missing.value.hint  # where to get it
    load(grid_head(), tmp_path / "flame")  # the user's FLAME 2020 file, where $BEING_FLAME_DIR says
    monkeypatch.setenv("BEING_FLAME_DIR", str(tmp_path / "flame"))
    head = head_for_motion_space(FLAME_2020)
    assert head.motion_space == FLAME_2020 and has_lip_seam(head)
    motion = Motion.zeros(1, 4, space=FLAME_2020)
    motion.jaw[0, 0] = math.radians(10)
    assert lip_gap(motion, head)[0] > CLOSED_GAP_M
    assert head_for_motion_space(DEMO_HEAD) is build_demo_head()


def test_a_head_without_a_mouth_has_no_seam() -> None:
    head = build_demo_head()  # as it is: the mouth closed off by the cavity, the seam not named
    regions = {k: v for k, v in head.regions.items() if not k.startswith("lip_inner")}
    unnamed = dataclasses.replace(head, regions=regions)
    with pytest.raises(ValueError, match="moves with the jaw|'lips' region"):
        lip_seam(unnamed)
    assert not has_lip_seam(unnamed)
    with pytest.raises(ValueError, match="1 boundary loop"):
        lip_seam(dataclasses.replace(head, faces=head.faces[:1], regions={}))  # one triangle: one hole
    assert torch.isfinite(torch.as_tensor(lip_gap(Motion.zeros(1, 0, space=DEMO_HEAD)))).all()

"""The procedural demo head: layout, rig, regions, expression bases, and skinning with FlameModel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from being_kernel.head.data import FLAME_PARENTS
from being_kernel.head.demo.rig import JAW_JOINT
from being_kernel.head.demo.surface import EYE_X, EYE_Y, EYE_Z, EYEBALL_R, MOUTH_Y
from being_kernel.head.demo_head import DEMO_EXPRESSIONS, build_demo_head, expression_vector
from being_kernel.types import DEMO_HEAD, Motion

MM = 1e-3
REQUIRED_REGIONS = ("lips", "upper_lip", "lower_lip", "lip_inner_upper", "lip_inner_lower", "mouth_interior", "teeth",
                    "tongue", "eyes", "left_eyeball", "right_eyeball", "eyelids", "face", "scalp", "neck",
                    "neck_boundary")
REQUIRED_EXPRESSIONS = ("lip_corner_up_L", "lip_corner_up_R", "lip_corner_down_L", "lip_corner_down_R", "lip_stretch_L",
                        "lip_stretch_R", "lip_pucker", "lip_funnel", "upper_lip_raise", "lower_lip_down", "lips_press",
                        "lips_part", "cheek_puff", "brow_raise_L", "brow_raise_R", "brow_lower", "brow_inner_up",
                        "eye_blink_L", "eye_blink_R", "eye_squint_L", "eye_squint_R", "nose_wrinkle", "jaw_forward",
                        "mouth_left", "mouth_right")


@pytest.fixture(scope="module")
def head():
    return build_demo_head()


def posed(head, **weights) -> np.ndarray:
    """Neutral pose with the named expression weights applied (no skinning)."""
    return head.v_template + np.einsum("vce,e->vc", head.exprdirs, expression_vector(**weights))


def moved(head, name: str) -> np.ndarray:
    """[V] how far each vertex moves at weight 1 of expression ``name``."""
    return np.linalg.norm(head.exprdirs[:, :, DEMO_EXPRESSIONS[name]], axis=1)


def lip_gap(v, head) -> float:
    """Distance between the middle pair of lip seam vertices (the lips' opening at the centre)."""
    up, lo = head.regions["lip_inner_upper"], head.regions["lip_inner_lower"]
    k = len(up) // 2
    return float(np.linalg.norm(v[up[k]] - v[lo[k]]))


# ---- layout ------------------------------------------------------------------------------------

def test_layout_and_identity(head):
    head.validate()
    assert head.name == "being-demo-head" and head.motion_space == DEMO_HEAD
    assert 5_000 <= head.num_vertices <= 12_000
    assert head.n_expression == len(DEMO_EXPRESSIONS) == len(head.expression_names)
    assert list(DEMO_EXPRESSIONS) == head.expression_names
    assert set(REQUIRED_EXPRESSIONS) <= set(DEMO_EXPRESSIONS)
    assert np.array_equal(head.parents, FLAME_PARENTS)
    assert head.posedirs.shape == (head.num_vertices, 3, 36) and not head.posedirs.any()
    assert head.eyelid_dirs.shape == (head.num_vertices, 3, 2)
    for name in ("v_template", "exprdirs", "j_regressor", "lbs_weights", "uv_coords", "texture"):
        arr = getattr(head, name)
        assert arr.dtype == np.float32 and np.isfinite(arr).all(), name
    assert head.faces.dtype == np.int64 and head.uv_faces.dtype == np.int64
    assert head.texture.shape == (1024, 1024, 3) and 0 <= head.texture.min() and head.texture.max() <= 1
    assert 0 <= head.uv_coords.min() and head.uv_coords.max() <= 1
    height = np.ptp(head.v_template[:, 1])
    assert 0.22 < height < 0.32  # head and neck, metres


def test_build_is_deterministic_and_cached(head):
    assert build_demo_head() is head
    other = build_demo_head.__wrapped__()
    for name in ("v_template", "faces", "exprdirs", "eyelid_dirs", "j_regressor", "lbs_weights", "uv_coords",
                 "uv_faces", "texture"):
        assert np.array_equal(getattr(other, name), getattr(head, name)), name
    assert other.regions.keys() == head.regions.keys()
    assert all(np.array_equal(other.regions[k], head.regions[k]) for k in head.regions)


def test_mesh_is_consistently_oriented_and_open_only_at_neck_and_eyes(head):
    f = head.faces
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # no edge used twice in one direction
    undirected, count = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert count.max() == 2
    border = np.unique(undirected[count == 1])
    allowed = np.concatenate([head.regions[k] for k in ("neck_boundary", "left_lid_upper_edge", "left_lid_lower_edge",
                                                        "right_lid_upper_edge", "right_lid_lower_edge",
                                                        "left_eye_corners", "right_eye_corners")])
    assert set(border.tolist()) <= set(allowed.tolist())
    assert set(head.regions["neck_boundary"].tolist()) <= set(border.tolist())
    # outward: the skin's normals point away from the head's centre on the face
    v = head.v_template.astype(np.float64)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    c = v[f].mean(axis=1)
    face = np.isin(f, head.regions["face"]).all(axis=1)
    assert ((n[face] * (c[face] - [0, 0, -0.01])).sum(axis=1) > 0).mean() > 0.97


def test_regions_exist_and_are_consistent(head):
    r = head.regions
    for name in REQUIRED_REGIONS:
        assert name in r and r[name].dtype == np.int64 and r[name].size > 0, name
    assert set(r["lips"].tolist()) == set(r["upper_lip"].tolist()) | set(r["lower_lip"].tolist())
    assert set(r["eyes"].tolist()) == set(r["left_eyeball"].tolist()) | set(r["right_eyeball"].tolist())
    assert set(r["teeth"].tolist()) | set(r["tongue"].tolist()) <= set(r["mouth_interior"].tolist())
    assert len(r["lip_inner_upper"]) == len(r["lip_inner_lower"])
    assert not set(r["lip_inner_upper"].tolist()) & set(r["lip_inner_lower"].tolist())
    nb = head.v_template[r["neck_boundary"]]
    assert np.ptp(nb[:, 1]) < 2 * MM and nb[:, 1].max() <= head.v_template[:, 1].min() + 2 * MM


def test_texture_colours(head):
    tex, uv, uvf = head.texture, head.uv_coords, head.uv_faces

    def colour(vertices):
        """Mean texel colour at the uv of the given vertices."""
        f, k = np.nonzero(np.isin(head.faces, vertices))
        t = uv[uvf[f, k]]
        i = np.clip(((1 - t[:, 1]) * tex.shape[0]).astype(int), 0, tex.shape[0] - 1)
        j = np.clip((t[:, 0] * tex.shape[1]).astype(int), 0, tex.shape[1] - 1)
        return tex[i, j].mean(axis=0)

    v = head.v_template
    skin = colour(head.regions["face"][(v[head.regions["face"], 1] > 0.05)])  # forehead
    lips = colour(head.regions["lips"][np.abs(v[head.regions["lips"], 0]) < 0.012])
    eye = head.regions["left_eyeball"]
    pupil = colour(eye[np.argmax(v[eye, 2])])
    hair = colour(head.regions["scalp"])
    teeth = colour(head.regions["teeth"])
    assert lips[0] / lips[1] > skin[0] / skin[1] * 1.3  # lips redder than skin
    assert pupil.max() < 0.1 and hair.mean() < 0.6 * skin.mean() and teeth.min() > 0.6


# ---- rig ---------------------------------------------------------------------------------------

def test_skinning_weights(head):
    w = head.lbs_weights
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5) and w.min() >= 0
    for region, j in (("left_eyeball", 3), ("right_eyeball", 4)):
        assert np.allclose(w[head.regions[region], j], 1.0)
    for region in ("lower_teeth", "tongue"):
        assert np.allclose(w[head.regions[region], 2], 1.0)
    assert np.allclose(w[head.regions["upper_teeth"], 1], 1.0)
    assert np.allclose(w[head.regions["neck_boundary"], 0], 1.0)
    assert np.allclose(w[head.regions["scalp"], 1], 1.0)
    jaw = w[:, 2]
    assert jaw[head.regions["lip_inner_lower"]].min() > 0.6 and jaw[head.regions["lip_inner_upper"]].max() < 0.4
    # smooth: along every mesh edge of the skin the jaw weight changes by well under 1
    f = head.faces[np.isin(head.faces, head.regions["face"]).all(axis=1)]
    for a, b in ((0, 1), (1, 2), (2, 0)):
        assert np.abs(jaw[f[:, a]] - jaw[f[:, b]]).max() < 0.55


def test_joint_regressor_places_joints(head):
    reg = head.j_regressor
    assert np.allclose(reg.sum(axis=1), 1.0, atol=1e-5) and reg.min() >= -1e-7
    v = head.v_template.astype(np.float64)
    joints = reg.astype(np.float64) @ v
    nb = v[head.regions["neck_boundary"]]
    root, neck, jaw, left, right = joints
    # root: centre of the neck's bottom ring
    assert abs(root[0]) < 1e-4 and abs(root[1] - nb[:, 1].mean()) < 1 * MM
    assert nb[:, 2].min() + 0.03 < root[2] < nb[:, 2].max() - 0.03
    # neck: on the axis of the neck, above the root, below the chin
    chin_y = v[head.regions["face"], 1].min()
    assert abs(neck[0]) < 1e-4 and root[1] + 0.015 < neck[1] < chin_y
    # jaw: on the midline, near the ears (between the temporomandibular joints)
    ears = np.stack([v[head.regions["left_ear"]].mean(0), v[head.regions["right_ear"]].mean(0)])
    assert np.linalg.norm(jaw - JAW_JOINT) < 1 * MM and abs(jaw[0]) < 1e-4
    assert np.linalg.norm(jaw - ears.mean(0)) < 0.025
    assert abs(jaw[1] - ears[:, 1].mean()) < 0.02
    # eyes: the eyeball centres
    assert np.linalg.norm(left - [EYE_X, EYE_Y, EYE_Z]) < 0.1 * MM
    assert np.linalg.norm(right - [-EYE_X, EYE_Y, EYE_Z]) < 0.1 * MM
    for j, region in ((3, "left_eyeball"), (4, "right_eyeball")):
        r = np.linalg.norm(v[head.regions[region]] - joints[j], axis=1)
        assert np.allclose(r, EYEBALL_R, atol=1e-5)


# ---- neutral -----------------------------------------------------------------------------------

def test_lips_closed_at_rest(head):
    v = head.v_template
    up, lo = v[head.regions["lip_inner_upper"]], v[head.regions["lip_inner_lower"]]
    d = np.linalg.norm(up[:, None] - lo[None], axis=-1)
    assert d.min() < 1 * MM
    assert np.linalg.norm(up - lo, axis=1).max() < 1e-6  # every seam pair coincides
    assert np.all(np.diff(up[:, 0]) > 0)  # ordered left to right (-x to +x)


def test_eyes_open_at_rest_and_lids_clear_the_eyeballs(head):
    v = head.v_template
    for s in ("left", "right"):
        gap = np.linalg.norm(v[head.regions[f"{s}_lid_upper_edge"]] - v[head.regions[f"{s}_lid_lower_edge"]], axis=1)
        assert gap.max() > 7 * MM


def test_teeth_and_tongue_inside_behind_the_lips(head):
    v = head.v_template
    lip_front = v[head.regions["lips"], 2].max()
    seam = v[head.regions["lip_inner_upper"]]
    cav = v[head.regions["mouth_cavity"]]
    for region in ("teeth", "tongue"):
        p = v[head.regions[region]]
        assert p[:, 2].max() < lip_front - 10 * MM, region
        # behind the lip seam at every height of the mouth opening
        seam_z = np.interp(p[:, 0], seam[:, 0], seam[:, 2])
        assert (p[:, 2] < seam_z - 3 * MM).all(), region
        assert (p.min(0) > cav.min(0)).all() and (p.max(0) < cav.max(0)).all(), region
    # the cavity itself lies inside the head: behind the lips and within the skin's width
    skin = v[head.regions["face"]]
    assert cav[:, 2].max() <= lip_front and np.abs(cav[:, 0]).max() < np.abs(skin[:, 0]).max() - 0.02


# ---- expressions -------------------------------------------------------------------------------

def test_expression_vector():
    e = expression_vector(lip_corner_up_L=1.0, eye_blink_R=0.5)
    assert e.dtype == np.float32 and e.shape == (len(DEMO_EXPRESSIONS),)
    assert e[DEMO_EXPRESSIONS["lip_corner_up_L"]] == 1.0 and e[DEMO_EXPRESSIONS["eye_blink_R"]] == 0.5
    assert e.sum() == 1.5
    with pytest.raises(ValueError, match="smile"):
        expression_vector(smile=1.0)


@pytest.mark.parametrize("name", REQUIRED_EXPRESSIONS)
def test_expression_bases_are_nonzero_finite_and_local(head, name):
    d = moved(head, name)
    assert np.isfinite(head.exprdirs[:, :, DEMO_EXPRESSIONS[name]]).all()
    assert d.max() > 2 * MM, name
    assert d.max() < 15 * MM, name
    still = ("neck_boundary", "eyes", "ears", "upper_teeth")
    if name != "jaw_forward":
        still += ("lower_teeth", "tongue")
    for region in still:
        assert d[head.regions[region]].max() < 1e-6, (name, region)
    assert d[head.regions["scalp"]].max() < 0.5 * MM, name
    v = head.v_template
    if name.endswith("_L"):
        assert d[v[:, 0] < -0.015].max() < 1e-6  # the subject's right side stays still
    if name.endswith("_R"):
        assert d[v[:, 0] > 0.015].max() < 1e-6
    # the bulk of the motion is close to where the most motion is
    centre = (v * d[:, None] ** 2).sum(0) / (d**2).sum()
    far = np.linalg.norm(v - centre, axis=1) > 0.08
    assert d[far].max() < 0.1 * d.max() or name == "jaw_forward", name


def test_blink_closes_one_eye_completely(head):
    for s, other in (("L", "right"), ("R", "left")):
        side = "left" if s == "L" else "right"
        v = posed(head, **{f"eye_blink_{s}": 1.0})
        up, lo = v[head.regions[f"{side}_lid_upper_edge"]], v[head.regions[f"{side}_lid_lower_edge"]]
        assert np.linalg.norm(up - lo, axis=1).max() < 1 * MM
        d = moved(head, f"eye_blink_{s}")
        assert d[head.regions[f"{other}_eyelid_upper"]].max() == 0 and d[head.regions[f"{other}_eyeball"]].max() == 0
        blink = head.exprdirs[:, :, DEMO_EXPRESSIONS[f"eye_blink_{s}"]]
        assert np.allclose(head.eyelid_dirs[:, :, 0 if s == "L" else 1], blink)
    # lids stay outside the eyeball all the way down
    eye = head.regions["left_eyeball"]
    centre = head.v_template[eye].mean(0)
    lids = head.regions["left_eyelid_upper"]
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = posed(head, eye_blink_L=w)
        assert np.linalg.norm(v[lids] - centre, axis=1).min() > EYEBALL_R + 0.3 * MM


def test_squint_narrows_the_eye(head):
    v0, v = head.v_template, posed(head, eye_squint_L=1.0)
    up, lo = head.regions["left_lid_upper_edge"], head.regions["left_lid_lower_edge"]
    gap0 = np.linalg.norm(v0[up] - v0[lo], axis=1).max()
    gap = np.linalg.norm(v[up] - v[lo], axis=1).max()
    assert 2 * MM < gap < 0.7 * gap0
    assert (v[lo, 1] - v0[lo, 1]).min() > 0  # the lower lid rises


def test_mouth_corners(head):
    v0 = head.v_template
    right, left = head.regions["mouth_corners"]  # ordered -x, +x
    assert v0[left, 0] > 0 > v0[right, 0]
    for name, sign in (("lip_corner_up_L", 1), ("lip_corner_down_L", -1)):
        v = posed(head, **{name: 1.0})
        assert sign * (v[left, 1] - v0[left, 1]) > 3 * MM, name
        assert abs(v[right, 1] - v0[right, 1]) < 1e-6, name
    for name, corner in (("lip_corner_up_R", right), ("lip_stretch_R", right), ("lip_stretch_L", left)):
        assert np.linalg.norm(posed(head, **{name: 1.0})[corner] - v0[corner]) > 3 * MM
    v = posed(head, lip_stretch_L=1.0)
    assert v[left, 0] - v0[left, 0] > 4 * MM
    v = posed(head, mouth_left=1.0)
    assert (v[head.regions["lips"], 0] - v0[head.regions["lips"], 0]).mean() > 3 * MM
    v = posed(head, lip_corner_up_L=1.0, lip_corner_up_R=1.0)  # a smile keeps the lips shut
    assert lip_gap(v, head) < 1e-6


def test_lip_shapes_move_the_documented_way(head):
    v0 = head.v_template
    r = head.regions
    lips = r["lips"]
    corners = r["mouth_corners"]
    # pucker: forward, narrower, still closed
    v = posed(head, lip_pucker=1.0)
    assert (v[lips, 2] - v0[lips, 2]).mean() > 5 * MM
    assert np.ptp(v[corners, 0]) < 0.8 * np.ptp(v0[corners, 0])
    assert lip_gap(v, head) < 1e-6
    # funnel: forward, narrower, open
    v = posed(head, lip_funnel=1.0)
    assert (v[lips, 2] - v0[lips, 2]).mean() > 4 * MM
    assert np.ptp(v[corners, 0]) < 0.8 * np.ptp(v0[corners, 0])
    assert lip_gap(v, head) > 6 * MM
    # press: lips thinner (toward the seam) and back, still closed
    v = posed(head, lips_press=1.0)
    near = lips[np.abs(v0[lips, 1] - MOUTH_Y) > 2 * MM]
    assert (np.abs(v[near, 1] - MOUTH_Y) < np.abs(v0[near, 1] - MOUTH_Y)).all()
    assert (v[lips, 2] - v0[lips, 2]).mean() < -1 * MM
    assert lip_gap(v, head) < 1e-6
    # part, raise, lower: the seam opens without the jaw
    for name, minimum in (("lips_part", 4 * MM), ("upper_lip_raise", 4 * MM), ("lower_lip_down", 4 * MM)):
        assert lip_gap(posed(head, **{name: 1.0}), head) > minimum, name
    up, lo = r["lip_inner_upper"], r["lip_inner_lower"]
    assert (posed(head, upper_lip_raise=1.0)[lo] == v0[lo]).all()
    assert (posed(head, lower_lip_down=1.0)[up] == v0[up]).all()
    # cheek puff: the cheeks move outward
    v = posed(head, cheek_puff=1.0)
    d = v - v0
    cheeks = np.where(np.linalg.norm(d, axis=1) > 4 * MM)[0]
    assert len(cheeks) and (np.sign(v0[cheeks, 0]) * d[cheeks, 0] > 0).all()
    # jaw forward keeps the lips closed and moves the lower teeth forward
    v = posed(head, jaw_forward=1.0)
    assert lip_gap(v, head) < 1e-6
    assert (v[r["lower_teeth"], 2] - v0[r["lower_teeth"], 2]).min() > 4 * MM


def test_brows(head):
    v0 = head.v_template
    left, right = head.regions["left_brow"], head.regions["right_brow"]
    v = posed(head, brow_raise_L=1.0)
    assert (v[left, 1] - v0[left, 1]).mean() > 4 * MM and np.abs(v[right] - v0[right]).max() == 0
    v = posed(head, brow_lower=1.0)
    assert (v[left, 1] - v0[left, 1]).mean() < -1 * MM and (v[right, 1] - v0[right, 1]).mean() < -1 * MM
    inner = lambda idx: idx[np.abs(v0[idx, 0]) < 0.025]  # noqa: E731
    v = posed(head, brow_inner_up=1.0)
    assert (v[inner(left), 1] - v0[inner(left), 1]).mean() > 3 * MM
    v = posed(head, nose_wrinkle=1.0)
    nose = head.regions["nose"]
    assert (v[nose, 1] - v0[nose, 1]).max() > 3 * MM


# ---- skinning with FlameModel -------------------------------------------------------------------

def _pose(head, jaw=(), eyelids=None):
    flame = pytest.importorskip("being_kernel.head.flame")
    model = flame.FlameModel(head)
    t = len(jaw)
    m = Motion.zeros(t, head.n_expression, space=DEMO_HEAD)
    m.jaw[:, 0] = torch.tensor(jaw, dtype=torch.float32)
    if eyelids is not None:
        m.eyelids[:] = torch.tensor(eyelids, dtype=torch.float32)
    return model(m).vertices.numpy()


def test_jaw_opens_the_mouth_with_teeth_and_tongue(head):
    angles = [0.0, 0.1, 0.2, 0.35]
    verts = _pose(head, jaw=angles)
    gaps = [lip_gap(v, head) for v in verts]
    assert gaps[0] < 1e-6
    assert 0.008 < gaps[1] < 0.016 and gaps[3] > 0.025
    assert gaps[2] / gaps[1] == pytest.approx(2.0, rel=0.15)  # roughly proportional
    assert gaps[3] / gaps[1] == pytest.approx(3.5, rel=0.2)
    v0 = head.v_template
    joint = head.j_regressor @ v0
    for v, a in zip(verts[1:], angles[1:]):
        c, s = np.cos(a), np.sin(a)
        rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        for region in ("lower_teeth", "tongue"):
            idx = head.regions[region]
            rigid = (v0[idx] - joint[2]) @ rot.T + joint[2]
            assert np.abs(v[idx] - rigid).max() < 1e-5, region
        assert np.abs(v[head.regions["upper_teeth"]] - v0[head.regions["upper_teeth"]]).max() < 1e-6
        assert (v[head.regions["lower_teeth"], 1] < v0[head.regions["lower_teeth"], 1]).all()


def test_flame_eyelids_close_the_eyes(head):
    v = _pose(head, jaw=[0.0], eyelids=[1.0, 1.0])[0]
    for s in ("left", "right"):
        gap = np.linalg.norm(v[head.regions[f"{s}_lid_upper_edge"]] - v[head.regions[f"{s}_lid_lower_edge"]], axis=1)
        assert gap.max() < 1 * MM

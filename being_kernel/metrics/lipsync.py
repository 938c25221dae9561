"""Lip-timing metrics against phone-level ground truth: is the mouth shut on p/b/m and open on vowels?

The lips' state comes from skinning the head model with the motion and measuring across the lip
seam, where the upper and lower lips meet (:func:`lip_seam`):

* a head model that names its seam (regions ``lip_inner_upper`` and ``lip_inner_lower``, matched
  vertex for vertex, as the demo head does) uses those;
* any other FLAME-topology head (FLAME 2020, FLAME 2023, a head saved in the kernel's format) has
  a mouth opening in its mesh: a boundary loop, edges that belong to one triangle only. The mouth
  is the loop holding the most vertices of the ``lips`` region (FLAME_masks.pkl) when the head
  names one, else the loop that moves with the jaw (the lower lip is skinned to joint 2); the neck
  cut (the ``neck_boundary`` region, else the longest loop) is never it. The loop's two extreme-x
  vertices are the mouth corners; they split it into an upper half (higher in the template, y up)
  and a lower half, and each upper vertex faces the lower vertex nearest to it in x.

The lip gap of a frame is the mean distance of the facing pairs in the central third of the
mouth's width (near the corners the lips always touch), minus the same in the template, whose
lips are shut. The template term matters for FLAME: its mouth opening is the inner lining of the
lips, whose edges stay apart at the centre while the lips touch in front; on the demo head the
pairs coincide at rest and the term is zero.

Ground truth is Festival's ``.segs`` phone timing (``END_TIME 100 PHONE`` per line).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..head.data import HeadModelData
from ..head.flame import FlameModel
from ..types import DEMO_HEAD, FLAME_2020, FLAME_2023, Motion

#: The lips count as closed when the lip gap (above the template's) is below this (metres).
CLOSED_GAP_M = 1.5e-3
#: A bilabial is closed if some frame within this many seconds of its midpoint is closed.
CLOSURE_WINDOW_S = 0.040
#: Phones whose lips must close, and the vowels (Festival/ARPAbet names) that must open them.
BILABIALS = frozenset("p b m".split())
VOWELS = frozenset("aa ae ah ao aw ax axr ay eh er ey ih iy ow oy uh uw".split())
SEAM_REGIONS = ("lip_inner_upper", "lip_inner_lower")
JAW = 2  # FLAME joint order: global, neck, jaw, left eye, right eye
#: Motion space -> the head-model reference (``being_kernel.head.refs``) its expressions belong to.
SPACE_HEADS = {DEMO_HEAD: "demo", FLAME_2020: "flame2020", FLAME_2023: "flame2023"}

Segs = Sequence[tuple[str, float, float]]


@dataclass(frozen=True)
class LipSeam:
    """Facing vertex pairs across a head model's lips, over the central third of the mouth's width.

    upper, lower  [K] int64  vertex indices; ``upper[k]`` faces ``lower[k]``
    rest_gap      float      mean distance of the pairs in the template, metres
    source        str        how the seam was found, for reports
    """

    upper: np.ndarray
    lower: np.ndarray
    rest_gap: float
    source: str


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """The holes of a triangle mesh ``faces [F, 3]``: closed loops of edges that belong to one
    triangle only, each as ordered int64 vertex indices ``[L]``. A set of boundary edges where some
    vertex has more than two of them (a non-manifold border) is not one loop and is left out."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, count = np.unique(edges, axis=0, return_counts=True)
    neighbours: dict[int, list[int]] = {}
    for a, b in unique[count == 1].tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        component, stack = [], [start]
        seen.add(start)
        while stack:
            vertex = stack.pop()
            component.append(vertex)
            for n in neighbours[vertex]:
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        if any(len(neighbours[vertex]) != 2 for vertex in component):
            continue
        loop, prev = [start], start
        cur = neighbours[start][0]
        while cur != start:
            loop.append(cur)
            a, b = neighbours[cur]
            prev, cur = cur, (b if a == prev else a)
        loops.append(np.array(loop, np.int64))
    return loops


def _mouth_loop(head: HeadModelData) -> tuple[np.ndarray, str]:
    loops = boundary_loops(head.faces)
    if len(loops) < 2:
        raise ValueError(f"head model '{head.name}' has {len(loops)} boundary loop(s): no mouth opening beside "
                         "the neck cut, and no regions naming its lip seam")
    v = head.v_template
    perimeter = [float(np.linalg.norm(v[loop] - v[np.roll(loop, 1)], axis=1).sum()) for loop in loops]
    neck_ring = head.regions.get("neck_boundary")
    if neck_ring is not None and len(neck_ring):
        neck = max(range(len(loops)), key=lambda i: np.isin(loops[i], neck_ring).sum())
    else:
        neck = max(range(len(loops)), key=lambda i: perimeter[i])
    candidates = [i for i in range(len(loops)) if i != neck]
    if "lips" in head.regions:
        in_lips = {i: int(np.isin(loops[i], head.regions["lips"]).sum()) for i in candidates}
        best = max(candidates, key=lambda i: (in_lips[i], perimeter[i]))
        if not in_lips[best]:
            raise ValueError(f"head model '{head.name}': no boundary loop of its mesh lies in its 'lips' region")
        return loops[best], "the mouth opening of the mesh in the 'lips' region"
    jaw = {i: float(head.lbs_weights[loops[i], JAW].max()) for i in candidates}
    best = max(candidates, key=lambda i: (jaw[i], perimeter[i]))
    if jaw[best] <= 0:
        raise ValueError(f"head model '{head.name}': no boundary loop of its mesh moves with the jaw, so none is "
                         "the mouth opening")
    return loops[best], "the mouth opening of the mesh (the boundary loop that moves with the jaw)"


def split_mouth_loop(loop: np.ndarray, v_template: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper [U], lower [L], corners [2]) of a mouth loop: the corners are its extreme-x vertices
    (right corner first, x is the subject's left), the halves run from one corner to the other
    without them; the upper half is the one higher in ``v_template [V, 3]`` (y up)."""
    x = v_template[loop, 0]
    first, last = int(np.argmin(x)), int(np.argmax(x))
    loop = np.roll(loop, -first)
    last = (last - first) % len(loop)
    one, other = loop[1:last], loop[last + 1:][::-1]
    if not len(one) or not len(other):
        raise ValueError("a mouth loop needs vertices on both sides of its corners")
    if v_template[one, 1].mean() < v_template[other, 1].mean():
        one, other = other, one
    return one, other, loop[[0, last]]


def _central(upper: np.ndarray, lower: np.ndarray, corners_x: tuple[float, float], v: np.ndarray,
             source: str) -> LipSeam:
    mid, third = 0.5 * (corners_x[0] + corners_x[1]), abs(corners_x[1] - corners_x[0]) / 6.0
    keep = np.abs(v[upper, 0] - mid) <= third + 1e-9
    upper, lower = upper[keep], lower[keep]
    if not len(upper):
        raise ValueError("the lip seam has no vertex in the central third of the mouth")
    rest = float(np.linalg.norm(v[upper] - v[lower], axis=1).mean())
    return LipSeam(upper.astype(np.int64), lower.astype(np.int64), rest, source)


def lip_seam(head: HeadModelData) -> LipSeam:
    """The facing lip pairs of ``head`` (see the module doc); ValueError if it has no mouth to find."""
    v = head.v_template
    if all(name in head.regions for name in SEAM_REGIONS):
        up, lo = (head.regions[name] for name in SEAM_REGIONS)
        if len(up) != len(lo) or not len(up):
            raise ValueError(f"head model '{head.name}': regions {' and '.join(SEAM_REGIONS)} must pair up "
                             "vertex for vertex")
        corners = head.regions.get("mouth_corners")
        xs = v[corners, 0] if corners is not None and len(corners) == 2 else v[np.concatenate([up, lo]), 0]
        return _central(up, lo, (float(xs.min()), float(xs.max())), v, f"regions {' and '.join(SEAM_REGIONS)}")
    loop, source = _mouth_loop(head)
    upper, lower, corners = split_mouth_loop(loop, v)
    facing = lower[np.abs(v[lower, 0][None, :] - v[upper, 0][:, None]).argmin(axis=1)]
    return _central(upper, facing, (float(v[corners[0], 0]), float(v[corners[1], 0])), v, source)


def has_lip_seam(head: HeadModelData) -> bool:
    """Whether ``lip_gap`` can measure ``head``: it names its seam or its mesh has a mouth opening."""
    try:
        lip_seam(head)
    except ValueError:
        return False
    return True


def head_for_motion_space(space: str) -> HeadModelData:
    """The head model whose expressions ``space`` holds: the demo head, or the user's FLAME 2020 /
    2023 file (found through ``being_kernel.head.refs``); InputError, saying what to download where
    it is a FLAME file that is missing, otherwise."""
    from ..head.refs import resolve_head_model

    if space not in SPACE_HEADS:
        raise InputError(f"no head model for motion space {space}",
                         hint=f"lip timing is measured in the spaces {', '.join(SPACE_HEADS)}")
    try:
        return resolve_head_model(SPACE_HEADS[space], where=f"motion space {space}")
    except InputError as exc:
        raise InputError(f"no head model for motion space {space}: {exc}", hint=exc.hint) from exc


@lru_cache(maxsize=4)
def _space_model(space: str) -> tuple[FlameModel, LipSeam]:
    head = head_for_motion_space(space)
    return FlameModel(head).eval(), lip_seam(head)


def lip_gap(motion: Motion, head: HeadModelData | None = None) -> np.ndarray:
    """The lip gap per frame ``[T]``, metres: the mean distance of the central facing seam pairs
    minus its value in the template (see the module doc); below ``CLOSED_GAP_M`` the lips are shut.

    ``head``: the head model the motion's expressions belong to; default: that of ``motion.space``
    (``head_for_motion_space``, loaded once per process)."""
    model, seam = _space_model(motion.space) if head is None else (FlameModel(head).eval(), lip_seam(head))
    with torch.no_grad():
        v = model(motion.to("cpu")).vertices
    return (v[:, seam.upper] - v[:, seam.lower]).norm(dim=-1).mean(-1).numpy() - seam.rest_gap


def read_segs(path: str | Path) -> list[tuple[str, float, float]]:
    """Festival .segs: lines 'END 100 PHONE'; a phone starts where the previous ended."""
    out, start = [], 0.0
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[0] == "#":
            continue
        end = float(parts[0])
        out.append((parts[2], start, end))
        start = end
    return out


def bilabial_closure(gap: np.ndarray, fps: float, segs: Segs) -> tuple[int, int]:
    """(closed, total) over the p/b/m phones of ``segs``; frame k is at time k / fps."""
    times = np.arange(len(gap)) / fps
    closed = total = 0
    for phone, s, e in segs:
        if phone.lower() not in BILABIALS:
            continue
        total += 1
        near = np.abs(times - (s + e) / 2) <= CLOSURE_WINDOW_S + 1e-9
        closed += bool(near.any() and (gap[near] < CLOSED_GAP_M).any())
    return closed, total


def vowel_opening(gap: np.ndarray, fps: float, segs: Segs) -> tuple[int, int]:
    """(open, total) over the vowels of ``segs``: lips apart (gap >= the closure threshold) at
    the frame nearest the vowel's middle. The control for ``bilabial_closure``: a mouth that is
    always shut would score perfectly there and zero here."""
    opened = total = 0
    for phone, s, e in segs:
        k = int(round((s + e) / 2 * fps))
        if phone.lower() in VOWELS and k < len(gap):
            total += 1
            opened += bool(gap[k] >= CLOSED_GAP_M)
    return opened, total

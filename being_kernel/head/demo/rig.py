"""The demo head's rig: FLAME's five joints placed by a joint regressor, and skinning weights.

Joints (FLAME order): 0 global/root at the base of the neck (centre of the open bottom ring),
1 neck in the middle of the neck, 2 jaw on the midline between the temporomandibular joints just in
front of the ears, 3 / 4 the left / right eyeball centres.

Weights: the neck blends root -> neck joint from its bottom ring up to the jaw line; the head rides
on the neck joint; the jaw joint carries the lower lip, chin, lower jaw skin, the lower half of the
mouth cavity, the lower teeth and the tongue, with a harmonic (smooth) falloff toward the cheeks and
the throat; each eyeball is rigid on its eye joint.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls
from scipy.sparse.linalg import spsolve

from .geometry import CAVITY, EAR_L, EAR_R, EYE_L, EYE_R, SKIN, TEETH_LOW, TEETH_UP, TONGUE, Geometry
from .surface import MOUTH_HALF_W, MOUTH_Y, NR, ROW_EQ, smoothstep

JAW_JOINT = np.array([0.0, -0.010, 0.004])  # between the temporomandibular joints
NECK_ROW = ROW_EQ + 65  # the ring whose centre is the neck joint


def _point_weights(v: np.ndarray, candidates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights over ``candidates`` summing to 1 whose weighted mean is ``target``."""
    a = np.vstack([v[candidates].T, 1e2 * np.ones(len(candidates))])
    w, _ = nnls(a, np.append(target, 1e2))
    return w / w.sum()


def joint_regressor(g: Geometry) -> np.ndarray:
    v, grid = g.vertices, g.info["grid"]
    reg = np.zeros((5, len(v)))
    for j, row in ((0, NR - 1), (1, NECK_ROW)):  # the centre of a ring (midway front to back)
        ring = v[grid[row]]
        centre = [0.0, ring[:, 1].mean(), 0.5 * (ring[:, 2].max() + ring[:, 2].min())]
        reg[j, grid[row]] = _point_weights(v, grid[row], np.array(centre))
    skin = np.where(g.part == SKIN)[0]
    near = []
    for sx in (1.0, -1.0):
        side = JAW_JOINT + [sx * 0.07, 0.0, 0.0]
        d = np.linalg.norm(v[skin] - side, axis=1)
        near.append(skin[np.argsort(d)[:12]])
    cand = np.concatenate(near)
    reg[2, cand] = _point_weights(v, cand, JAW_JOINT)
    for j, part in ((3, EYE_L), (4, EYE_R)):
        idx = np.where(g.part == part)[0]
        reg[j, idx] = 1.0 / len(idx)
    return reg


def _harmonic(n: int, faces: np.ndarray, fixed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values at n vertices that equal ``values`` at ``fixed`` and are harmonic (graph Laplacian)
    elsewhere."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    lap = sp.diags(np.asarray(a.sum(axis=1)).ravel()) - a
    out = np.zeros(n)
    out[fixed] = values
    free = np.setdiff1d(np.arange(n), fixed)
    lap = lap.tocsr()
    rhs = -lap[free][:, fixed] @ values
    out[free] = spsolve(lap[free][:, free].tocsc(), rhs)
    return np.clip(out, 0.0, 1.0)


def jaw_weights(g: Geometry) -> np.ndarray:
    """[V] how much each vertex follows the jaw (before the root/neck split)."""
    v, part, info = g.vertices, g.part, g.info
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    skin = part == SKIN
    side = np.zeros(len(v))
    side[: info["skin_count"]] = info["mouth_side"]
    # side view (z, y): the cheek line from the mouth corner back to below the jaw joint, and the
    # jaw line from the bottom of the chin back to the angle of the jaw
    cheek_line = MOUTH_Y + (0.075 - z) * (-0.030 - MOUTH_Y) / 0.075
    jaw_line = -0.103 + (0.065 - z) * (0.020 / 0.070)
    near_mouth = np.abs(x) < 0.85 * MOUTH_HALF_W
    lower_lip = skin & near_mouth & (side < 0) & (y > -0.09) & (z > 0.03)
    upper_lip = skin & near_mouth & (side > 0) & (y < MOUTH_Y + 0.03) & (z > 0.03)
    beside = skin & ~near_mouth & (z > -0.005)
    jaw_body = beside & (y < cheek_line - 0.007) & (y > jaw_line + 0.006)
    above = skin & ((y > cheek_line + 0.009) & ~near_mouth | (y > 0.0) | (z < -0.03) | (y < jaw_line - 0.028))
    above &= ~lower_lip & ~jaw_body
    cav = part == CAVITY
    depth = np.zeros(len(v))
    cav_idx = info["cavity"]
    depth[cav_idx] = info["cavity_depth"]
    cside = np.zeros(len(v))
    cside[cav_idx] = info["cavity_side"]
    cav_low = cav & (cside < 0) & (depth > 0.005) & (depth < 0.06)
    cav_up = cav & (cside > 0) & (depth > 0.005) & (depth < 0.06)
    ones = lower_lip | jaw_body | cav_low
    zeros = upper_lip | above | cav_up
    region = np.where(skin | cav)[0]
    remap = -np.ones(len(v), np.int64)
    remap[region] = np.arange(len(region))
    f = g.faces[np.all(remap[g.faces] >= 0, axis=1)]
    fixed = np.where((ones | zeros)[region])[0]
    w = np.zeros(len(v))
    w[region] = _harmonic(len(region), remap[f], fixed, ones[region][fixed].astype(np.float64))
    w[(part == TEETH_LOW) | (part == TONGUE)] = 1.0
    return w


def lbs_weights(g: Geometry) -> np.ndarray:
    v, part = g.vertices, g.part
    wj = jaw_weights(g)
    y_bottom = v[g.info["grid"][NR - 1], 1].max()
    head = smoothstep(y_bottom + 0.004, -0.112, v[:, 1])  # share of the neck joint vs the root
    head[part != SKIN] = 1.0
    w = np.zeros((len(v), 5))
    w[:, 0] = 1.0 - head
    w[:, 1] = head * (1.0 - wj)
    w[:, 2] = head * wj
    for j, p in ((3, EYE_L), (4, EYE_R)):
        w[part == p] = 0.0
        w[part == p, j] = 1.0
    for p in (EAR_L, EAR_R, TEETH_UP):
        w[part == p] = [0.0, 1.0, 0.0, 0.0, 0.0]
    return w / w.sum(axis=1, keepdims=True)

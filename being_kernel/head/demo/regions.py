"""Named vertex regions of the demo head (see docs/demo-head.md for the list)."""

from __future__ import annotations

import numpy as np

from .geometry import CAVITY, EAR_L, EAR_R, EYE_L, EYE_R, SKIN, TEETH_LOW, TEETH_UP, TONGUE, Geometry
from .surface import NR, ROW_MENTON, hair_amount
from .texture import brow_mask, lip_borders


def build_regions(g: Geometry, lbs: np.ndarray) -> dict[str, np.ndarray]:
    v, part, info = g.vertices, g.part, g.info
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    n = info["skin_count"]
    idx = lambda m: np.where(m)[0].astype(np.int64)  # noqa: E731
    ofpart = lambda *ps: idx(np.isin(part, ps))  # noqa: E731
    skin = part == SKIN
    r = np.full(len(v), np.inf)
    r[:n] = info["skin_r"]
    phi = np.zeros(len(v))
    phi[:n] = info["skin_phi"]
    side = np.zeros(len(v))
    side[:n] = info["mouth_side"]
    cav = info["cavity"]
    side[cav] = info["cavity_side"]
    depth = np.full(len(v), np.inf)
    depth[cav] = info["cavity_depth"]
    up, lo, corners = info["seam"]("mouth")
    upper_b, lower_b = lip_borders(x)
    half = 0.5 * (v[corners[1], 0] - v[corners[0], 0]) + 1e-4
    front_skin = skin & (np.cos(phi) > 0.25) & (z > info["lip_front_z"] - 0.02)
    on_lips = (np.abs(x) <= half)
    inner = (part == CAVITY) & (depth <= 0.0056)
    lip_skin = front_skin & on_lips & (y <= upper_b + 5e-4) & (y >= lower_b - 5e-4)
    upper_lip = (lip_skin & (side >= 0)) | (inner & (side > 0))
    lower_lip = (lip_skin & (side <= 0)) | (inner & (side < 0))
    upper_lip[corners] = lower_lip[corners] = True
    hair = np.zeros(len(v))
    hair[:n] = hair_amount(info["skin_phi"], y[:n])
    cosp = np.cos(phi)
    regions = {
        "skin": idx(skin),
        "lips": idx(upper_lip | lower_lip),
        "upper_lip": idx(upper_lip),
        "lower_lip": idx(lower_lip),
        "lip_inner_upper": up.astype(np.int64),
        "lip_inner_lower": lo.astype(np.int64),
        "mouth_interior": ofpart(CAVITY, TEETH_UP, TEETH_LOW, TONGUE),
        "mouth_cavity": ofpart(CAVITY),
        "teeth": ofpart(TEETH_UP, TEETH_LOW),
        "upper_teeth": ofpart(TEETH_UP),
        "lower_teeth": ofpart(TEETH_LOW),
        "tongue": ofpart(TONGUE),
        "eyes": ofpart(EYE_L, EYE_R),
        "left_eyeball": ofpart(EYE_L),
        "right_eyeball": ofpart(EYE_R),
        "eyelids": info["lid_vertices"].astype(np.int64),
        "face": idx(skin & (cosp > 0.25) & (r <= ROW_MENTON) & (hair < 0.5)),
        "scalp": idx(skin & (hair >= 0.5)),
        "neck": idx(skin & (hair < 0.5) & ((r > ROW_MENTON + 1) | ((cosp < 0.3) & (y < -0.07)))),
        "neck_boundary": info["grid"][NR - 1].astype(np.int64),
        "ears": ofpart(EAR_L, EAR_R),
        "left_ear": ofpart(EAR_L),
        "right_ear": ofpart(EAR_R),
        "nose": idx(skin & (np.abs(x) < 0.018) & (y > -0.036) & (y < 0.02) & (z > 0.087)),
        "jaw": idx(lbs[:, 2] > 0.5),
    }
    brows = skin & (cosp > 0.3) & (brow_mask(x, y) > 0.5)
    regions["brows"] = idx(brows)
    regions["left_brow"], regions["right_brow"] = idx(brows & (x > 0)), idx(brows & (x < 0))
    for k, s in ((1, "left"), (2, "right")):
        eye = info["lid_eye"] == k
        regions[f"{s}_eyelid_upper"] = idx(eye & (info["lid_up"] > 0))
        regions[f"{s}_eyelid_lower"] = idx(eye & (info["lid_down"] < 0))
        e_up, e_lo, e_corners = info["seam"](f"{s}_eye")
        regions[f"{s}_lid_upper_edge"] = e_up.astype(np.int64)
        regions[f"{s}_lid_lower_edge"] = e_lo.astype(np.int64)
        regions[f"{s}_eye_corners"] = e_corners.astype(np.int64)
    regions["mouth_corners"] = corners.astype(np.int64)
    return regions

"""The demo head's procedural albedo: skin, lips, brows, hair, eyes, teeth, tongue, mouth, ears.

Each atlas rectangle (``geometry.ATLAS``) is painted from what its texels map to: skin texels
from their point on the neutral surface (lids closed, so that the lid edge has a lash line), the
eyeball disk from its polar angle (pupil, iris, limbus, sclera), teeth from their place along
the arch and across the crown. Noise is seeded, so the texture is the same on every build.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates, zoom

from .geometry import ATLAS, Geometry
from .surface import (
    EYE_HALF_W, EYEBALL_R, EYE_X, LID_SEAM_Y, MOUTH_HALF_W, MOUTH_Y, NC, NR, column_angles, hair_amount, smoothstep,
)

SKIN = np.array([0.80, 0.59, 0.48])
LIP = np.array([0.70, 0.35, 0.34])
BROW = np.array([0.20, 0.13, 0.09])
HAIR = np.array([0.17, 0.11, 0.075])
IRIS = np.array([0.36, 0.22, 0.11])
SCLERA = np.array([0.94, 0.93, 0.90])
ENAMEL = np.array([0.93, 0.91, 0.83])
GUM = np.array([0.78, 0.42, 0.42])
TONGUE = np.array([0.80, 0.43, 0.43])
MOUTH = np.array([0.50, 0.20, 0.20])
MOUTH_DEEP = np.array([0.16, 0.05, 0.05])


def _noise(shape, cells, seed: int) -> np.ndarray:
    """Smooth value noise in [-1, 1] of ``shape`` with ``cells`` (rows, cols) features; it wraps
    around in both directions (the skin's texture wraps around the back of the head)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, cells)
    fine = zoom(coarse, (shape[0] / cells[0], shape[1] / cells[1]), order=3, mode="grid-wrap", grid_mode=True)
    fine = np.pad(fine, [(0, max(0, shape[0] - fine.shape[0])), (0, max(0, shape[1] - fine.shape[1]))], mode="wrap")
    return np.clip(fine[: shape[0], : shape[1]], -1, 1)


def _mix(a, b, t):
    t = np.asarray(t)[..., None]
    return a * (1 - t) + b * t


def lip_borders(x):
    """Heights of the upper and lower vermilion borders (the outline of the red of the lips)."""
    t = np.clip(np.abs(x) / MOUTH_HALF_W, 0, 1)
    bow = 0.0009 * np.exp(-(((np.abs(x) - 0.0050) / 0.0030) ** 2)) - 0.0007 * np.exp(-((x / 0.0022) ** 2))
    upper = MOUTH_Y + (0.0082 + bow) * (1 - t**2) ** 0.55
    lower = MOUTH_Y - 0.0100 * (1 - t**2) ** 0.6
    return upper, lower


def brow_mask(x, y):
    """0..1, the eyebrows."""
    t = (np.abs(x) - 0.011) / 0.041
    centre = 0.0262 + 0.0055 * np.sin(np.pi * np.clip(t * 1.1, 0, 1)) ** 0.8
    half = 0.0033 - 0.0019 * np.clip(t, 0, 1)
    ends = smoothstep(-0.08, 0.05, t) * (1 - smoothstep(0.9, 1.02, t))
    return (1 - smoothstep(0.6 * half, half, np.abs(y - centre))) * ends


def _paint_skin(tex, g: Geometry, rng_seed: int) -> None:
    u0, v0, u1, v1 = ATLAS["skin"]
    size = tex.shape[0]
    i0, i1 = int((1 - v1) * size), int(np.ceil((1 - v0) * size))
    j = np.arange(size)
    i = np.arange(i0, i1)
    uu = ((j + 0.5) / size - u0) / (u1 - u0)
    vv = (1 - (i + 0.5) / size - v0) / (v1 - v0)
    col = uu * NC  # column coordinate
    row = (1 - vv) * NR - 1  # row coordinate, -1 = the pole
    grid = g.info["closed_grid"]  # [NR, NC, 3], lids closed
    pole = g.vertices[0]
    full = np.concatenate([np.broadcast_to(pole, (1, NC, 3)), grid], axis=0)
    full = np.concatenate([full, full[:, :1]], axis=1)  # wrap column
    R, C = np.meshgrid(row + 1, col, indexing="ij")
    pts = np.stack([map_coordinates(full[..., k], [R, C], order=1, mode="nearest") for k in range(3)], -1)
    phis = np.append(column_angles(), np.pi)
    phi = np.interp(C, np.arange(NC + 1), phis)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    ax = np.abs(x)
    front = np.cos(phi) > 0.3
    h, w = R.shape
    n_lo = _noise((h, w), (10, 24), rng_seed)
    n_hi = _noise((h, w), (90, 220), rng_seed + 1)
    c = SKIN * (1 + 0.035 * n_lo[..., None] + 0.02 * n_hi[..., None])
    blush = 0.6 * np.exp(-(((ax - 0.040) / 0.016) ** 2 + ((y + 0.012) / 0.014) ** 2))
    blush += 0.5 * np.exp(-((x / 0.008) ** 2 + ((y + 0.021) / 0.007) ** 2)) * (z > 0.09)  # nose tip
    c = _mix(c, np.array([0.80, 0.50, 0.44]), 0.35 * blush * front)
    # eye sockets: slightly darker and cooler; lids: lash lines
    for ex in (EYE_X, -EYE_X):
        d2 = ((x - ex) / 0.022) ** 2 + ((y - LID_SEAM_Y - 0.004) / 0.016) ** 2
        c = _mix(c, np.array([0.66, 0.47, 0.41]), 0.25 * np.exp(-d2) * front)
        inside = front & (np.abs(x - ex) < EYE_HALF_W * 1.02)
        lash_up = inside & (y >= LID_SEAM_Y - 1e-4) & (y < LID_SEAM_Y + 0.0010)
        lash_dn = inside & (y < LID_SEAM_Y) & (y > LID_SEAM_Y - 0.0006)
        c = _mix(c, np.array([0.10, 0.07, 0.06]), 0.9 * lash_up)
        c = _mix(c, np.array([0.45, 0.30, 0.27]), 0.6 * lash_dn)
        crease = np.exp(-(((y - LID_SEAM_Y - 0.0105) / 0.0012) ** 2)) * np.exp(-(((x - ex) / 0.012) ** 4))
        c = _mix(c, np.array([0.55, 0.38, 0.33]), 0.35 * crease * front)
    # lips
    upper, lower = lip_borders(x)
    edge = 0.0006
    lips = np.where(y >= MOUTH_Y, 1 - smoothstep(upper - edge, upper + edge, y),
                    smoothstep(lower - edge, lower + edge, y)) * (ax < MOUTH_HALF_W + 0.001) * front
    lips *= 1 - smoothstep(MOUTH_HALF_W - 0.002, MOUTH_HALF_W + 0.001, ax)
    lip_col = LIP * (1 + 0.04 * n_hi[..., None]) * (1 - 0.18 * np.exp(-(((y - MOUTH_Y) / 0.0012) ** 2)))[..., None]
    c = _mix(c, lip_col, lips)
    # nostrils (on the underside of the nose)
    nos = np.exp(-(((ax - 0.0068) / 0.0034) ** 2 + ((y + 0.0318) / 0.0018) ** 2)) * (z > 0.088) * front
    c = _mix(c, np.array([0.22, 0.10, 0.08]), np.clip(1.4 * nos, 0, 1))
    # brows and hair, with strands
    strands = _noise((h, w), (12, 700), rng_seed + 2)
    tufts = _noise((h, w), (160, 260), rng_seed + 3)
    brows = brow_mask(x, y) * front * (0.8 + 0.2 * tufts)
    c = _mix(c, BROW * (1 + 0.2 * tufts[..., None]), np.clip(brows, 0, 1))
    hair = hair_amount(phi, y)
    c = _mix(c, HAIR * (1 + 0.35 * strands[..., None] + 0.1 * n_lo[..., None]), hair)
    # the neck darkens a little toward its bottom and under the jaw
    c *= (1 - 0.12 * smoothstep(-0.10, -0.16, y))[..., None]
    tex[i0:i1] = c
    tex[:i0] = c[:1]  # margin above the crown


def _paint_eyeball(tex, size: int) -> None:
    u0, v0, u1, v1 = ATLAS["eyeball"]
    i0, i1 = int((1 - v1) * size), int(np.ceil((1 - v0) * size))
    j0, j1 = int(u0 * size), int(np.ceil(u1 * size))
    jj, ii = np.meshgrid(np.arange(j0, j1), np.arange(i0, i1))
    du = ((jj + 0.5) / size - u0) / (u1 - u0) * 2 - 1
    dv = ((1 - (ii + 0.5) / size) - v0) / (v1 - v0) * 2 - 1
    theta = np.clip(np.hypot(du, dv) / 0.98, 0, 1) * np.pi
    az = np.arctan2(dv, du)
    t_iris = np.arcsin(0.0058 / EYEBALL_R)
    t_pupil = np.arcsin(0.0020 / EYEBALL_R)
    streak = 0.5 + 0.5 * np.sin(az * 47 + 3 * np.sin(az * 5)) * np.cos(az * 13)
    iris = IRIS * (0.75 + 0.45 * streak[..., None]) * (1 - 0.3 * (theta / t_iris))[..., None]
    iris = _mix(iris, np.array([0.55, 0.40, 0.18]), 0.35 * np.exp(-(((theta - 0.45 * t_iris) / (0.12 * t_iris)) ** 2)))
    c = _mix(SCLERA * np.ones_like(iris), np.array([0.85, 0.66, 0.62]), smoothstep(0.9, 2.0, theta))
    limbus = 1 - smoothstep(t_iris - 0.02, t_iris + 0.03, theta)
    c = _mix(c, iris, limbus)
    c = _mix(c, np.array([0.12, 0.08, 0.06]), np.exp(-(((theta - t_iris) / 0.025) ** 2)) * 0.7)
    c = _mix(c, np.array([0.02, 0.02, 0.02]), 1 - smoothstep(t_pupil - 0.01, t_pupil + 0.01, theta))
    tex[i0:i1, j0:j1] = c


def _paint_rect(tex, name: str, fn) -> None:
    size = tex.shape[0]
    u0, v0, u1, v1 = ATLAS[name]
    i0, i1 = int((1 - v1) * size), int(np.ceil((1 - v0) * size))
    j0, j1 = int(u0 * size), int(np.ceil(u1 * size))
    jj, ii = np.meshgrid(np.arange(j0, j1), np.arange(i0, i1))
    u = np.clip(((jj + 0.5) / size - u0) / (u1 - u0), 0, 1)
    v = np.clip(((1 - (ii + 0.5) / size) - v0) / (v1 - v0), 0, 1)
    tex[i0:i1, j0:j1] = fn(u, v)


def _teeth(u, v, upper: bool):
    s = 2 * u - 1
    q = v * 2 * np.pi
    yn = np.sign(np.sin(q)) * np.abs(np.sin(q)) ** 0.6
    root = 0.5 * (1 + yn)  # 0 at the biting edge, 1 at the root
    c = _mix(ENAMEL * np.ones(u.shape + (3,)), np.array([0.86, 0.82, 0.68]), 0.5 * smoothstep(0.4, 0.78, root))
    c = _mix(c, np.array([0.82, 0.83, 0.84]), 0.5 * (1 - smoothstep(0.0, 0.12, root)))
    bounds = np.array([0.0, 0.105, 0.20, 0.31, 0.42, 0.55, 0.71, 0.87])
    d = np.min(np.abs(np.abs(s)[..., None] - bounds), axis=-1)
    gap = (1 - smoothstep(0.002, 0.007, d)) * (1 - smoothstep(0.35, 0.75, root))
    c = _mix(c, np.array([0.68, 0.64, 0.58]), 0.8 * gap)
    return _mix(c, GUM, smoothstep(0.74, 0.8, root))


def _tongue(u, v):
    az = u * 2 * np.pi
    top = 0.5 + 0.5 * np.sin(az)
    n = _noise(u.shape, (20, 30), 11)
    c = TONGUE * (1 + 0.06 * n[..., None])
    c = _mix(c, np.array([0.60, 0.28, 0.32]), 1 - top)
    return _mix(c, np.array([0.66, 0.33, 0.34]), 0.5 * np.exp(-((np.cos(az) / 0.12) ** 2)) * top)


def _cavity(u, v):
    depth = 1 - v
    c = _mix(LIP * np.ones(u.shape + (3,)), MOUTH, smoothstep(0.05, 0.25, depth))
    return _mix(c, MOUTH_DEEP, smoothstep(0.25, 0.7, depth))


def _ear(u, v):
    az, th = u * 2 * np.pi, (1 - v) * np.pi
    a = np.sin(th) * np.cos(az)
    b, c = np.cos(th) * 0.031, np.sin(th) * np.sin(az) * 0.018
    q = ((b + 0.004) / 0.020) ** 2 + ((c - 0.002) / 0.011) ** 2
    bowl = np.clip(1 - q, 0, 1) * (a > 0)
    col = _mix(np.array([0.80, 0.56, 0.47]) * np.ones(u.shape + (3,)), np.array([0.62, 0.40, 0.35]), bowl ** 0.7)
    return col


def paint_texture(g: Geometry, size: int = 1024) -> np.ndarray:
    """[size, size, 3] float32 albedo in [0, 1]; row 0 is the top (v = 1)."""
    tex = np.zeros((size, size, 3))
    tex[:] = MOUTH_DEEP
    _paint_skin(tex, g, 7)
    _paint_eyeball(tex, size)
    _paint_rect(tex, "upper_teeth", lambda u, v: _teeth(u, v, True))
    _paint_rect(tex, "lower_teeth", lambda u, v: _teeth(u, v, False))
    _paint_rect(tex, "tongue", _tongue)
    _paint_rect(tex, "cavity", _cavity)
    _paint_rect(tex, "ear", _ear)
    return np.clip(tex, 0, 1).astype(np.float32)

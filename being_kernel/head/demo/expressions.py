"""The demo head's named expression bases.

Each basis is a displacement field [V, 3] in metres: weight 1 is the full, natural extent of the
shape, 0 is neutral, and weights mix linearly. ``_L`` / ``_R`` are the subject's left (+x) and
right (-x). Mouth shapes are independent of the jaw (the jaw is a joint). Fields are smooth,
compactly supported bumps around their feature, so everything far from it stays exactly still;
the lid shapes (blink, squint) slide the lids over the eyeball shells (see ``Geometry.lid_positions``).
Teeth, tongue, eyeballs and ears never move, except that ``jaw_forward`` carries everything the
jaw carries.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .geometry import CAVITY, SKIN, Geometry
from .surface import EYE_X, MOUTH_Y, smoothstep

#: (name, what weight 1 does), in basis order.
EXPRESSIONS: tuple[tuple[str, str], ...] = (
    ("lip_corner_up_L", "left mouth corner up and back, left cheek lifts (half of a smile)"),
    ("lip_corner_up_R", "right mouth corner up and back, right cheek lifts"),
    ("lip_corner_down_L", "left mouth corner pulled down (frown)"),
    ("lip_corner_down_R", "right mouth corner pulled down"),
    ("lip_stretch_L", "left mouth corner pulled out sideways and back (wide, thin mouth)"),
    ("lip_stretch_R", "right mouth corner pulled out sideways and back"),
    ("lip_pucker", "lips pushed forward and gathered toward the middle, mouth closed ('oo' kiss)"),
    ("lip_funnel", "lips pushed forward, narrowed and opened into a round funnel ('oo' / 'sh')"),
    ("upper_lip_raise", "upper lip raised, baring the upper teeth"),
    ("lower_lip_down", "lower lip pulled down, baring the lower teeth"),
    ("lips_press", "lips pressed together: thinner, rolled in, seam stays closed"),
    ("lips_part", "lips part by about 5 mm at the centre without moving the jaw"),
    ("cheek_puff", "both cheeks blown out by about 8 mm"),
    ("brow_raise_L", "left brow and forehead up by about 7 mm"),
    ("brow_raise_R", "right brow and forehead up by about 7 mm"),
    ("brow_lower", "both brows down and drawn together (frown)"),
    ("brow_inner_up", "inner ends of both brows up (worried / sad)"),
    ("eye_blink_L", "left eyelids closed completely (upper lid down onto the lower)"),
    ("eye_blink_R", "right eyelids closed completely"),
    ("eye_squint_L", "left eye narrowed: lower lid up, upper lid a little down, cheek up"),
    ("eye_squint_R", "right eye narrowed"),
    ("nose_wrinkle", "sides of the nose pulled up, skin bunched at the bridge (sneer)"),
    ("jaw_forward", "lower jaw (and lower teeth, tongue) pushed forward by about 4.5 mm"),
    ("mouth_left", "whole mouth shifted toward the subject's left by about 6.5 mm"),
    ("mouth_right", "whole mouth shifted toward the subject's right by about 6.5 mm"),
)
NAMES = tuple(n for n, _ in EXPRESSIONS)


def _bump(v, centre, radii):
    """Compact smooth bump: (1 - q)^3 inside the ellipsoid ``radii`` around ``centre``, else 0."""
    q = (((v - np.asarray(centre)) / np.asarray(radii)) ** 2).sum(axis=1)
    return np.clip(1.0 - q, 0.0, None) ** 3


def _plateau(v, centre, radii, inner=0.55):
    """1 inside ``inner`` of the ellipsoid, falling smoothly to 0 at its surface."""
    rho = np.sqrt((((v - np.asarray(centre)) / np.asarray(radii)) ** 2).sum(axis=1))
    return 1.0 - smoothstep(inner, 1.0, rho)


class _Ctx:
    def __init__(self, g: Geometry, jaw: np.ndarray) -> None:
        self.g, self.jaw = g, jaw
        v = self.v = g.vertices
        info = g.info
        self.soft = ((g.part == SKIN) | (g.part == CAVITY)).astype(np.float64)  # what expressions may move
        side = np.zeros(len(v))
        side[: info["skin_count"]] = info["mouth_side"]
        side[info["cavity"]] = info["cavity_side"]
        self.upper, self.lower = (side > 0).astype(float), (side < 0).astype(float)
        up, lo, corners = info["seam"]("mouth")
        seam = v[np.concatenate([[corners[0]], up, [corners[1]]])]
        t = np.linspace(0, 1, 8, endpoint=False)
        dense = (seam[:-1, None] * (1 - t[:, None]) + seam[1:, None] * t[:, None]).reshape(-1, 3)
        self.seam_dist = cKDTree(np.vstack([dense, seam[-1:]])).query(v)[0]
        self.corner = {1.0: v[corners[1]], -1.0: v[corners[0]]}
        self.half = 0.5 * (v[corners[1], 0] - v[corners[0], 0])
        self.u = np.clip(v[:, 0] / self.half, -1, 1)
        self.zc = info["lip_front_z"]
        self.mouth = np.array([0.0, MOUTH_Y, self.zc])

    def opening(self, up: float, down: float, reach: float = 0.014, power: float = 0.5) -> np.ndarray:
        """Lips move apart at the seam: the upper side by ``up``, the lower by ``down`` (metres, at
        the centre), fading along the seam toward the corners and away from it over ``reach``."""
        prof = np.clip(1 - self.u**2, 0, None) ** power
        near = 1.0 - smoothstep(0.0, reach, self.seam_dist)
        d = np.zeros_like(self.v)
        d[:, 1] = (up * self.upper - down * self.lower) * prof * near
        return d


def _corner(c: _Ctx, sx: float, move, offset, radii, cheek=None):
    v = c.v
    w = _bump(v, c.corner[sx] + np.array(offset) * [sx, 1, 1], radii)
    d = w[:, None] * (np.array(move) * [sx, 1, 1])
    if cheek is not None:
        centre, r, mv = cheek
        d += _bump(v, np.array(centre) * [sx, 1, 1], r)[:, None] * (np.array(mv) * [sx, 1, 1])
    return d


def _lids(c: _Ctx, left: bool, upper: float, lower: float) -> np.ndarray:
    args = dict(upper_l=upper, lower_l=lower) if left else dict(upper_r=upper, lower_r=lower)
    return c.g.lid_positions(**args) - c.v


def _fields(c: _Ctx) -> dict[str, np.ndarray]:
    v, x, y = c.v, c.v[:, 0], c.v[:, 1]
    f: dict[str, np.ndarray] = {}
    zc = c.zc
    for sx, s in ((1.0, "L"), (-1.0, "R")):
        cheek = ((0.040, -0.030, zc - 0.012), (0.022, 0.020, 0.03), (0.0, 0.0030, 0.0015))
        f[f"lip_corner_up_{s}"] = _corner(c, sx, (0.0025, 0.0085, -0.0030), (-0.002, 0.003, 0.0), (0.026, 0.022, 0.03),
                                          cheek=cheek)
        f[f"lip_corner_down_{s}"] = _corner(c, sx, (0.0010, -0.0065, -0.0010), (0.0, -0.004, 0.0),
                                            (0.024, 0.022, 0.03))
        f[f"lip_stretch_{s}"] = _corner(c, sx, (0.0090, -0.0008, -0.0035), (0.0, 0.0, 0.0), (0.030, 0.022, 0.03))
    lips = _plateau(v, c.mouth + [0, -0.001, -0.002], (0.040, 0.030, 0.024))
    d = np.zeros_like(v)
    d[:, 0], d[:, 1], d[:, 2] = -0.38 * x * lips, 0.15 * (y - MOUTH_Y) * lips, 0.0095 * lips
    f["lip_pucker"] = d
    d = np.zeros_like(v)
    d[:, 0], d[:, 1], d[:, 2] = -0.32 * x * lips, 0.20 * (y - MOUTH_Y) * lips, 0.0070 * lips
    d += c.opening(0.0040, 0.0050, 0.012, power=1.0)
    d[:, 2] += 0.0015 * (1 - smoothstep(0.0, 0.008, c.seam_dist)) * lips  # the lips flare out
    f["lip_funnel"] = d
    lat = 1 - smoothstep(0.6, 1.15, np.abs(v[:, 0]) / c.half)
    near = 1 - smoothstep(0.004, 0.024, c.seam_dist)
    d = np.zeros_like(v)
    d[:, 1], d[:, 2] = 0.0050 * c.upper * lat * near, 0.0012 * c.upper * lat * near
    f["upper_lip_raise"] = d
    d = np.zeros_like(v)
    d[:, 1], d[:, 2] = -0.0050 * c.lower * lat * near, 0.0010 * c.lower * lat * near
    f["lower_lip_down"] = d
    press = _plateau(v, c.mouth, (0.032, 0.022, 0.020))
    d = np.zeros_like(v)
    d[:, 1], d[:, 2] = -0.45 * (y - MOUTH_Y) * press, -0.0025 * press
    f["lips_press"] = d
    f["lips_part"] = c.opening(0.0022, 0.0030)
    d = np.zeros_like(v)
    for sx in (1.0, -1.0):
        out = np.array([0.85 * sx, 0.0, 0.5])
        d += 0.008 * _bump(v, (sx * 0.045, -0.047, zc - 0.03), (0.028, 0.030, 0.04))[:, None] * out
    d[:, 2] += 0.002 * lips
    f["cheek_puff"] = d
    for sx, s in ((1.0, "L"), (-1.0, "R")):
        lateral = np.clip(1 - ((x - sx * 0.031) / 0.033) ** 2, 0, None) ** 2 * (v[:, 2] > 0.03)
        rise = smoothstep(0.012, 0.027, y) * (1 - smoothstep(0.035, 0.074, y))
        f[f"brow_raise_{s}"] = (lateral * rise)[:, None] * [0, 0.0070, 0.0005]
    d = np.zeros_like(v)
    for sx in (1.0, -1.0):
        d += _bump(v, (sx * 0.020, 0.028, 0.085), (0.024, 0.018, 0.04))[:, None] * [-sx * 0.0030, -0.0045, 0.0010]
    f["brow_lower"] = d
    d = np.zeros_like(v)
    for sx in (1.0, -1.0):
        d += _bump(v, (sx * 0.016, 0.033, 0.085), (0.020, 0.020, 0.04))[:, None] * [0, 0.0065, 0]
    f["brow_inner_up"] = d
    for left, s in ((True, "L"), (False, "R")):
        f[f"eye_blink_{s}"] = _lids(c, left, 0.0, 0.0)
        sx = 1.0 if left else -1.0
        cheek = _bump(v, (sx * EYE_X + sx * 0.002, -0.010, 0.07), (0.022, 0.014, 0.04))[:, None] * [0, 0.0020, 0.0010]
        f[f"eye_squint_{s}"] = _lids(c, left, 0.75, -0.35) + cheek
    d = np.zeros_like(v)
    for sx in (1.0, -1.0):
        d += _bump(v, (sx * 0.012, -0.012, 0.095), (0.013, 0.020, 0.03))[:, None] * [sx * 0.0010, 0.0048, 0.0008]
        d += _bump(v, (sx * 0.012, -0.040, 0.088), (0.012, 0.010, 0.03))[:, None] * [0, 0.0020, 0.0]
    d += _bump(v, (0.0, 0.018, 0.09), (0.014, 0.011, 0.03))[:, None] * [0, -0.0028, 0]
    f["nose_wrinkle"] = d
    d = np.zeros_like(v)
    near = 1 - smoothstep(0.0, 0.012, c.seam_dist)  # both lips move alike at the seam: it stays shut
    d[:, 2] = 0.0045 * np.where(c.soft > 0, c.jaw * (1 - near) + 0.5 * near * (c.seam_dist < 0.012), c.jaw)
    f["jaw_forward"] = d
    for sx, s in ((1.0, "left"), (-1.0, "right")):
        w = _plateau(v, c.mouth, (0.045, 0.035, 0.03), inner=0.4)
        d = np.zeros_like(v)
        d[:, 0] = sx * 0.0065 * w
        d[:, 2] = -sx * 0.0065 * (x + sx * 0.00325) / 0.08 * w
        f[f"mouth_{s}"] = d
    for name in f:
        if name != "jaw_forward":
            f[name] = f[name] * c.soft[:, None]
    return f


def build_exprdirs(g: Geometry, jaw_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exprdirs [V, 3, E], eyelid_dirs [V, 3, 2]) for the bases in ``EXPRESSIONS``."""
    fields = _fields(_Ctx(g, jaw_weights))
    assert tuple(fields) == NAMES or set(fields) == set(NAMES)
    exprdirs = np.stack([fields[n] for n in NAMES], axis=-1)
    eyelids = np.stack([fields["eye_blink_L"], fields["eye_blink_R"]], axis=-1)
    return exprdirs, eyelids

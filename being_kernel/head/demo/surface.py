"""The demo head's skin as a smooth parametric surface ``S(r, phi)``.

The skin is lofted from horizontal rings: ``r`` is a continuous row coordinate (row ``-1`` is the
top of the head, row ``NR - 1`` the open bottom of the neck) and ``phi`` the angle around the
vertical axis (0 = straight ahead, +pi/2 = the subject's left, +-pi = the back). Each ring is a
superellipse whose size comes from a table of landmark rows; face features (brow, nose, cheeks,
lips, chin) are smooth height fields added in z on the front; the eye regions are blended onto a
shell around each eyeball (the eyelids); the scalp gets a few millimetres of hair volume.

Model space, in metres: y up, z out of the face (toward a viewer in front), x to the subject's
left (FLAME's convention).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

# ---- proportions -------------------------------------------------------------------------------
NC = 104  # skin columns around the head
ND = 16  # rows of the skull dome; row ND - 1 is its equator (brow level)
COLUMN_FOCUS = 0.62  # how much denser the columns are on the face than at the back

Y_EQ, AX, AY, AZF, AZB, ZC = 0.035, 0.076, 0.083, 0.093, 0.105, -0.008  # skull ellipsoid

EYE_X, EYE_Y, EYE_Z = 0.030, 0.012, 0.069  # left eyeball centre (the right one mirrors x)
EYEBALL_R = 0.0125  # eyeball radius
LID_R = 0.0136  # radius of the eyelid shell around the eyeball centre
EYE_HALF_W = 0.0115  # half the corner-to-corner width of the eye opening
LID_SEAM_Y = EYE_Y - 0.0025  # where the lids meet when closed
LID_UP, LID_DOWN = 0.0070, 0.0020  # how far the upper / lower lid edge is retracted when open
LID_BAND_UP, LID_BAND_DOWN = 0.013, 0.006  # lid skin that slides with the edge

MOUTH_Y = -0.056  # the lip seam
MOUTH_HALF_W = 0.024

# Landmark rows below the equator: (rows below the equator, y_front, z_front, half width W,
# z of the sides, z_back, y_back, front superellipse exponent).
_KEYS = [
    (0, Y_EQ, AZF + ZC, AX, ZC, ZC - AZB, Y_EQ, 2.4),
    (11, LID_SEAM_Y, 0.0840, 0.0745, -0.0080, -0.1100, 0.004, 2.5),  # closed-lid seam
    (24, -0.0250, 0.0820, 0.0700, -0.0060, -0.1000, -0.032, 2.5),  # nose tip
    (38, MOUTH_Y, 0.0780, 0.0615, -0.0020, -0.0850, -0.064, 2.35),  # lip seam
    (48, -0.0800, 0.0710, 0.0545, 0.0000, -0.0720, -0.086, 2.2),
    (56, -0.1000, 0.0615, 0.0485, 0.0000, -0.0660, -0.102, 2.0),  # menton (bottom of the chin)
    (58, -0.1060, 0.0540, 0.0480, -0.0020, -0.0640, -0.108, 2.0),
    (60, -0.1110, 0.0460, 0.0482, -0.0040, -0.0625, -0.114, 2.0),
    (62, -0.1180, 0.0400, 0.0495, -0.0060, -0.0620, -0.121, 2.0),
    (65, -0.1300, 0.0375, 0.0510, -0.0080, -0.0620, -0.131, 2.0),
    (70, -0.1580, 0.0390, 0.0530, -0.0100, -0.0640, -0.158, 2.0),  # open bottom of the neck
]
ROW_EQ = ND - 1
ROW_EYE = ROW_EQ + 11
ROW_MOUTH = ROW_EQ + 38
ROW_MENTON = ROW_EQ + 56
NR = ROW_EQ + 70 + 1  # rows, pole excluded


def smoothstep(e0: float, e1: float, x):
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def smooth_max(a, b, k: float):
    """max(a, b) with the corner rounded over a band of width k."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.maximum(a, b) + h * h * k * 0.25


def gauss(x, y, cx, cy, rx, ry):
    return np.exp(-(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2))


def column_angles() -> np.ndarray:
    """[NC] angles, column 0 at the back (-pi), NC/2 straight ahead; mirror-symmetric."""
    s = -1.0 + 2.0 * np.arange(NC) / NC
    return np.pi * (s - COLUMN_FOCUS * np.sin(np.pi * s) / np.pi)


def _superellipse(phi, n):
    """(x, z) fractions of a superellipse |x|^n + |z|^n = 1 with x = sin(phi) (even spacing in front)."""
    s, c = np.sin(phi), np.cos(phi)
    return s, np.sign(c) * np.maximum(1.0 - np.abs(s) ** n, 0.0) ** (1.0 / n)


# ---- face features: height fields added in z on the front --------------------------------------
_UPPER_LIP = PchipInterpolator([0, 0.15, 0.3, 0.45, 0.7, 1.0], [0.0040, 0.0072, 0.0074, 0.0062, 0.0032, 0.0])
_LOWER_LIP = PchipInterpolator([0, 0.12, 0.25, 0.40, 0.62, 1.0], [0.0040, 0.0080, 0.0074, 0.0034, -0.0012, 0.0])


def lip_lateral(ax):
    """How much of the lip bulge is left at |x| = ax (1 at the centre, ~0 past the corners)."""
    return np.exp(-((ax / 0.0215) ** 4))


def face_features(x, y):
    """dz [m] that the face features add at front-projected position (x, y)."""
    ax = np.abs(x)
    dz = 0.0045 * np.exp(-(((y - 0.029) / 0.0075) ** 2)) * np.exp(-((ax / 0.046) ** 4))  # brow ridge
    dz = dz + 0.0020 * gauss(ax, y, 0.0, 0.026, 0.012, 0.008)  # glabella
    # nose: dorsum from the nasion (y 0.018) to the tip (y -0.022), underside up to y -0.035
    t = np.clip((0.018 - y) / 0.040, 0.0, 1.0)
    ridge = np.where(y > 0.018, 0.0015 * np.exp(-(((y - 0.018) / 0.008) ** 2)), 0.0015 + 0.0215 * t**1.2)
    ridge = ridge * (1.0 - smoothstep(-0.021, -0.0345, y))
    width = 0.0062 + 0.0042 * t
    dz = dz + ridge * np.exp(-((x / width) ** 2))
    dz = dz + 0.0030 * gauss(x, y, 0.0, -0.0205, 0.0065, 0.0055)  # tip
    dz = dz + 0.0068 * gauss(ax, y, 0.0135, -0.0272, 0.0052, 0.0048) * (1.0 - smoothstep(-0.029, -0.036, y))  # alae
    dz = dz + 0.0060 * gauss(ax, y, 0.040, -0.012, 0.018, 0.016)  # cheeks
    dz = dz + 0.0035 * gauss(ax, y, 0.052, 0.000, 0.012, 0.012)  # cheekbones
    # lips
    lat = lip_lateral(ax)
    tu = np.clip((y - MOUTH_Y) / 0.022, 0.0, 1.0)
    tl = np.clip((MOUTH_Y - y) / 0.030, 0.0, 1.0)
    lips = np.where(y >= MOUTH_Y, _UPPER_LIP(tu), _LOWER_LIP(tl)) * lat
    body = smoothstep(0.0, 0.3, tu) * (1 - smoothstep(0.5, 1.0, tu))  # the upper lip's fullness
    lips = lips + np.where(y >= MOUTH_Y, 0.0035 * np.exp(-((ax / 0.03) ** 4)) * body, 0.0)
    philtrum = smoothstep(0.3, 0.45, tu) * (1.0 - smoothstep(0.85, 1.0, tu)) * (y > MOUTH_Y)
    lips = lips + philtrum * (0.0006 * gauss(ax, 0, 0.0048, 0, 0.0022, 1) - 0.0008 * np.exp(-((x / 0.0032) ** 2)))
    dz = dz + lips
    dz = dz - 0.0022 * gauss(ax, y, 0.0262, MOUTH_Y, 0.0045, 0.0050)  # mouth-corner dimples
    dz = dz + 0.0110 * gauss(x, y, 0.0, -0.0915, 0.017, 0.011)  # chin
    dz = dz - 0.0012 * gauss(ax, y, 0.031, -0.040, 0.0065, 0.013)  # nasolabial folds (soft)
    return dz


def hairline(phi):
    """Height of the hairline at angle phi around the head."""
    a = np.abs(phi)
    knots = [0.0, 0.45, 0.75, 1.00, 1.18, 1.28, 1.40, 1.47, 1.66, 1.80, 1.90, 2.00, 2.40, np.pi]
    heights = [0.080, 0.077, 0.064, 0.050, 0.040, 0.012, 0.004, 0.036, 0.042, 0.036, -0.012, -0.040, -0.060, -0.068]
    return np.interp(a, knots, heights)


def hair_amount(phi, y):
    """0 on skin, 1 under hair (a soft edge at the hairline)."""
    return smoothstep(-0.002, 0.012, y - hairline(phi))


class SkinSurface:
    """Evaluates the skin surface; see the module docstring."""

    def __init__(self) -> None:
        rows, table = [], []
        for i in range(-1, ND):  # the dome: an ellipsoid, row -1 is the top pole
            th = (i + 1) / ND * np.pi / 2
            s, c = np.sin(th), np.cos(th)
            rows.append(i)
            table.append([Y_EQ + AY * c, ZC + AZF * s, AX * s, ZC, ZC - AZB * s, Y_EQ + AY * c, 2.0 + 0.4 * s * s])
        for k, *vals in _KEYS[1:]:
            rows.append(ROW_EQ + k)
            table.append(vals)
        self._interp = PchipInterpolator(np.array(rows, float), np.array(table, float), axis=0)
        rr = np.linspace(ROW_EQ - 4, ROW_MENTON, 4000)
        self._rr, self._yy = rr, self._interp(rr)[:, 0]  # y_front is decreasing here

    def ring(self, r):
        """[N, 7]: y_front, z_front, W, z_side, z_back, y_back, n_front at row coordinates r."""
        return self._interp(np.asarray(r, dtype=np.float64))

    def y_front(self, r):
        return self.ring(r)[..., 0]

    def row_of_y(self, y):
        """The row coordinate where the front of the face is at height y (face rows only)."""
        return np.interp(y, self._yy[::-1], self._rr[::-1])

    def base(self, r, phi):
        """[N, 3] ring points before features."""
        r, phi = np.broadcast_arrays(np.asarray(r, float), np.asarray(phi, float))
        p = self.ring(r)
        yf, zf, w, zs, zb, yb, nf = (p[..., k] for k in range(7))
        sx_f, cx_f = _superellipse(phi, nf)
        sx_b, cx_b = _superellipse(phi, np.full_like(nf, 2.0))
        front = np.cos(phi) >= 0
        x = w * np.where(front, sx_f, sx_b)
        z = np.where(front, zs + (zf - zs) * cx_f, zs + (zs - zb) * cx_b)
        y = yb + (yf - yb) * smoothstep(-0.7, 0.5, np.cos(phi))
        return np.stack([x, y, z], axis=-1)

    def points(self, r, phi):
        """[N, 3] skin points: base ring + face features + eyelid shells + hair."""
        r, phi = np.broadcast_arrays(np.asarray(r, float), np.asarray(phi, float))
        p = self.base(r, phi)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        front = smoothstep(-0.1, 0.35, np.cos(phi)) * (1.0 - smoothstep(ROW_MENTON, ROW_MENTON + 3.0, r))
        z = z + front * face_features(x, y)
        for ex in (EYE_X, -EYE_X):  # eye sockets, and the lid shell around each eyeball
            dx, dy = x - ex, y - EYE_Y
            socket = 1.0 - smoothstep(0.008, 0.019, np.sqrt(dx**2 + (1.1 * dy) ** 2))
            z = z - 0.0085 * socket * (np.cos(phi) > 0.3)
            r2 = dx**2 + dy**2
            inside = (r2 < LID_R**2) & (np.cos(phi) > 0.3)
            shell = np.where(inside, EYE_Z + np.sqrt(np.maximum(LID_R**2 - r2, 0.0)), -1.0)
            z = smooth_max(z, shell, 0.002)
        out = np.stack([x, y, z], axis=-1)
        centre = np.array([0.0, 0.02, -0.01])
        d = out - centre
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return out + d * (0.0065 * hair_amount(phi, y))[..., None]

"""The demo head's mesh: skin with slit mouth and eyes, mouth cavity, teeth, tongue, eyeballs, ears.

``build_geometry()`` returns a :class:`Geometry`: the neutral mesh (eyes open, lips closed), its UV
layout, a part id per vertex, and the bookkeeping that the rig, the expressions and the texture
need. The skin is a grid of ``NR`` rows x ``NC`` columns plus a top pole (see ``surface.py``). The
lip seam and the closed-lid seams are rows of that grid that are cut: the vertices along a seam
are duplicated, the originals belong to the upper lip (lid), the copies to the lower one, and the
two meet at the corners. The lip seam opens into the mouth cavity, a bag behind the lips; the lid
seams open onto the eyeballs, which sit in shells that the lids slide over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .surface import (
    EYE_HALF_W, EYEBALL_R, EYE_X, EYE_Y, EYE_Z, LID_BAND_DOWN, LID_BAND_UP, LID_DOWN, LID_SEAM_Y, LID_UP, MOUTH_HALF_W,
    MOUTH_Y, NC, NR, ROW_EYE, ROW_MOUTH, SkinSurface, column_angles, smoothstep,
)

# part ids
SKIN, CAVITY, TEETH_UP, TEETH_LOW, TONGUE, EYE_L, EYE_R, EAR_L, EAR_R = range(9)
PART_NAMES = ("skin", "cavity", "upper_teeth", "lower_teeth", "tongue", "left_eyeball", "right_eyeball",
              "left_ear", "right_ear")

# texture atlas rectangles (u0, v0, u1, v1); v up, as in HeadModelData.uv_coords
ATLAS = {
    "skin": (0.0, 0.305, 1.0, 0.995),
    "eyeball": (0.005, 0.005, 0.295, 0.295),
    "upper_teeth": (0.305, 0.155, 0.645, 0.295),
    "lower_teeth": (0.305, 0.005, 0.645, 0.145),
    "tongue": (0.655, 0.005, 0.800, 0.295),
    "cavity": (0.810, 0.155, 0.995, 0.295),
    "ear": (0.810, 0.005, 0.995, 0.145),
}

# mouth cavity rings behind the lip seam: depth, half height above / below the seam, half width
_CAVITY = np.array([
    [0.0025, 0.0012, 0.0012, 0.0236],
    [0.0055, 0.0050, 0.0055, 0.0240],
    [0.0085, 0.0110, 0.0120, 0.0255],
    [0.0120, 0.0150, 0.0175, 0.0270],
    [0.0200, 0.0165, 0.0205, 0.0280],
    [0.0320, 0.0160, 0.0210, 0.0280],
    [0.0450, 0.0140, 0.0190, 0.0255],
    [0.0570, 0.0110, 0.0160, 0.0210],
    [0.0670, 0.0070, 0.0110, 0.0150],
])
CAVITY_BACK = 0.0730


@dataclass
class Geometry:
    vertices: np.ndarray  # [V, 3] float64, neutral (eyes open, lips closed)
    faces: np.ndarray  # [F, 3] int64
    uv_coords: np.ndarray  # [Vt, 2]
    uv_faces: np.ndarray  # [F, 3] int64
    part: np.ndarray  # [V] int part id
    surface: SkinSurface
    info: dict = field(default_factory=dict)

    def lid_positions(self, upper_l: float = 1.0, lower_l: float = 1.0, upper_r: float = 1.0,
                      lower_r: float = 1.0) -> np.ndarray:
        """Skin vertex positions with the lid edges retracted by the given fractions of their
        rest opening (1 = open as in the neutral mesh, 0 = closed on the seam; a negative lower
        fraction lifts the lower lid above the seam). Other vertices as in the neutral mesh."""
        out = self.vertices.copy()
        i = self.info
        idx = i["lid_vertices"]
        dy = i["lid_up"][idx] * np.where(i["lid_eye"][idx] == 1, upper_l, upper_r)
        dy += i["lid_down"][idx] * np.where(i["lid_eye"][idx] == 1, lower_l, lower_r)
        r = self.surface.row_of_y(self.surface.y_front(i["skin_r"][idx]) + dy)
        out[idx] = self.surface.points(r, i["skin_phi"][idx])
        return out


class _Mesh:
    """Collects vertices, uvs and triangle groups; ``finish`` orients each group outward."""

    def __init__(self) -> None:
        self.v, self.uv, self.part, self.groups = [], [], [], []
        self.nv = self.nuv = 0

    def add_vertices(self, pts: np.ndarray, part: int) -> np.ndarray:
        idx = np.arange(self.nv, self.nv + len(pts))
        self.v.append(np.asarray(pts, np.float64))
        self.part.append(np.full(len(pts), part))
        self.nv += len(pts)
        return idx

    def add_uv(self, uv: np.ndarray) -> np.ndarray:
        idx = np.arange(self.nuv, self.nuv + len(uv))
        self.uv.append(np.asarray(uv, np.float64))
        self.nuv += len(uv)
        return idx

    def add_faces(self, f, uvf, ref, sign: float = 1.0) -> None:
        """Triangles that should face away from ``ref`` ([3] or [F, 3]; toward it if sign < 0)."""
        f = np.asarray(f, np.int64).reshape(-1, 3)
        self.groups.append((f, np.asarray(uvf, np.int64).reshape(-1, 3), np.broadcast_to(ref, f.shape), sign))

    def finish(self):
        v = np.concatenate(self.v)
        faces, uvfs = [], []
        for f, uvf, ref, sign in self.groups:  # CCW seen from outside: flip a group by majority
            n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
            out = (v[f].mean(axis=1) - ref) * sign
            if np.sign((n * out).sum(axis=1)).sum() < 0:
                f, uvf = f[:, ::-1], uvf[:, ::-1]
            faces.append(f)
            uvfs.append(uvf)
        return v, np.concatenate(faces), np.concatenate(self.uv), np.concatenate(uvfs), np.concatenate(self.part)


def _grid_faces(a: np.ndarray, b: np.ndarray, ua: np.ndarray, ub: np.ndarray, closed: bool):
    """Triangles between two parallel vertex rows a and b (and their uv rows)."""
    n = len(a) if closed else len(a) - 1
    j = np.arange(n)
    jn = (j + 1) % len(a)
    f = np.concatenate([np.stack([a[j], b[j], b[jn]], 1), np.stack([a[j], b[jn], a[jn]], 1)])
    if ua is None:
        return f, None
    uf = np.concatenate([np.stack([ua[j], ub[j], ub[j + 1]], 1), np.stack([ua[j], ub[j + 1], ua[j + 1]], 1)])
    return f, uf


def _rect(name: str, u, v):
    u0, v0, u1, v1 = ATLAS[name]
    return np.stack([u0 + (u1 - u0) * np.asarray(u), v0 + (v1 - v0) * np.asarray(v)], -1)


def _slit_columns(x_row: np.ndarray, cos_phi: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """Front columns nearest to x = lo and x = hi on a row."""
    front = np.where(cos_phi > 0.2)[0]
    c0 = front[np.argmin(np.abs(x_row[front] - lo))]
    c1 = front[np.argmin(np.abs(x_row[front] - hi))]
    return int(c0), int(c1)


def _build_skin(m: _Mesh, surf: SkinSurface, info: dict) -> None:
    phi = column_angles()
    rows = np.arange(NR, dtype=np.float64)
    R, P = np.meshgrid(rows, phi, indexing="ij")
    closed = surf.points(R, P)  # [NR, NC, 3], lids on their seams
    cosp = np.cos(phi)
    # slits: (name, row, corner columns)
    slits = {"mouth": (ROW_MOUTH, _slit_columns(closed[ROW_MOUTH, :, 0], cosp, -MOUTH_HALF_W, MOUTH_HALF_W))}
    for eye, sx in (("left_eye", 1.0), ("right_eye", -1.0)):
        lo, hi = sorted((sx * (EYE_X - EYE_HALF_W), sx * (EYE_X + EYE_HALF_W)))
        slits[eye] = (ROW_EYE, _slit_columns(closed[ROW_EYE, :, 0], cosp, lo, hi))

    # vertex table: pole, grid, then the lower-side copies of each slit's inner columns
    r_list = [np.array([-1.0]), R.ravel()]
    phi_list = [np.array([0.0]), P.ravel()]
    grid = 1 + np.arange(NR * NC).reshape(NR, NC)
    lower_copy = {}
    nxt = 1 + NR * NC
    for name, (row, (c0, c1)) in slits.items():
        cols = np.arange(c0 + 1, c1)
        lower_copy[name] = dict(zip(cols.tolist(), (nxt + np.arange(len(cols))).tolist()))
        nxt += len(cols)
        r_list.append(np.full(len(cols), float(row)))
        phi_list.append(phi[cols])
    skin_r, skin_phi = np.concatenate(r_list), np.concatenate(phi_list)
    nskin = len(skin_r)

    # eyelids: how far each lid vertex slides (in front height) to open the eye
    lid_up, lid_down, lid_eye = np.zeros(nskin), np.zeros(nskin), np.zeros(nskin, np.int64)
    yrow = surf.y_front(rows)
    for k, eye in enumerate(("left_eye", "right_eye"), start=1):
        row, (c0, c1) = slits[eye]
        xs = closed[row, :, 0]
        mid, half = 0.5 * (xs[c0] + xs[c1]), 0.5 * abs(xs[c1] - xs[c0])
        lateral = np.sign(mid)
        for c in range(c0 + 1, c1):
            u = (xs[c] - mid) / half
            ul = u * lateral  # +1 at the outer corner
            h_up = LID_UP * (1 - u * u) ** 0.7 * (1.0 - 0.12 * ul)
            h_dn = LID_DOWN * (1 - u * u) ** 0.8 * (1.0 + 0.15 * ul)
            for i in range(NR):
                d = yrow[i] - LID_SEAM_Y
                if 0 <= d < LID_BAND_UP and (i <= row):
                    lid_up[grid[i, c]] = h_up * (1.0 - smoothstep(0.0, LID_BAND_UP, d))
                    lid_eye[grid[i, c]] = k
                if i > row and -d < LID_BAND_DOWN:
                    lid_down[grid[i, c]] = -h_dn * (1.0 - smoothstep(0.0, LID_BAND_DOWN, -d))
                    lid_eye[grid[i, c]] = k
            cp = lower_copy[eye][c]
            lid_down[cp], lid_eye[cp] = -h_dn, k
    lid_vertices = np.where(lid_eye > 0)[0]
    r_open = skin_r.copy()
    slide = lid_up[lid_vertices] + lid_down[lid_vertices]
    r_open[lid_vertices] = surf.row_of_y(surf.y_front(skin_r[lid_vertices]) + slide)
    pts = surf.points(r_open, skin_phi)
    m.add_vertices(pts, SKIN)

    # uv: a regular (NR x NC+1) grid (column NC repeats column 0 at u = 1), one pole uv per column
    uu = np.arange(NC + 1) / NC
    vv = 1.0 - (rows + 1) / NR
    UG = m.add_uv(_rect("skin", *np.meshgrid(uu, vv)).reshape(-1, 2)).reshape(NR, NC + 1)
    UP = m.add_uv(_rect("skin", (np.arange(NC) + 0.5) / NC, np.ones(NC)))

    faces, uvf = [], []
    j = np.arange(NC)
    faces.append(np.stack([np.zeros(NC, np.int64), grid[0, j], grid[0, (j + 1) % NC]], 1))
    uvf.append(np.stack([UP, UG[0, j], UG[0, j + 1]], 1))
    for i in range(NR - 1):
        top = grid[i].copy()
        for name, (row, (c0, c1)) in slits.items():
            if row == i:
                for c, cp in lower_copy[name].items():
                    top[c] = cp
        f, uf = _grid_faces(np.append(top, top[0]), np.append(grid[i + 1], grid[i + 1, 0]), UG[i], UG[i + 1], False)
        faces.append(f)
        uvf.append(uf)
    faces = np.concatenate(faces)
    c = pts[faces].mean(axis=1)
    ref = np.stack([np.zeros(len(c)), np.clip(c[:, 1], -0.2, 0.06), np.full(len(c), -0.01)], -1)
    m.add_faces(faces, np.concatenate(uvf), ref)

    def seam(name):
        row, (c0, c1) = slits[name]
        cols = np.arange(c0 + 1, c1)
        return grid[row, cols], np.array([lower_copy[name][c] for c in cols]), grid[row, [c0, c1]]

    info.update(skin_count=nskin, skin_r=skin_r, skin_phi=skin_phi, grid=grid, slits=slits, lower_copy=lower_copy,
                lid_up=lid_up, lid_down=lid_down, lid_eye=lid_eye, lid_vertices=lid_vertices, seam=seam,
                closed_grid=closed, skin_uv_grid=UG)
    # which side of the lip seam a skin vertex is on: +1 above (upper lip), -1 below, 0 corners
    side = np.where(skin_r <= ROW_MOUTH, 1, -1)
    up, lo, corners = seam("mouth")
    side[lo], side[corners] = -1, 0
    side[0] = 1
    info["mouth_side"] = side


def _build_cavity(m: _Mesh, info: dict) -> None:
    up, lo, corners = info["seam"]("mouth")
    v = np.concatenate(m.v)
    loop = np.concatenate([[corners[0]], up, [corners[1]], lo[::-1]])
    xs = v[loop, 0]
    half = 0.5 * (v[corners[1], 0] - v[corners[0], 0])
    u = np.clip(xs / half, -1, 1)
    side = np.concatenate([[0], np.ones(len(up)), [0], -np.ones(len(lo))])
    z_seam = v[loop, 2]
    zc = v[up[len(up) // 2], 2]
    rings = [loop]
    n = len(loop)
    cav_side, cav_depth = [], []
    for d, hu, hl, hw in _CAVITY:
        blend = smoothstep(0.004, 0.02, d)
        z = (1 - blend) * (z_seam - d) + blend * (zc - d)
        hh = np.where(side > 0, hu, hl)
        y = MOUTH_Y + side * hh * np.sqrt(np.maximum(1 - u * u, 0.0))
        pts = np.stack([u * hw, y, z], -1)
        rings.append(m.add_vertices(pts, CAVITY))
        cav_side.append(side)
        cav_depth.append(np.full(n, d))
    back = m.add_vertices(np.array([[0.0, MOUTH_Y, zc - CAVITY_BACK]]), CAVITY)
    axis = lambda f: np.stack([np.zeros(len(f)), np.full(len(f), MOUTH_Y),  # noqa: E731
                               np.concatenate(m.v)[f].mean(axis=1)[:, 2]], -1)
    k = len(rings)
    uu = np.arange(n + 1) / n
    UV = [m.add_uv(_rect("cavity", uu, np.full(n + 1, 1 - i / k))) for i in range(k)]
    for i in range(k - 1):
        a, b = np.append(rings[i], rings[i][0]), np.append(rings[i + 1], rings[i + 1][0])
        f, uf = _grid_faces(a, b, UV[i], UV[i + 1], False)
        m.add_faces(f, uf, axis(f), sign=-1.0)
    ub = m.add_uv(_rect("cavity", [0.5], [0.0]))
    j = np.arange(n)
    last = rings[-1]
    f = np.stack([last[j], np.full(n, back[0]), last[(j + 1) % n]], 1)
    m.add_faces(f, np.stack([UV[-1][j], np.full(n, ub[0]), UV[-1][j + 1]], 1), [0.0, MOUTH_Y, zc], sign=-1.0)
    cav = np.concatenate(rings[1:] + [back])
    info.update(cavity=cav, cavity_side=np.concatenate(cav_side + [[0]]),
                cavity_depth=np.concatenate(cav_depth + [[CAVITY_BACK]]), lip_front_z=zc, cavity_loop=loop)


def _tube(m: _Mesh, centre: np.ndarray, normal: np.ndarray, ys: np.ndarray, half_t: np.ndarray, part: int,
          atlas: str, nq: int = 12) -> np.ndarray:
    """A closed tube along the horizontal curve ``centre`` [S, 3] whose rounded cross-sections
    span heights ys [S, 2] (biting edge, root) with half thickness half_t [S] along ``normal``
    [S, 3], thinner toward the edge. Returns its vertex indices."""
    s = len(centre)
    q = np.arange(nq) / nq * 2 * np.pi
    yn = np.sign(np.sin(q)) * np.abs(np.sin(q)) ** 0.6  # -1 at the biting edge, +1 at the root
    tn = np.sign(np.cos(q)) * np.abs(np.cos(q)) ** 0.6
    first = m.nv
    rows, uv_rows, mids = [], [], []
    for k in range(s):
        edge, root = ys[k]
        thick = half_t[k] * (0.45 + 0.55 * (0.5 * (1 + yn)) ** 0.6)
        pts = centre[k] + normal[k] * (thick * tn)[:, None]
        pts[:, 1] = 0.5 * (root + edge) + 0.5 * (root - edge) * yn
        mids.append(pts.mean(axis=0))
        rows.append(m.add_vertices(pts, part))
        uv_rows.append(m.add_uv(_rect(atlas, np.full(nq + 1, k / (s - 1)), np.arange(nq + 1) / nq)))
    mids = np.array(mids)
    for k in range(s - 1):
        f, uf = _grid_faces(np.append(rows[k], rows[k][0]), np.append(rows[k + 1], rows[k + 1][0]), uv_rows[k],
                            uv_rows[k + 1], False)
        m.add_faces(f, uf, 0.5 * (mids[k] + mids[k + 1]))
    for k, inner in ((0, 1), (s - 1, s - 2)):  # end caps
        c = m.add_vertices(mids[k][None], part)
        cu = m.add_uv(_rect(atlas, [k / (s - 1)], [0.5]))
        j = np.arange(nq)
        m.add_faces(np.stack([np.full(nq, c[0]), rows[k][j], rows[k][(j + 1) % nq]], 1),
                    np.stack([np.full(nq, cu[0]), uv_rows[k][j], uv_rows[k][j + 1]], 1), mids[inner])
    return np.arange(first, m.nv)


def _arch(z0: float, width: float, depth: float, n: int = 31):
    s = np.linspace(-1, 1, n)
    a = s * np.pi / 2 * 0.95
    amax = np.pi / 2 * 0.95
    x = width * np.sin(a) / np.sin(amax)
    z = z0 - depth * (1 - np.cos(a)) / (1 - np.cos(amax))
    tx, tz = np.gradient(x), np.gradient(z)
    norm = np.hypot(tx, tz)
    normal = np.stack([-tz / norm, np.zeros(n), tx / norm], -1)
    return s, np.stack([x, np.zeros(n), z], -1), normal


def _build_teeth(m: _Mesh, info: dict) -> None:
    zc = info["lip_front_z"]
    s, c, nrm = _arch(zc - 0.0128, 0.0225, 0.031)
    c[:, 1] = MOUTH_Y
    edge = MOUTH_Y - 0.0032 + 0.0034 * s**2
    ht = 0.0030 + 0.0015 * s**2
    info["upper_teeth"] = _tube(m, c, nrm, np.stack([edge, edge + 0.0105 - 0.002 * s**2], -1), ht, TEETH_UP,
                                "upper_teeth")
    s, c, nrm = _arch(zc - 0.0170, 0.0205, 0.029)
    c[:, 1] = MOUTH_Y
    edge = MOUTH_Y - 0.0010 - 0.0004 * s**2
    ht = 0.0026 + 0.0017 * s**2
    info["lower_teeth"] = _tube(m, c, nrm, np.stack([edge, edge - 0.0095 + 0.002 * s**2], -1), ht, TEETH_LOW,
                                "lower_teeth")
    info["teeth_arch_s"] = s


def _uv_sphere(n_lat: int, n_lon: int):
    """Unit sphere with poles on +z / -z. Returns vertices [V, 3], faces [F, 3], uv parameters
    [Vt, 2] = (azimuth / 2 pi, polar angle / pi) with a repeated column where the azimuth wraps
    and one uv per pole triangle, and uv faces [F, 3]."""
    th = np.arange(1, n_lat) / n_lat * np.pi
    az = np.arange(n_lon) / n_lon * 2 * np.pi
    T, A = np.meshgrid(th, az, indexing="ij")
    v = np.stack([np.sin(T) * np.cos(A), np.sin(T) * np.sin(A), np.cos(T)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1.0]], v, [[0, 0, -1.0]]])
    idx = 1 + np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    uidx = np.arange((n_lat - 1) * (n_lon + 1)).reshape(n_lat - 1, n_lon + 1)
    uu, vv = np.meshgrid(np.arange(n_lon + 1) / n_lon, th / np.pi)
    uv = np.stack([uu, vv], -1).reshape(-1, 2)
    nuv = len(uv)
    poles = np.stack([(np.arange(n_lon) + 0.5) / n_lon, np.zeros(n_lon)], -1)
    uv = np.concatenate([uv, poles, poles + [0, 1]])
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    last = len(v) - 1
    f = [np.stack([np.zeros(n_lon, np.int64), idx[0, j], idx[0, jn]], 1)]
    uf = [np.stack([nuv + j, uidx[0, j], uidx[0, j + 1]], 1)]
    for i in range(n_lat - 2):
        a, b = _grid_faces(np.append(idx[i], idx[i, 0]), np.append(idx[i + 1], idx[i + 1, 0]), uidx[i], uidx[i + 1],
                           False)
        f.append(a)
        uf.append(b)
    f.append(np.stack([idx[-1, j], np.full(n_lon, last), idx[-1, jn]], 1))
    uf.append(np.stack([uidx[-1, j], nuv + n_lon + j, uidx[-1, j + 1]], 1))
    return v, np.concatenate(f), uv, np.concatenate(uf)


def _add_sphere(m: _Mesh, pts, faces, part, centre, uv, uvf) -> np.ndarray:
    idx = m.add_vertices(pts, part)
    m.add_faces(idx[faces], m.add_uv(uv)[uvf], centre)
    return idx


def _build_tongue(m: _Mesh, info: dict) -> None:
    v, f, uvp, uvf = _uv_sphere(12, 18)
    p = v * np.array([0.0160, 0.0070, 0.0250])
    p[:, 1] = np.where(p[:, 1] < 0, 0.55 * p[:, 1], p[:, 1])
    p[:, 1] -= 0.0009 * np.exp(-((p[:, 0] / 0.004) ** 2)) * (p[:, 1] > 0)  # median groove
    p[:, 1] += 0.0025 * (p[:, 2] / 0.025)  # the tip lower than the back
    centre = np.array([0.0, MOUTH_Y - 0.0092, info["lip_front_z"] - 0.0435])
    info["tongue"] = _add_sphere(m, p + centre, f, TONGUE, centre, _rect("tongue", uvp[:, 0], 1 - uvp[:, 1]), uvf)


def _build_eyes(m: _Mesh, info: dict) -> None:
    """Eyeballs looking down +z; their uv is a disk (centre = the pupil, rim = the back pole)."""
    v, f, uvp, uvf = _uv_sphere(16, 24)
    a, rho = uvp[:, 0] * 2 * np.pi, uvp[:, 1] * 0.98
    uv = _rect("eyeball", 0.5 + 0.5 * rho * np.cos(a), 0.5 + 0.5 * rho * np.sin(a))
    for part, sx, name in ((EYE_L, 1.0, "left_eyeball"), (EYE_R, -1.0, "right_eyeball")):
        centre = np.array([sx * EYE_X, EYE_Y, EYE_Z])
        info[name] = _add_sphere(m, v * EYEBALL_R + centre, f, part, centre, uv, uvf)
        info[name + "_centre"] = centre


def _build_ears(m: _Mesh, info: dict) -> None:
    v, f, uvp, uvf = _uv_sphere(12, 16)
    # local axes: a out of the head, b up, c forward
    a, b, c = v[:, 0] * 0.0095, v[:, 2] * 0.0310, v[:, 1] * 0.0180
    q = ((b + 0.004) / 0.020) ** 2 + ((c - 0.002) / 0.011) ** 2  # the bowl (concha and scapha)
    a = a - (a > 0) * 0.0090 * np.clip(1 - q, 0, None) ** 1.5
    a = a * (1 - 0.45 * smoothstep(-0.012, -0.03, b))  # thin lobe
    a = a + 0.0040 * (a > 0) * smoothstep(0.0, 0.03, b)  # the helix stands out at the top
    tilt, turn = -0.22, 0.35
    y1 = b * np.cos(tilt) - c * np.sin(tilt)
    z1 = b * np.sin(tilt) + c * np.cos(tilt)
    x2 = a * np.cos(turn) + z1 * np.sin(turn)
    z2 = -a * np.sin(turn) + z1 * np.cos(turn)
    uv = _rect("ear", uvp[:, 0], 1 - uvp[:, 1])
    for part, sx, name in ((EAR_L, 1.0, "left_ear"), (EAR_R, -1.0, "right_ear")):
        centre = np.array([sx * 0.0775, 0.0035, -0.0105])
        pts = np.stack([sx * x2, y1, z2], -1) + centre
        info[name] = _add_sphere(m, pts, f, part, centre - np.array([sx * 0.004, 0, 0]), uv, uvf)
    info["ear_bowl"] = np.clip(1 - q, 0, None) * (v[:, 0] > 0)


def build_geometry() -> Geometry:
    surf = SkinSurface()
    m = _Mesh()
    info: dict = {}
    _build_skin(m, surf, info)
    _build_cavity(m, info)
    _build_teeth(m, info)
    _build_tongue(m, info)
    _build_eyes(m, info)
    _build_ears(m, info)
    v, faces, uv, uvf, part = m.finish()
    return Geometry(v, faces, uv, uvf, part, surf, info)

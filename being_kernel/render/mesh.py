"""A textured-mesh reference rasterizer (torch, vectorized, not differentiable).

It runs on the device of ``vertices`` (the CPU, or a CUDA GPU: it needs float64).

It makes ground-truth frames for tests, benchmarks and synthetic data, independently of any
Gaussian code, so it favours exactness over features:

- Cameras follow ``camera.py`` (OpenCV: x right, y down, z forward; the centre of pixel (i, j)
  is at (j + 0.5, i + 0.5)). Each pixel holds ``S x S`` subsamples (``S = supersample``); the
  centre of subsample (k, l) of pixel (i, j) is at (j + (l + 0.5) / S, i + (k + 0.5) / S).
- Coverage uses edge functions with a top-left fill rule, so triangles that share an edge cover
  each sample on it exactly once. Each edge function is evaluated with its two vertices in a
  fixed order (lower vertex index first) and negated as needed, which makes the value on a shared
  edge bitwise the same for both triangles.
- Near plane: a triangle with any vertex at camera z <= ``near`` is skipped whole (no clipping).
- Back-face culling: faces are counter-clockwise seen from outside in the right-handed model
  frame. The OpenCV camera frame is right-handed too, so a front face also appears
  counter-clockwise on the displayed image (y down); in pixel coordinates its signed area
  ``(x1 - x0) (y2 - y0) - (y1 - y0) (x2 - x0)`` is negative. ``cull_backfaces`` drops faces whose
  signed area is positive (this assumes fx, fy > 0).
- Z-buffer: the nearest camera z wins; equal depths go to the lower face index.
- Attributes (uv, vertex colours) are interpolated perspective-correctly: the screen-space
  barycentrics are divided by each vertex's camera z and renormalised.
- Textures: uv in [0, 1] with v up, texture row 0 at the top (v = 1); texel (r, c) is centred
  at u = (c + 0.5) / Wt, v = 1 - (r + 0.5) / Ht; bilinear filtering, addressing ``"clamp"``
  (clamp to edge, the default) or ``"repeat"`` (wrap around). No mipmapping.
- Surface colour = texture lookup (if a texture is given) x vertex colour (if given), white
  without either. The supersampled image is average-pooled; ``alpha`` is the covered fraction of
  the subsamples and the background shows through the rest.
- ``depth`` and ``face_ids`` come from the pixel centre: the centre subsample for odd ``S``, a
  separate one-sample-per-pixel pass for even ``S``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..cameras import Cameras

_EMPTY = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF
_CHUNK = 1 << 20  # candidate samples per vectorized step


@dataclass
class MeshImages:
    """Rendered images of a batch of B views.

    rgb       [B, H, W, 3] float32, composited over the background
    alpha     [B, H, W, 1] float32 covered fraction of the subsamples
    depth     [B, H, W, 1] float32 camera z of the nearest surface at the pixel centre, inf if empty
    face_ids  [B, H, W]    int64 index of that face, -1 if empty
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    face_ids: torch.Tensor


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, cameras: Cameras, *,
                uv_coords: torch.Tensor | None = None, uv_faces: torch.Tensor | None = None,
                texture: torch.Tensor | None = None, vertex_colors: torch.Tensor | None = None,
                background: torch.Tensor | Sequence[float] | None = None, supersample: int = 4,
                cull_backfaces: bool = True, near: float = 1e-3, texture_wrap: str = "clamp") -> MeshImages:
    """Rasterize a triangle mesh into ``cameras``.

    vertices [B, V, 3] or [V, 3] world positions (B = 1 or the camera count; one mesh or one
    camera is broadcast);  faces [F, 3] int vertex indices;  uv_coords [Vt, 2] with uv_faces
    [F, 3] (default: ``faces``) and texture [Ht, Wt, 3] in [0, 1];  vertex_colors [V, 3];
    background [3] (default black);  supersample S >= 1 subsamples per pixel side.
    """
    with torch.no_grad():
        return _render(vertices, faces, cameras, uv_coords, uv_faces, texture, vertex_colors, background,
                       supersample, cull_backfaces, near, texture_wrap)


def _render(vertices, faces, cameras, uv_coords, uv_faces, texture, vertex_colors, background, supersample,
            cull_backfaces, near, texture_wrap) -> MeshImages:
    if vertices.ndim == 2:
        vertices = vertices[None]
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"render_mesh: vertices must be [B, V, 3] or [V, 3], got {tuple(vertices.shape)}")
    n_views = max(len(cameras), vertices.shape[0])
    if {len(cameras), vertices.shape[0]} - {1, n_views}:
        raise ValueError(f"render_mesh: {vertices.shape[0]} meshes for {len(cameras)} cameras")
    num_v = vertices.shape[1]
    device = vertices.device
    faces = torch.as_tensor(faces, device=device).long()
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.numel() and (faces.min() < 0 or faces.max() >= num_v)):
        raise ValueError(f"render_mesh: faces must be [F, 3] indices below {num_v}")
    if not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"render_mesh: supersample must be a positive int, got {supersample!r}")
    if texture_wrap not in ("clamp", "repeat"):
        raise ValueError(f"render_mesh: texture_wrap must be 'clamp' or 'repeat', got {texture_wrap!r}")
    shading = _Shading.build(faces, num_v, uv_coords, uv_faces, texture, vertex_colors, texture_wrap)
    bg = torch.zeros(3, device=device) if background is None else torch.as_tensor(background, dtype=torch.float32,
                                                                                   device=device)
    if bg.shape != (3,):
        raise ValueError(f"render_mesh: background must be [3], got {tuple(bg.shape)}")

    verts = vertices.detach().double()
    R, t, K = (x.detach().to(device).double() for x in (cameras.R, cameras.t, cameras.K))
    cam = verts @ R.transpose(1, 2) + t[:, None]  # [n_views, V, 3]
    uvw = cam @ K.transpose(1, 2)
    xy = uvw[..., :2] / uvw[..., 2:3]
    h, w, s = cameras.height, cameras.width, supersample

    out = []
    for b in range(n_views):
        tri_xy = xy[b][faces]  # [F, 3, 2] pixels
        tri_z = cam[b, :, 2][faces]  # [F, 3]
        e1, e2 = tri_xy[:, 1] - tri_xy[:, 0], tri_xy[:, 2] - tri_xy[:, 0]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        keep = (tri_z > near).all(1) & torch.isfinite(tri_xy).all(2).all(1) & (area != 0)
        if cull_backfaces:
            keep &= area < 0
        ids = keep.nonzero().squeeze(1)
        tri = _Triangles(ids, tri_xy[ids], tri_z[ids], faces[ids], torch.sign(area[ids]))
        zbuf = _rasterize(tri, s, h * s, w * s)
        centre = (zbuf.view(h, s, w, s)[:, s // 2, :, s // 2].reshape(-1) if s % 2 else _rasterize(tri, 1, h, w))
        out.append(_resolve(zbuf, centre, tri, shading, bg, h, w, s))
    return MeshImages(*(torch.stack(parts) for parts in zip(*out)))


@dataclass
class _Triangles:
    """The triangles left after culling: face ids [T], pixel positions [T, 3, 2] (float64),
    camera z [T, 3], vertex ids [T, 3] and orientation sign [T] (+1 or -1)."""

    ids: torch.Tensor
    xy: torch.Tensor
    z: torch.Tensor
    vid: torch.Tensor
    orient: torch.Tensor


def _spans(counts: torch.Tensor, limit: int):
    """Split the concatenation of ``counts`` [N] items into ranges of at most ``limit``: yields
    (owner [n] index of each item's entry, offset [n] of the item within its entry)."""
    ends = counts.cumsum(0)
    starts = ends - counts
    total = int(ends[-1]) if ends.numel() else 0
    for s0 in range(0, total, limit):
        s1 = min(s0 + limit, total)
        t0 = int(torch.searchsorted(ends, s0, right=True))
        t1 = int(torch.searchsorted(ends, s1 - 1, right=True))
        seg = ends[t0:t1 + 1].clamp(max=s1) - starts[t0:t1 + 1].clamp(min=s0)
        owner = torch.repeat_interleave(torch.arange(t0, t1 + 1, device=counts.device), seg)
        yield owner, torch.arange(s0, s1, device=counts.device) - starts.index_select(0, owner)


def _rasterize(tri: _Triangles, scale: int, hg: int, wg: int) -> torch.Tensor:
    """Z-buffer of a ``hg x wg`` sample grid (``scale`` samples per pixel side): [hg * wg] int64
    keys ``float32 depth bits << 32 | face id``, ``_EMPTY`` where nothing covers the sample.

    Candidates are enumerated row by row over each triangle's span in that row (padded by one
    sample); the exact coverage test then runs in float32 on every candidate."""
    device = tri.xy.device
    zbuf = torch.full((hg * wg,), _EMPTY, dtype=torch.int64, device=device)
    g = (tri.xy * scale).float()  # [T, 3, 2] grid units: sample (kx, ky) is centred at (kx + .5, ky + .5)
    lo, hi = g.amin(1), g.amax(1)
    k0 = torch.ceil(lo - 0.5).clamp(min=0).long()
    k1 = torch.minimum(torch.floor(hi - 0.5).long(), torch.tensor([wg - 1, hg - 1], device=device))
    rows = (k1[:, 1] - k0[:, 1] + 1).clamp(min=0) * (k1[:, 0] >= k0[:, 0])
    sel = (rows > 0).nonzero().squeeze(1)
    if sel.numel() == 0:
        return zbuf
    g, rows, k0, k1 = g[sel], rows[sel], k0[sel], k1[sel]
    vid, orient = tri.vid[sel], tri.orient[sel].float()

    # Edge i is opposite vertex i. Its function E = ex (py - ay) - ey (px - ax) is evaluated from
    # the endpoint with the lower vertex index (so bitwise the same in both triangles sharing it)
    # and signed so that inside is E >= 0 for either winding.
    edge, tl = [], []
    for i in range(3):
        a, c = (i + 1) % 3, (i + 2) % 3
        swap = vid[:, a] > vid[:, c]
        pa = torch.where(swap[:, None], g[:, c], g[:, a])
        pb = torch.where(swap[:, None], g[:, a], g[:, c])
        sign = orient * torch.where(swap, -1.0, 1.0)
        ex, ey = (pb[:, 0] - pa[:, 0]) * sign, (pb[:, 1] - pa[:, 1]) * sign
        edge.append((pa[:, 0], pa[:, 1], ex, ey))
        tl.append((ey < 0) | ((ey == 0) & (ex > 0)))  # top or left edge: samples exactly on it count
    inv_z = (1.0 / tri.z[sel]).float()
    flags = tl[0].long() + 2 * tl[1].long() + 4 * tl[2].long()

    # Rows: each triangle's sample rows, with the candidate span [xlo, xhi] in each.
    r_tri = torch.repeat_interleave(torch.arange(sel.numel(), device=device), rows)
    first_row = (rows.cumsum(0) - rows - k0[:, 1]).index_select(0, r_tri)
    ky = torch.arange(r_tri.numel(), device=device) - first_row
    py = ky.float() + 0.5
    xlo, xhi = k0[:, 0].index_select(0, r_tri).double(), k1[:, 0].index_select(0, r_tri).double()
    row_ok = torch.ones_like(py, dtype=torch.bool)
    row_terms = []
    for ax, ay, ex, ey in edge:
        ax, ay, ex, ey = (v.index_select(0, r_tri) for v in (ax, ay, ex, ey))
        term = ex * (py - ay)  # float32, bitwise as in the per-sample test below
        row_terms.append(term)
        cross = ax.double() + term.double() / ey.double()  # px where E = 0 on this row
        xhi = torch.where(ey > 0, torch.minimum(xhi, torch.floor(cross - 0.5) + 1), xhi)
        xlo = torch.where(ey < 0, torch.maximum(xlo, torch.ceil(cross - 0.5) - 1), xlo)
        row_ok &= (ey != 0) | (term >= 0)
    width = ((xhi - xlo + 1).clamp(min=0) * row_ok).long()
    row_f = torch.stack(row_terms)  # [3, R]
    row_i = torch.stack([xlo.long(), ky, r_tri])  # [3, R]
    tri_f = torch.stack([edge[i][j] for i in range(3) for j in (3, 0)])  # [6, T]: ey_i, ax_i
    hit_f = inv_z.t().contiguous()  # [3, T]
    hit_i = torch.stack([tri.ids[sel], flags])  # [2, T]

    for r, off in _spans(width, _CHUNK):
        ri = row_i.index_select(1, r)
        kx, kyy, t = ri[0] + off, ri[1], ri[2]
        px = kx.float() + 0.5
        rf = row_f.index_select(1, r)
        tf = tri_f.index_select(1, t)
        e = [rf[i] - tf[2 * i] * (px - tf[2 * i + 1]) for i in range(3)]
        inside = (e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)
        hit = inside.nonzero().squeeze(1)
        if hit.numel() == 0:
            continue
        e = [x.index_select(0, hit) for x in e]
        th = t.index_select(0, hit)
        hi_i = hit_i.index_select(1, th)
        on_edge = (e[0] == 0) | (e[1] == 0) | (e[2] == 0)
        if bool(on_edge.any()):  # top-left rule for samples exactly on an edge
            keep = torch.ones_like(on_edge)
            for i in range(3):
                keep &= (e[i] != 0) | ((hi_i[1] >> i) & 1).bool()
            esum = e[0] + e[1] + e[2]
            keep &= esum > 0
            k = keep.nonzero().squeeze(1)
            e = [x.index_select(0, k) for x in e]
            th, hi_i, hit = th.index_select(0, k), hi_i.index_select(1, k), hit.index_select(0, k)
        iz = hit_f.index_select(1, th)
        depth = (e[0] + e[1] + e[2]) / (e[0] * iz[0] + e[1] * iz[1] + e[2] * iz[2])
        key = (depth.view(torch.int32).long() << 32) | hi_i[0]
        pix = kyy.index_select(0, hit) * wg + kx.index_select(0, hit)
        zbuf.scatter_reduce_(0, pix, key, reduce="amin")
    return zbuf


@dataclass
class _Shading:
    """Per-face attributes: corner values [F, 3, K] (uv first if textured, then colours) and
    the texture as planes [3, Ht, Wt]."""

    corners: torch.Tensor | None
    texture: torch.Tensor | None
    has_colors: bool
    wrap: str

    @staticmethod
    def build(faces, num_v, uv_coords, uv_faces, texture, vertex_colors, wrap) -> _Shading:
        parts, tex = [], None
        if texture is not None or uv_coords is not None:
            if texture is None or uv_coords is None:
                raise ValueError("render_mesh: texture and uv_coords come together")
            tex = torch.as_tensor(texture).detach().to(faces.device).float()
            uv = torch.as_tensor(uv_coords).detach().to(faces.device).float()
            if tex.ndim != 3 or tex.shape[2] != 3:
                raise ValueError(f"render_mesh: texture must be [Ht, Wt, 3], got {tuple(tex.shape)}")
            if uv.ndim != 2 or uv.shape[1] != 2:
                raise ValueError(f"render_mesh: uv_coords must be [Vt, 2], got {tuple(uv.shape)}")
            uvf = faces if uv_faces is None else torch.as_tensor(uv_faces).to(faces.device).long()
            if uvf.shape != faces.shape or (uvf.numel() and (uvf.min() < 0 or uvf.max() >= uv.shape[0])):
                raise ValueError(f"render_mesh: uv_faces must be [F, 3] indices below {uv.shape[0]}")
            parts.append(uv[uvf])
            tex = tex.permute(2, 0, 1).contiguous()
        elif uv_faces is not None:
            raise ValueError("render_mesh: uv_faces given without uv_coords and texture")
        if vertex_colors is not None:
            vc = torch.as_tensor(vertex_colors).detach().to(faces.device).float()
            if vc.shape != (num_v, 3):
                raise ValueError(f"render_mesh: vertex_colors must be [{num_v}, 3], got {tuple(vc.shape)}")
            parts.append(vc[faces])
        corners = torch.cat(parts, 2) if parts else None
        return _Shading(corners, tex, vertex_colors is not None, wrap)

    def shade(self, values: torch.Tensor) -> torch.Tensor:
        """Colours [3, M] from interpolated attributes [K, M]."""
        col = torch.ones(3, values.shape[1], device=values.device)
        if self.texture is not None:
            col = sample_texture(self.texture, values[0], values[1], self.wrap)
        if self.has_colors:
            col = col * values[-3:]
        return col


def sample_texture(tex: torch.Tensor, u: torch.Tensor, v: torch.Tensor, wrap: str = "clamp") -> torch.Tensor:
    """Bilinear lookup of texture planes [C, Ht, Wt] (row 0 at v = 1) at u, v [M] -> [C, M]."""
    c, ht, wt = tex.shape
    x = u * wt - 0.5
    y = (1.0 - v) * ht - 0.5
    x0f, y0f = torch.floor(x), torch.floor(y)
    ax, ay = x - x0f, y - y0f
    x0, y0 = x0f.long(), y0f.long()

    def fix(i: torch.Tensor, n: int) -> torch.Tensor:
        return torch.remainder(i, n) if wrap == "repeat" else i.clamp(0, n - 1)

    xa, xb, ya, yb = fix(x0, wt), fix(x0 + 1, wt), fix(y0, ht) * wt, fix(y0 + 1, ht) * wt
    flat = tex.reshape(c, -1)
    top = torch.lerp(flat.index_select(1, ya + xa), flat.index_select(1, ya + xb), ax)
    bottom = torch.lerp(flat.index_select(1, yb + xa), flat.index_select(1, yb + xb), ax)
    return torch.lerp(top, bottom, ay)


def _linear_forms(tri: _Triangles, corners: torch.Tensor | None, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective-correct interpolation as ratios of screen-space linear forms.

    Relative to a per-triangle integer origin o (grid units), barycentric_i / z_i is a linear
    form a x + b y + c of the sample position (x, y) - o. Returns origins [2, T] int64 and
    coefficients [3 (a, b, c), 1 + K, T] float32 of the denominator sum_i bary_i / z_i and of
    sum_i bary_i / z_i * attr_ik for the K attributes of ``corners`` [T, 3, K]."""
    g = tri.xy * scale  # float64 [T, 3, 2]
    origin = torch.floor(g[:, 0]).long()
    q = g - origin[:, None].double()
    coef = []
    for i in range(3):
        a, c = q[:, (i + 1) % 3], q[:, (i + 2) % 3]
        dx, dy = c[:, 0] - a[:, 0], c[:, 1] - a[:, 1]
        coef.append(torch.stack([-dy, dx, dy * a[:, 0] - dx * a[:, 1]]) / tri.z[:, i])  # [3, T]
    coef = torch.stack(coef, 1)  # [3 (a, b, c), 3 corners, T]
    attrs = torch.ones(coef.shape[2], 3, 1, dtype=torch.float64, device=coef.device)
    if corners is not None:
        attrs = torch.cat([attrs, corners.double()], 2)  # [T, 3, 1 + K]
    forms = torch.einsum("pit,tik->pkt", coef, attrs)
    return origin.t().contiguous(), forms.float().contiguous()


def _resolve(zbuf: torch.Tensor, centre: torch.Tensor, tri: _Triangles, shading: _Shading, bg: torch.Tensor,
             h: int, w: int, s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shade the winning face of each subsample and pool to pixels."""
    wg = w * s
    covered = zbuf != _EMPTY
    idx = covered.nonzero().squeeze(1)
    device = zbuf.device
    color = torch.zeros(3, zbuf.shape[0], device=device)
    if idx.numel():
        face = zbuf.index_select(0, idx) & _LOW32
        row = torch.full((int(tri.ids.max()) + 1,), -1, dtype=torch.long, device=device)  # face id -> row in tri
        row[tri.ids] = torch.arange(tri.ids.numel(), device=device)
        r = row.index_select(0, face)
        corners = None if shading.corners is None else shading.corners.index_select(0, tri.ids)
        origin, forms = _linear_forms(tri, corners, s)
        o = origin.index_select(1, r)
        x = (idx % wg - o[0]).float() + 0.5
        y = (torch.div(idx, wg, rounding_mode="floor") - o[1]).float() + 0.5
        k = forms.shape[1]
        f = forms.reshape(3 * k, -1).index_select(1, r).view(3, k, -1)
        lin = f[0] * x + f[1] * y + f[2]  # [1 + K, M]
        color[:, idx] = shading.shade(lin[1:] / lin[0])
    cov = covered.float().view(h, s, w, s)
    alpha = cov.mean((1, 3))
    rgb = color.view(3, h, s, w, s).mean((2, 4)).permute(1, 2, 0) + (1 - alpha)[..., None] * bg
    hit = centre != _EMPTY
    depth = torch.where(hit, (centre >> 32).int().view(torch.float32), torch.tensor(float("inf"), device=device))
    face_ids = torch.where(hit, centre & _LOW32, torch.tensor(-1, device=device))
    return rgb, alpha[..., None], depth.view(h, w, 1), face_ids.view(h, w)

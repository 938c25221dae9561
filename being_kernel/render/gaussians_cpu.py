"""The project's own Gaussian rasterizer: vectorized PyTorch, any device, differentiable.

It reproduces the math of gsplat's ``rasterization`` (v1.5, ``packed=False``,
``rasterize_mode="classic"``): EWA projection with gsplat's clamped Jacobian, a 0.3 px² low-pass
dilation, opacity-aware bounding boxes, culling, per-pixel ``alpha = min(0.999, o·exp(-σ))``,
skipping ``alpha < 1/255``, front-to-back compositing in depth order that stops *before* the
Gaussian that would take transmittance to ``<= 1e-4``, pixel centres at ``+0.5``. See
``docs/rendering.md`` for the formulas and where each constant comes from.

How it is organised (speed on a few CPU cores is the design goal):

1. :func:`project` — every Gaussian of every image at once: camera-space mean, 2D mean, conic
   (inverse 2D covariance), depth and the opacity-aware screen radius. Differentiable.
2. Binning (no gradient): one global stable sort by depth, then (tile, Gaussian) pairs from each
   Gaussian's bounding box, refined by an exact ellipse-vs-tile test (a pair is kept when some
   pixel centre of the tile can reach ``alpha >= 1/255``; pairs it drops contribute nothing in
   gsplat either), then a stable sort by tile, so each tile's list stays in depth order.
3. Compositing: tiles are processed in groups of similar list length; each group walks its lists
   in depth chunks of ``chunk`` Gaussians with dense ``[tiles, chunk, pixels]`` tensors. The
   exponent of every (Gaussian, pixel) pair is one batched matrix product (a quadratic in the
   pixel's offset from the tile centre), transmittance is a cumulative product along the chunk,
   and colour, depth and alpha are one more batched matrix product. A tile leaves the loop once
   every pixel in it has terminated, so Gaussians hidden behind an opaque surface cost nothing.

Under ``torch.no_grad()`` (or when no input needs a gradient) the same operations run in place
into reused buffers; the results are bitwise identical to the autograd path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .rotations import quat_to_rotmat

#: gsplat ``ALPHA_THRESHOLD`` (``1.f / 255.f``, gsplat/cuda/include/Common.h).
ALPHA_THRESHOLD = 1.0 / 255.0
#: per-pixel opacity cap (``min(0.999f, opac * __expf(-sigma))``, RasterizeToPixels3DGSFwd.cu).
ALPHA_MAX = 0.999
#: a pixel stops when the next Gaussian would take its transmittance to ``<= 1e-4``; that Gaussian
#: is not composited (RasterizeToPixels3DGSFwd.cu: ``if (next_T <= 1e-4f) { done = true; break; }``).
T_EPS = 1e-4
#: low-pass dilation added to the 2D covariance's diagonal (``eps2d=0.3`` in gsplat's ``rasterization``).
EPS2D = 0.3
#: bounding-box extent cap in standard deviations (``extend = 3.33f``, ProjectionEWA3DGSFused.cu).
EXTEND_MAX = 3.33
#: the Jacobian's x/z, y/z are clamped to the image's half-extent plus 0.3·tan(fov/2) on each side
#: (the "1.3 × fov" rule; ``persp_proj`` in gsplat/cuda/include/Utils.cuh).
FOV_MARGIN = 0.3

_LOG2E = 1.4426950408889634


# --------------------------------------------------------------------------------------------
# projection


def project(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
            R: torch.Tensor, t: torch.Tensor, K: torch.Tensor, width: int, height: int,
            near: float = 0.01, far: float = 1e3, eps2d: float = EPS2D) -> dict[str, torch.Tensor]:
    """EWA-project Gaussians: means [B,N,3], quats [B,N,4], scales [B,N,3], opacities [B,N] with
    world-to-camera R [B,3,3], t [B,3] and intrinsics K [B,3,3].

    Returns (all [B, N, ...]): ``means2d`` [..,2] pixels, ``conics`` [..,3] = (a, b, c) of the
    inverse 2D covariance [[a, b], [b, c]], ``depths`` camera z, ``radii`` [..,2] int pixel
    half-extents (0 = culled), ``valid`` bool. Values of culled Gaussians are finite but meaningless.
    """
    mc = torch.einsum("bij,bnj->bni", R, means) + t[:, None, :]
    x, y, z = mc.unbind(-1)
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]
    cx, cy = K[:, 0, 2, None], K[:, 1, 2, None]
    in_depth = (z >= near) & (z <= far)
    zs = torch.where(in_depth, z, torch.ones_like(z))  # keeps culled Gaussians' gradients finite

    # covariance in camera space: (R_cam R_q S)(R_cam R_q S)^T
    M = quat_to_rotmat(quats) * scales[..., None, :]
    Mc = R[:, None] @ M  # [B,N,3,3]

    # perspective Jacobian with gsplat's clamping of x/z, y/z to 1.3x the field of view
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_xp, lim_xn = (width - cx) / fx + FOV_MARGIN * tan_fovx, cx / fx + FOV_MARGIN * tan_fovx
    lim_yp, lim_yn = (height - cy) / fy + FOV_MARGIN * tan_fovy, cy / fy + FOV_MARGIN * tan_fovy
    rz = 1.0 / zs
    tx = zs * torch.minimum(lim_xp, torch.maximum(-lim_xn, x * rz))
    ty = zs * torch.minimum(lim_yp, torch.maximum(-lim_yn, y * rz))
    rz2 = rz * rz
    zero = torch.zeros_like(rz)
    J = torch.stack([torch.stack([fx * rz, zero, -fx * tx * rz2], -1),
                     torch.stack([zero, fy * rz, -fy * ty * rz2], -1)], -2)  # [B,N,2,3]
    JM = J @ Mc
    cov2d = JM @ JM.transpose(-1, -2)
    c00 = cov2d[..., 0, 0] + eps2d
    c01 = cov2d[..., 0, 1]
    c11 = cov2d[..., 1, 1] + eps2d
    det = c00 * c11 - c01 * c01
    ok_det = det > 0
    inv_det = 1.0 / torch.where(ok_det, det, torch.ones_like(det))
    conics = torch.stack([c11 * inv_det, -c01 * inv_det, c00 * inv_det], -1)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], -1)

    with torch.no_grad():  # opacity-aware tight bounding box (gsplat >= 1.5), culling
        op = opacities.detach()
        ok_op = op >= ALPHA_THRESHOLD
        extend = torch.sqrt(2.0 * torch.log(op.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD)).clamp_max(EXTEND_MAX)
        rx = torch.ceil(extend * c00.detach().clamp_min(0).sqrt())
        ry = torch.ceil(extend * c11.detach().clamp_min(0).sqrt())
        mx, my = means2d[..., 0].detach(), means2d[..., 1].detach()
        on_screen = (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        valid = in_depth & ok_det & ok_op & ((rx > 0) | (ry > 0)) & on_screen
        radii = torch.stack([rx, ry], -1).to(torch.int32) * valid[..., None]
    return {"means2d": means2d, "conics": conics, "depths": z, "radii": radii, "valid": valid}


# --------------------------------------------------------------------------------------------
# binning


def _min_sigma_on_rect(mx, my, a, b, c, x0, x1, y0, y1):
    """Minimum of 0.5·(a du² + 2 b du dv + c dv²) (du = u - mx, dv = v - my) over the rectangle
    [x0,x1]×[y0,y1] (all tensors of one shape; a, c > 0, a c > b²)."""
    inside = (mx >= x0) & (mx <= x1) & (my >= y0) & (my <= y1)

    def q(u, v):
        du, dv = u - mx, v - my
        return 0.5 * (a * du * du + c * dv * dv) + b * du * dv

    best = None
    for xe in (x0, x1):  # vertical edges: v minimising for fixed u, clamped into the edge
        v = torch.minimum(torch.maximum(my - b * (xe - mx) / c, y0), y1)
        s = q(xe, v)
        best = s if best is None else torch.minimum(best, s)
    for ye in (y0, y1):
        u = torch.minimum(torch.maximum(mx - b * (ye - my) / a, x0), x1)
        best = torch.minimum(best, q(u, ye))
    return torch.where(inside, torch.zeros_like(best), best)


def _sortable(x: torch.Tensor) -> torch.Tensor:
    """Non-negative floats -> integers of the same order (their bit patterns, as gsplat sorts depths)."""
    return x.contiguous().view(torch.int32 if x.dtype == torch.float32 else torch.int64) if x.dtype in (
        torch.float32, torch.float64) else x


def _bin(proj: dict[str, torch.Tensor], opacities: torch.Tensor, width: int, height: int, tile: int):
    """(tile, Gaussian) pairs sorted by tile, each tile's Gaussians in depth order.

    Returns pair_gid [M] (flat index b*N+n), pair_tile [M] (global tile b*n_tiles + ty*tw + tx),
    tile_start and tile_count per global tile."""
    B, N = proj["depths"].shape
    tw, th = -(-width // tile), -(-height // tile)
    n_tiles = tw * th
    dev = proj["depths"].device
    gid = torch.nonzero(proj["valid"].reshape(-1)).squeeze(1)
    depth = proj["depths"].detach().reshape(-1).index_select(0, gid)  # > near > 0
    gid = gid.index_select(0, torch.sort(_sortable(depth), stable=True).indices)  # ties by index, as gsplat

    dt = proj["means2d"].dtype
    m2 = proj["means2d"].detach().reshape(-1, 2).index_select(0, gid)
    r = proj["radii"].reshape(-1, 2).index_select(0, gid).to(dt)
    txy0 = torch.floor((m2 - r) / tile)
    txy1 = torch.ceil((m2 + r) / tile)
    lim = torch.tensor([tw, th], dtype=dt, device=dev)
    txy0 = torch.minimum(txy0.clamp_min(0), lim)
    span = torch.minimum(txy1.clamp_min(0), lim) - txy0
    counts = (span[:, 0] * span[:, 1]).long()
    total = int(counts.sum())
    zero_t = torch.zeros(B * n_tiles, dtype=torch.long, device=dev)
    if total == 0:
        empty = torch.zeros(0, dtype=torch.long, device=dev)
        return empty, empty, zero_t, zero_t
    # per-Gaussian data packed into one table, expanded to one row per candidate pair
    conic = proj["conics"].detach().reshape(-1, 3).index_select(0, gid)
    level = torch.log(opacities.detach().reshape(-1).index_select(0, gid) / ALPHA_THRESHOLD)
    first = (torch.cumsum(counts, 0) - counts).to(dt)
    b = torch.div(gid, N, rounding_mode="floor").to(dt)
    table = torch.cat([m2.T, conic.T, level[None], txy0.T, span[:, 0][None], first[None], b[None]])  # [11, G]
    rep = torch.repeat_interleave(torch.arange(gid.numel(), device=dev), counts, output_size=total)
    d = table.index_select(1, rep)  # rows stay contiguous, so the arithmetic below vectorizes
    mx, my, ca, cb, cc, lv, tx0, ty0, sx, fst, bb = d.unbind(0)
    local = torch.arange(total, device=dev, dtype=dt) - fst
    dy = torch.floor(local / sx)
    ptx = tx0 + (local - dy * sx)
    pty = ty0 + dy

    # exact ellipse-vs-tile test on the tile's pixel centres (clipped to the image): keep a pair
    # when some pixel centre has sigma <= log(o * 255), i.e. alpha >= 1/255 (with a margin)
    x0 = ptx * tile + 0.5
    y0 = pty * tile + 0.5
    x1 = torch.clamp_max(x0 + (tile - 1), width - 0.5)
    y1 = torch.clamp_max(y0 + (tile - 1), height - 0.5)
    smin = _min_sigma_on_rect(mx, my, ca, cb, cc, x0, x1, y0, y1)
    keep = torch.nonzero(smin <= lv * (1 + 1e-3) + 1e-3).squeeze(1)

    tile_id = (bb * n_tiles + pty * tw + ptx).index_select(0, keep).to(torch.int32)
    tile_sorted, order = torch.sort(tile_id, stable=True)
    pair_gid = gid.index_select(0, rep.index_select(0, keep.index_select(0, order)))
    pair_tile = tile_sorted.long()
    tile_count = torch.bincount(pair_tile, minlength=B * n_tiles)
    tile_start = torch.cumsum(tile_count, 0) - tile_count
    return pair_gid, pair_tile, tile_start, tile_count


# --------------------------------------------------------------------------------------------
# compositing


def _pixel_basis(tile: int, dtype, device) -> torch.Tensor:
    """[6, P] monomials (u², v², uv, u, v, 1) of each pixel centre's offset from the tile centre."""
    o = torch.arange(tile, dtype=dtype, device=device) + 0.5 - tile / 2
    v, u = torch.meshgrid(o, o, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    return torch.stack([u * u, v * v, u * v, u, v, torch.ones_like(u)])


def _pair_coefficients(proj, opacities, pair_gid, pair_tile_xy, tile: int) -> torch.Tensor:
    """[M, 6] coefficients so that coef @ basis = log2(alpha before the 0.999 cap) at each pixel.

    sigma = 0.5 a dx² + b dx dy + 0.5 c dy² with (dx, dy) = mean2d - pixel; written in the pixel's
    offset (u, v) from the tile centre it is a quadratic whose coefficients depend on the pair."""
    m2 = proj["means2d"].reshape(-1, 2).index_select(0, pair_gid)
    cn = proj["conics"].reshape(-1, 3).index_select(0, pair_gid)
    op = opacities.reshape(-1).index_select(0, pair_gid)
    centre = pair_tile_xy.to(m2.dtype) * tile + tile / 2
    mx, my = (m2 - centre).unbind(-1)
    a, b, c = cn.unbind(-1)
    s0 = 0.5 * a * mx * mx + b * mx * my + 0.5 * c * my * my
    return torch.stack([-0.5 * a, -0.5 * c, -b, a * mx + b * my, c * my + b * mx, torch.log(op) - s0], -1) * _LOG2E


def rasterize_cpu(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                  colors: torch.Tensor, R: torch.Tensor, t: torch.Tensor, K: torch.Tensor, width: int, height: int,
                  near: float = 0.01, far: float = 1e3, eps2d: float = EPS2D, tile: int = 8, chunk: int = 32,
                  group_elems: int = 1 << 18) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize B images. All per-Gaussian inputs are batched: means [B,N,3], quats [B,N,4],
    scales [B,N,3], opacities [B,N], colors [B,N,C]; R [B,3,3], t [B,3], K [B,3,3].

    Returns (colors [B,H,W,C] *not* composited over a background, alpha [B,H,W,1],
    accumulated depth Σ w_i z_i [B,H,W,1]). ``tile`` (pixels), ``chunk`` (Gaussians per step) and
    ``group_elems`` (dense tensor budget) only change speed and memory, never the result.
    """
    B, N, C = colors.shape
    dtype, dev = means.dtype, means.device
    tw, th = -(-width // tile), -(-height // tile)
    n_tiles, P = tw * th, tile * tile
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (means, quats, scales, opacities, colors))

    proj = project(means, quats, scales, opacities, R, t, K, width, height, near, far, eps2d)
    with torch.no_grad():
        pair_gid, pair_tile, tile_start, tile_count = _bin(proj, opacities, width, height, tile)
        M = pair_gid.numel()
        tiles_nz = torch.nonzero(tile_count).squeeze(1)
        local_tile = pair_tile % n_tiles
        pair_tile_xy = torch.stack([local_tile % tw, local_tile // tw], -1)

    # per-pair quadratic coefficients and features (colour channels, depth, 1 for alpha)
    coef = _pair_coefficients(proj, opacities, pair_gid, pair_tile_xy, tile)
    feats = torch.cat([colors.reshape(B * N, C), proj["depths"].reshape(B * N, 1),
                       torch.ones(B * N, 1, dtype=dtype, device=dev)], -1).index_select(0, pair_gid)
    # a padding row that gives alpha = 0 (2^-10000 underflows to 0 in float32 and float64)
    pad_coef = torch.zeros(1, 6, dtype=dtype, device=dev)
    pad_coef[0, 5] = -1e4
    coef = torch.cat([coef, pad_coef])
    feats = torch.cat([feats, torch.zeros(1, C + 2, dtype=dtype, device=dev)])
    basis = _pixel_basis(tile, dtype, dev)

    thr = torch.nextafter(torch.tensor(ALPHA_THRESHOLD, dtype=dtype), torch.tensor(0.0, dtype=dtype)).item()
    one = torch.ones((), dtype=dtype, device=dev)
    out_tiles, out_rows = [], []
    with torch.no_grad():
        order = tiles_nz[torch.argsort(tile_count[tiles_nz], descending=True, stable=True)]
        counts_sorted = tile_count[order].tolist()
    group = max(1, group_elems // (chunk * P))
    for g0 in range(0, len(counts_sorted), group):
        tiles_g = order[g0:g0 + group]
        G, kmax = tiles_g.numel(), counts_sorted[g0]
        with torch.no_grad():  # the group's padded lists [G, kpad] (pad -> the alpha = 0 row)
            cnt = tile_count[tiles_g]
            kpad = -(-kmax // chunk) * chunk
            ar = torch.arange(kpad, device=dev)
            idx_g = torch.where(ar < cnt[:, None], tile_start[tiles_g, None] + ar, M)
        T_act = torch.ones(G, P, dtype=dtype, device=dev)  # Π (1 - alpha) so far, per pixel of live tiles
        act = None  # rows of the group still live (None: all of them)
        acc = None  # Σ w·feat so far of the live rows [n, F, P]
        for c0 in range(0, kmax, chunk):
            if c0:  # tiles whose list is exhausted or whose pixels have all terminated are done
                with torch.no_grad():
                    live = (cnt > c0) & (T_act.amax(1) > T_EPS)
                    all_live = bool(live.all())
                if not all_live:
                    keep, gone = torch.nonzero(live).squeeze(1), torch.nonzero(~live).squeeze(1)
                    rows = tiles_g if act is None else tiles_g.index_select(0, act)
                    # finished rows leave the accumulator (an index_add_ into a full one was the CPU's slowest op)
                    out_tiles.append(rows.index_select(0, gone))
                    out_rows.append(acc.index_select(0, gone))
                    if keep.numel() == 0:
                        acc = None
                        break
                    act = keep if act is None else act.index_select(0, keep)
                    cnt, T_act, acc = cnt.index_select(0, keep), T_act.index_select(0, keep), acc.index_select(0, keep)
            ic = idx_g[:, c0:c0 + chunk]
            ic = (ic if act is None else ic.index_select(0, act)).reshape(-1)
            n = T_act.shape[0]
            coef_c = coef.index_select(0, ic)  # [n*chunk, 6]
            feats_c = feats.index_select(0, ic).view(n, chunk, C + 2)
            contrib, T_act = _composite_chunk(coef_c, feats_c, basis, T_act, thr, one, grad)
            acc = contrib if acc is None else acc + contrib if grad else acc.add_(contrib)
        if acc is not None:
            out_tiles.append(tiles_g if act is None else tiles_g.index_select(0, act))
            out_rows.append(acc)

    planes = torch.zeros(B * n_tiles, C + 2, P, dtype=dtype, device=dev)
    if out_rows:
        planes = planes.index_copy(0, torch.cat(out_tiles), torch.cat(out_rows))
    img = planes.reshape(B, th, tw, C + 2, tile, tile).permute(0, 1, 4, 2, 5, 3)
    img = img.reshape(B, th * tile, tw * tile, C + 2)[:, :height, :width]
    return img[..., :C], img[..., C + 1:C + 2], img[..., C:C + 1]


def _composite_chunk(coef: torch.Tensor, feats: torch.Tensor, basis: torch.Tensor, T0: torch.Tensor, thr: float,
                     one: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One depth chunk of n tiles: coef [n*k,6], feats [n,k,F], T0 [n,P] ->
    (Σ_k w_k·feat_k [n,F,P], Π (1 - alpha) after the chunk [n,P], terminated Gaussians included)."""
    n, k, _ = feats.shape
    la = torch.mm(coef, basis).view(n, k, -1)  # [n,k,P] log2 of o·exp(-sigma)
    if grad:
        alpha = F.threshold(torch.exp2(la).clamp_max(ALPHA_MAX), thr, 0.0)
        trans = torch.cumprod(torch.cat([T0[:, None], torch.sub(one, alpha)], 1), 1)  # [n,k+1,P]
        w = alpha * trans[:, :-1]
    else:  # the same operations, in place
        alpha = F.threshold_(la.exp2_().clamp_max_(ALPHA_MAX), thr, 0.0)
        trans = torch.empty(n, k + 1, T0.shape[1], dtype=la.dtype, device=la.device)
        trans[:, 0] = T0
        torch.sub(one, alpha, out=trans[:, 1:])
        torch.cumprod(trans, 1, out=trans)
        w = alpha.mul_(trans[:, :-1])
    T_end = trans[:, -1]
    with torch.no_grad():
        terminates = bool((T_end <= T_EPS).any())
        if terminates:  # the Gaussian that takes T to <= 1e-4, and all after it, are not composited
            keep = torch.gt(trans[:, 1:], T_EPS, out=torch.empty_like(w))
    if terminates:
        w = w * keep if grad else w.mul_(keep)
    return torch.bmm(feats.transpose(1, 2), w), T_end  # [n,F,P], [n,P]

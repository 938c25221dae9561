"""Adapter from :func:`being_kernel.render.gaussians.rasterize` to ``gsplat.rasterization`` (CUDA).

gsplat is imported lazily, on the first render with this backend. The call is
``rasterization(..., packed=False, rasterize_mode="classic", render_mode="RGB+ED", eps2d=0.3,
tile_size=16, radius_clip=0)``: the configuration that ``gaussians_cpu`` reproduces.
"""

from __future__ import annotations

import torch

from ..cameras import Cameras

_INSTALL_HINT = ("backend='gsplat' needs the gsplat package: `pip install gsplat` (a CUDA build of PyTorch is "
                 "required; gsplat compiles its CUDA kernels on first use, which takes a minute or two and needs "
                 "nvcc), or use backend='cpu'")


def _import_gsplat():
    try:
        import gsplat
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} ({e})") from e
    return gsplat


def _version(gsplat) -> tuple[int, ...]:
    parts = []
    for p in str(getattr(gsplat, "__version__", "0")).split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def rasterize_gsplat(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                     colors: torch.Tensor, cameras: Cameras, background: torch.Tensor | None, near: float,
                     far: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs as prepared by ``rasterize``: [B', N, ...] with B' in {1, B}. Returns rgb [B,H,W,3]
    (over the background), alpha [B,H,W,1], expected depth [B,H,W,1], in the inputs' dtype."""
    gsplat = _import_gsplat()
    B, W, H = len(cameras), cameras.width, cameras.height
    dtype = means.dtype

    def f32(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32).contiguous()

    viewmats, Ks = f32(cameras.viewmats), f32(cameras.K)
    bg = None if background is None else f32(background.expand(B, 3))
    kw = dict(width=W, height=H, near_plane=near, far_plane=far, eps2d=0.3, radius_clip=0.0, packed=False,
              tile_size=16, rasterize_mode="classic", render_mode="RGB+ED")
    per_frame = B > 1 and any(x.shape[0] == B for x in (means, quats, scales, opacities))
    if not per_frame:
        # one set of Gaussians seen by B cameras: gsplat's [N,...] with C = B cameras; colours may
        # differ per camera ([C, N, 3])
        col = colors[0] if colors.shape[0] == 1 else colors
        out, alphas, _ = gsplat.rasterization(f32(means[0]), f32(quats[0]), f32(scales[0]), f32(opacities[0]),
                                              f32(col), viewmats, Ks, backgrounds=bg, **kw)
    else:
        def full(x: torch.Tensor) -> torch.Tensor:
            return f32(x.expand(B, *x.shape[1:]))

        if _version(gsplat) >= (1, 5):  # leading batch dims: [B, N, ...] with one camera per frame
            out, alphas, _ = gsplat.rasterization(full(means), full(quats), full(scales), full(opacities),
                                                  full(colors), viewmats[:, None], Ks[:, None],
                                                  backgrounds=None if bg is None else bg[:, None], **kw)
            out, alphas = out[:, 0], alphas[:, 0]
        else:  # older gsplat: one call per frame
            outs, alps = [], []
            for b in range(B):
                pick = [x[b if x.shape[0] == B else 0] for x in (means, quats, scales, opacities, colors)]
                o, a, _ = gsplat.rasterization(*map(f32, pick), viewmats[b:b + 1], Ks[b:b + 1],
                                               backgrounds=None if bg is None else bg[b:b + 1], **kw)
                outs.append(o[0])
                alps.append(a[0])
            out, alphas = torch.stack(outs), torch.stack(alps)
    out, alphas = out.to(dtype), alphas.to(dtype)
    return out[..., :3], alphas, out[..., 3:4]

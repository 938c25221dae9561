"""Pixel metrics on channel-last images: :func:`psnr` and :func:`ssim`.

Images are float ``[..., H, W, C]`` in ``[0, max_val]`` (``[0, 1]`` by default), the layout of
:class:`~being_kernel.types.Frame` and of the renderers; any leading dimensions are batch
dimensions and each metric returns one value per image, ``[...]``. Both are plain torch, so they
run on whatever device the inputs are on and are differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_pair(img: Tensor, ref: Tensor) -> None:
    if img.shape != ref.shape:
        raise ValueError(f"img and ref differ in shape: {tuple(img.shape)} vs {tuple(ref.shape)}")
    if img.ndim < 3:
        raise ValueError(f"expected images [..., H, W, C], got shape {tuple(img.shape)}")


def _compute_dtype(*tensors: Tensor) -> torch.dtype:
    """At least float32: half-precision sums of squared errors lose the small differences."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def psnr(img: Tensor, ref: Tensor, mask: Tensor | None = None, max_val: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(max_val^2 / MSE)``, per image.

    img, ref: ``[..., H, W, C]``. mask: ``None`` (every pixel) or weights ``[..., H, W, 1]``
    (broadcast against the images' ``[..., H, W, 1]``; 0/1 or soft): the MSE is then
    ``sum(mask * (img - ref)^2) / (C * sum(mask))`` over all channels. Returns ``[...]``;
    ``inf`` where the (masked) images are identical, ``nan`` where a mask is all zero.
    """
    _check_pair(img, ref)
    dtype = _compute_dtype(img, ref)
    err = (img.to(dtype) - ref.to(dtype)).square()
    if mask is None:
        mse = err.mean(dim=(-3, -2, -1))
    else:
        if mask.ndim < 3 or mask.shape[-1] != 1:
            raise ValueError(f"mask must be [..., H, W, 1], got shape {tuple(mask.shape)}")
        weight = torch.broadcast_to(mask.to(dtype), err.shape[:-1] + (1,))
        mse = (err * weight).sum(dim=(-3, -2, -1)) / (weight.sum(dim=(-3, -2, -1)) * err.shape[-1])
    return 10.0 * torch.log10(max_val**2 / mse)


def _gaussian_taps(window: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``window`` samples of a Gaussian centred on the middle tap, summing to 1 ([window])."""
    x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def ssim(img: Tensor, ref: Tensor, *, window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
         max_val: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Mean structural similarity (Wang et al. 2004) per image.

    img, ref: ``[..., H, W, C]`` with ``H, W >= window``. Local means, variances and covariance
    come from a ``window`` x ``window`` Gaussian (std ``sigma``, taps normalised to sum 1; the
    defaults are the paper's 11x11, sigma 1.5), per channel, population (biased) statistics,
    ``C1 = (k1 max_val)^2``, ``C2 = (k2 max_val)^2``. The SSIM map is kept only where the
    window lies wholly inside the image ('valid', ``H - window + 1`` x ``W - window + 1``): no
    padding is invented at the borders, which is what Wang's reference code and scikit-image
    (it filters with reflection, then crops ``(window - 1) / 2`` pixels) both report. The
    result is the mean of that map over pixels and channels, ``[...]``; 1 for identical images.

    Zero-padded ('same') variants, as in some training code, average in border windows of
    made-up zeros and score slightly lower; they are not what this returns.

    mask: ``None`` or weights ``[..., H, W, 1]``: the map is then averaged with those weights (at
    the centre pixel of each window; ``nan`` where the mask has no weight inside the valid region).
    """
    _check_pair(img, ref)
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    *batch, h, w, c = img.shape
    if h < window or w < window:
        raise ValueError(f"images of {h}x{w} are smaller than the {window}x{window} SSIM window")
    dtype = _compute_dtype(img, ref)
    x = img.to(dtype).reshape(-1, h, w, c).permute(0, 3, 1, 2)
    y = ref.to(dtype).reshape(-1, h, w, c).permute(0, 3, 1, 2)

    # One grouped pass filters all five moment images of every channel ([N, 5C, H, W]).
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    taps = _gaussian_taps(window, sigma, dtype, img.device)
    groups = stack.shape[1]
    # The 2-D Gaussian is separable: a row pass then a column pass, 2*window instead of window^2 taps.
    moments = F.conv2d(stack, taps.view(1, 1, 1, window).expand(groups, 1, 1, window), groups=groups)
    moments = F.conv2d(moments, taps.view(1, 1, window, 1).expand(groups, 1, window, 1), groups=groups)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.chunk(5, dim=1)

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    smap = num / den  # [N, C, H - window + 1, W - window + 1]
    if mask is None:
        return smap.mean(dim=(1, 2, 3)).reshape(batch)
    if mask.ndim < 3 or mask.shape[-1] != 1:
        raise ValueError(f"mask must be [..., H, W, 1], got shape {tuple(mask.shape)}")
    r = (window - 1) // 2
    weight = torch.broadcast_to(mask.to(dtype), (*batch, h, w, 1)).reshape(-1, h, w)[:, r:h - r, r:w - r]
    return ((smap.mean(dim=1) * weight).sum(dim=(1, 2)) / weight.sum(dim=(1, 2))).reshape(batch)


"""Image metrics for avatar training, ``being eval`` and ``being bench``: :func:`psnr` and
:func:`ssim` (``image``) and LPIPS (``lpips``, weights found locally, never downloaded).
See docs/metrics.md."""

from .image import psnr, ssim
from .lpips import LPIPS, MissingWeights, load_lpips, lpips_available

__all__ = ["psnr", "ssim", "LPIPS", "load_lpips", "lpips_available", "MissingWeights"]

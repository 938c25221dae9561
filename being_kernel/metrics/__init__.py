"""Image metrics for avatar training, ``being eval`` and ``being bench``: :func:`psnr` and
:func:`ssim` (``image``) and LPIPS (``lpips``, weights found locally, never downloaded); lip
timing against phone boundaries on any head model with a mouth (``lipsync``, imported on its
own: it needs the head models). See docs/metrics.md."""

from .image import psnr, ssim
from .lpips import LPIPS, MissingWeights, load_lpips, lpips_available

__all__ = ["psnr", "ssim", "LPIPS", "load_lpips", "lpips_available", "MissingWeights"]

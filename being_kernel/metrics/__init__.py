"""Metrics for avatar training, ``being eval`` and ``being bench``: :func:`psnr` and :func:`ssim`,
LPIPS (weights found locally, never downloaded), and lip timing against phone boundaries on any
head model with a mouth (:func:`lip_gap`, :func:`bilabial_closure`, :func:`vowel_opening`, on
Festival ``.segs`` read by :func:`read_segs`). See docs/metrics.md.

This module is the public surface; its submodules (``image``, ``lpips``, ``lipsync``) are private."""

from .image import psnr, ssim
from .lipsync import (CLOSED_GAP_M, LipSeam, bilabial_closure, has_lip_seam, head_for_motion_space, lip_gap, lip_seam,
                      read_segs, vowel_opening)
from .lpips import LPIPS, MissingWeights, load_lpips, lpips_available

__all__ = ["psnr", "ssim", "LPIPS", "load_lpips", "lpips_available", "MissingWeights",
           "lip_gap", "read_segs", "bilabial_closure", "vowel_opening", "head_for_motion_space", "CLOSED_GAP_M",
           "lip_seam", "has_lip_seam", "LipSeam"]

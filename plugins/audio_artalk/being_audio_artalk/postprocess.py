"""Post-processing as published (inference.py ``smooth_motion_savgol`` and ``inference``):

* Savitzky-Golay smoothing over time of the whole sequence (cut to ``ceil(seconds x 25)``
  frames): window 5, order 2 on all 106 channels; the head rotation ``[100:103]`` is then
  replaced by window 9, order 3 applied to the raw values. Edges as scipy's ``mode="interp"``:
  the first and last half-window frames take the value of the polynomial fitted to the first
  or last full window;
* jaw y and z (``[104:106]``) set to zero; optionally the head rotation too (``fixed_pose``).

The filter is the kernel's streaming Savitzky-Golay (``being_kernel.audio.Smoother``): a stream
gives the same bits as the whole sequence. A frame is final once 4 frames after it exist (the
half-width of the wider window); the last 4 need the sequence's end. Sequences shorter than a
window skip that filter (the published code raises).
"""

from __future__ import annotations

import torch

from being_kernel.audio import Smoother, smooth_frames as smooth_sequence

from .config import MOTION_DIM

ROTATION = slice(100, 103)
JAW_YZ = slice(104, 106)
#: (channels, window, polynomial order), applied in order; later groups override earlier ones.
FILTERS: tuple[tuple[slice, int, int], ...] = ((slice(0, MOTION_DIM), 5, 2), (ROTATION, 9, 3))
HALF = max(w for _, w, _ in FILTERS) // 2  # frames of look-ahead a final value needs


def smoother(enabled: bool, device: torch.device) -> Smoother:
    """The published smoothing as a stream (``enabled`` False: the raw frames pass unchanged)."""
    return Smoother(FILTERS if enabled else (), MOTION_DIM, device)


def smooth_frames(raw: torch.Tensor, first: int, frames: torch.Tensor, length: int) -> torch.Tensor:
    """The published smoothing of ``frames`` of a ``length``-frame sequence (see
    ``being_kernel.audio.smooth_frames``)."""
    return smooth_sequence(raw, first, frames, length, FILTERS)


def finish_pose(motion: torch.Tensor, fixed_pose: bool) -> torch.Tensor:
    """Zero the jaw's y and z rotation, and the head rotation when ``fixed_pose`` (in place)."""
    motion[:, JAW_YZ] = 0.0
    if fixed_pose:
        motion[:, ROTATION] = 0.0
    return motion

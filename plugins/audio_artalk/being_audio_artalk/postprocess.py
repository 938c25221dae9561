"""Post-processing as published (inference.py ``smooth_motion_savgol`` and ``inference``):

* Savitzky-Golay smoothing over time of the whole sequence (cut to ``ceil(seconds x 25)``
  frames): window 5, order 2 on all 106 channels; the head rotation ``[100:103]`` is then
  replaced by window 9, order 3 applied to the raw values. Edges as scipy's ``mode="interp"``:
  the first and last half-window frames take the value of the polynomial fitted to the first
  or last full window;
* jaw y and z (``[104:106]``) set to zero; optionally the head rotation too (``fixed_pose``).

The filter is computed here frame by frame: frame t is a fixed weighted sum, in float64, of the
window that scipy would use for it, so its value does not depend on how many frames are
processed at once, and a stream gives the same bits as the whole sequence. A frame is final
once 4 frames after it exist (the half-width of the wider window); the last 4 need the
sequence's end. Sequences shorter than a window skip that filter (the published code raises).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .config import MOTION_DIM

ROTATION = slice(100, 103)
JAW_YZ = slice(104, 106)
#: (channels, window, polynomial order), applied in order; later groups override earlier ones.
FILTERS: tuple[tuple[slice, int, int], ...] = ((slice(0, MOTION_DIM), 5, 2), (ROTATION, 9, 3))
HALF = max(w for _, w, _ in FILTERS) // 2  # frames of look-ahead a final value needs


@functools.lru_cache(maxsize=None)
def savgol_weights(window: int, order: int) -> torch.Tensor:
    """``[window, window]`` float64: row r weighs the window's samples to give the value at
    position r of the least-squares polynomial of ``order`` through them."""
    x = np.arange(window, dtype=np.float64) - window // 2
    a = x[:, None] ** np.arange(order + 1)[None, :]
    return torch.tensor(a @ np.linalg.pinv(a))


def smooth_frames(raw: torch.Tensor, first: int, frames: torch.Tensor, length: int) -> torch.Tensor:
    """Smoothed values of ``frames`` (absolute indices, int64) of a sequence of ``length`` frames
    whose frames ``first..first + len(raw)`` are ``raw`` ``[n, 106]``; ``length`` may be a lower
    bound when every frame asked for is at least HALF frames before it. -> ``[len(frames), 106]``."""
    out = raw[frames - first].clone()
    x = raw.double()
    for channels, window, order in FILTERS:
        if length < window:
            continue
        half = window // 2
        w = savgol_weights(window, order).to(raw.device)
        start = (frames - half).clamp(min=0).clamp(max=length - window)  # where each frame's window starts
        rows = w[frames - start]  # [m, window]
        acc = torch.zeros(len(frames), channels.stop - channels.start, dtype=torch.float64, device=raw.device)
        for i in range(window):  # a fixed summation order per frame: the same bits in any batch
            acc += rows[:, i:i + 1] * x[start + i - first, channels]
        out[:, channels] = acc.to(raw.dtype)
    return out


class Smoother:
    """Streaming Savitzky-Golay: ``push`` raw frames, get those whose value is final;
    ``finish`` adds the last raw frames and gives the rest of the sequence cut to a length."""

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.enabled = enabled
        self.raw = torch.zeros(0, MOTION_DIM, device=device)  # frames first..seen-1 still needed
        self.first = 0
        self.done = 0  # frames returned

    @property
    def seen(self) -> int:
        return self.first + len(self.raw)

    def push(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw frames ``[n, 106]`` of a sequence that goes on -> the smoothed frames now final."""
        self.raw = torch.cat([self.raw, frames])
        if not self.enabled:
            return self._emit(self.seen, self.seen)
        upto = self.seen - HALF if self.seen >= 2 * HALF + 1 else self.done
        return self._emit(max(upto, self.done), self.seen)

    def finish(self, frames: torch.Tensor, length: int) -> torch.Tensor:
        """The last raw frames; the sequence is cut to ``length`` (at least the frames pushed
        before) -> the remaining smoothed frames."""
        self.raw = torch.cat([self.raw, frames])
        return self._emit(max(length, self.done), length)

    def _emit(self, upto: int, length: int) -> torch.Tensor:
        frames = torch.arange(self.done, upto, device=self.raw.device)
        out = smooth_frames(self.raw, self.first, frames, length) if self.enabled else self.raw[frames - self.first]
        self.done = upto
        # keep what later frames still read: their windows start at least HALF before them,
        # and the end-of-sequence windows reach back a whole window
        keep = max(self.first, min(self.done - HALF, self.seen - 2 * HALF - 1))
        self.raw, self.first = self.raw[keep - self.first:], keep
        return out


def finish_pose(motion: torch.Tensor, fixed_pose: bool) -> torch.Tensor:
    """Zero the jaw's y and z rotation, and the head rotation when ``fixed_pose`` (in place)."""
    motion[:, JAW_YZ] = 0.0
    if fixed_pose:
        motion[:, ROTATION] = 0.0
    return motion

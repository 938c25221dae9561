"""Savitzky-Golay smoothing over time that streams: the same bits whatever the chunking.

Audio models smooth their motion with ``scipy.signal.savgol_filter(..., axis=0)`` in scipy's
default ``mode="interp"``: inside the sequence each value is the least-squares polynomial of its
centred window; the first and last half-window frames take the value of the polynomial fitted to
the first or last full window. Here frame t is a fixed weighted sum, in float64, of the window
scipy would use for it, so its value does not depend on how many frames are processed at once and
a stream gives the same bits as the whole sequence. A frame is final once ``half`` frames after it
exist (the half-width of the widest window); the last ones need the sequence's end.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

#: (channels, window, polynomial order), applied in order; later groups override earlier ones
Filter = tuple[slice, int, int]


@functools.lru_cache(maxsize=None)
def savgol_weights(window: int, order: int) -> torch.Tensor:
    """``[window, window]`` float64: row r weighs the window's samples to give the value at
    position r of the least-squares polynomial of ``order`` through them."""
    x = np.arange(window, dtype=np.float64) - window // 2
    a = x[:, None] ** np.arange(order + 1)[None, :]
    return torch.tensor(a @ np.linalg.pinv(a))


def smooth_frames(raw: torch.Tensor, first: int, frames: torch.Tensor, length: int,
                  filters: Sequence[Filter]) -> torch.Tensor:
    """Smoothed values of ``frames`` (absolute indices, int64) of a sequence of ``length`` frames
    whose frames ``first..first + len(raw)`` are ``raw`` ``[n, C]``; ``length`` may be a lower bound
    when every frame asked for is at least the widest half-window before it. A filter whose window
    is longer than the sequence is skipped. -> ``[len(frames), C]``."""
    out = raw[frames - first].clone()
    x = raw.double()
    for channels, window, order in filters:
        if length < window:
            continue
        half = window // 2
        w = savgol_weights(window, order).to(raw.device)
        start = (frames - half).clamp(min=0).clamp(max=length - window)  # where each frame's window starts
        rows = w[frames - start]  # [m, window]
        width = len(range(*channels.indices(raw.shape[1])))
        acc = torch.zeros(len(frames), width, dtype=torch.float64, device=raw.device)
        for i in range(window):  # a fixed summation order per frame: the same bits in any batch
            acc += rows[:, i:i + 1] * x[start + i - first, channels]
        out[:, channels] = acc.to(raw.dtype)
    return out


class Smoother:
    """Streaming Savitzky-Golay: ``push`` raw frames ``[n, channels]``, get those whose value is
    final; ``finish`` adds the last raw frames and gives the rest of the sequence cut to a length.
    ``filters``: (channels, window, order) groups; empty: frames pass unchanged."""

    def __init__(self, filters: Sequence[Filter], channels: int, device: torch.device) -> None:
        self.filters = tuple(filters)
        self.half = max((w for _, w, _ in self.filters), default=0) // 2
        self.raw = torch.zeros(0, channels, device=device)  # frames first..seen-1 still needed
        self.first = 0
        self.done = 0  # frames returned

    @property
    def seen(self) -> int:
        return self.first + len(self.raw)

    def push(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw frames ``[n, C]`` of a sequence that goes on -> the smoothed frames now final."""
        self.raw = torch.cat([self.raw, frames.to(self.raw.dtype)])
        if not self.filters:
            return self._emit(self.seen, self.seen)
        upto = self.seen - self.half if self.seen >= 2 * self.half + 1 else self.done
        return self._emit(max(upto, self.done), self.seen)

    def finish(self, frames: torch.Tensor, length: int) -> torch.Tensor:
        """The last raw frames; the sequence is cut to ``length`` (at least the frames pushed
        before) -> the remaining smoothed frames."""
        self.raw = torch.cat([self.raw, frames.to(self.raw.dtype)])
        return self._emit(max(length, self.done), length)

    def _emit(self, upto: int, length: int) -> torch.Tensor:
        frames = torch.arange(self.done, upto, device=self.raw.device)
        out = (smooth_frames(self.raw, self.first, frames, length, self.filters) if self.filters
               else self.raw[frames - self.first])
        self.done = upto
        # keep what later frames still read: their windows start at least `half` before them,
        # and the end-of-sequence windows reach back a whole window
        keep = max(self.first, min(self.done - self.half, self.seen - 2 * self.half - 1))
        self.raw, self.first = self.raw[keep - self.first:], keep
        return out

"""Timing: warm-up, repeats, and summary statistics.

On CUDA a run is timed with CUDA events between two device synchronizations, so the time covers
every kernel the run queued on any stream (asynchronous launches cannot leave work outside the
timed region) as well as its host work. On the CPU it is ``time.perf_counter``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import numpy as np
import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Stats:
    """Median, quartiles (linear interpolation, numpy's default), extremes and tails of samples."""

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float
    p90: float
    p99: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not len(samples):
            raise ValueError("no samples")
        x = np.asarray(samples, dtype=np.float64)
        q1, med, q3, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
        return cls(len(x), float(med), float(q1), float(q3), float(x.min()), float(x.max()), float(p90), float(p99))


class Timer:
    """Times calls on ``device``: CUDA events there, ``perf_counter`` on the CPU."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.uses_events = self.device.type == "cuda"

    def time(self, fn: Callable[[], T]) -> tuple[float, T]:
        """(seconds, result) of one call of ``fn``."""
        if not self.uses_events:
            t0 = time.perf_counter()
            out = fn()
            return time.perf_counter() - t0, out
        torch.cuda.synchronize(self.device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        torch.cuda.synchronize(self.device)  # work the run queued on any stream of the device
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0, out

    def repeat(self, fn: Callable[[], T], warmup: int, repeats: int) -> tuple[list[float], T]:
        """``warmup`` untimed calls, then the seconds of each of ``repeats`` timed calls, and the
        last call's result."""
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        for _ in range(warmup):
            fn()
        times: list[float] = []
        for _ in range(repeats):
            seconds, out = self.time(fn)
            times.append(seconds)
        return times, out

"""Blinks: gamma-distributed intervals, 150-250 ms each, fast close, short hold, slower open.

Each interval is drawn when the blink before it is scheduled, from a generator seeded by the
clip's seed and the audio of the second before that moment: clips differ in every blink, not only
in the first, even when they begin with the same silence."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .seeding import audio_seed


class Blinks:
    """Eyelid closure in [0, 1] per frame time. ``window(t0, t1)`` gives the audio heard over
    [t0, t1) as float32 samples; ``seed`` is the clip's seed (seeding.audio_seed)."""

    def __init__(self, seed: int, rate_hz: float) -> None:
        self.seed, self.mean = seed, 1.0 / rate_hz if rate_hz > 0 else math.inf
        self.next = float(np.random.default_rng(seed).uniform(0.5, 2.5))  # the first blink
        self.blinks: list[tuple[float, float]] = []  # (start, duration)

    def value(self, t: float, window: Callable[[float, float], np.ndarray]) -> float:
        if math.isinf(self.mean):
            return 0.0
        while self.next < t + 1.0:  # schedule one second ahead of the frame
            rng = np.random.default_rng(audio_seed(self.seed, window(t - 1.0, t)))
            dur = float(rng.uniform(0.15, 0.25))
            self.blinks.append((self.next, dur))
            gap = float(rng.gamma(4.0, self.mean / 4.0))
            self.next += dur + min(max(gap, 0.6 * self.mean), 1.8 * self.mean)
        v = 0.0
        for t0, dur in self.blinks[-4:]:
            u = (t - t0) / dur
            if 0 <= u < 1:  # fast close (30 %), short hold, slower open
                v = max(v, math.sin(0.5 * math.pi * u / 0.3) if u < 0.3 else
                        (1.0 if u < 0.45 else math.cos(0.5 * math.pi * (u - 0.45) / 0.55)))
        return v

"""Temporal smoothing of landmark tracks without lag.

The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose cutoff rises with the
signal's speed: jitter is removed where the face is still, and fast motion passes. Run causally it
still lags a little on fast motion; offline we have the whole clip, so it is run forwards and
backwards and the two passes averaged, which cancels the lag (a zero-phase filter).
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, rate: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


def one_euro(x: np.ndarray, rate: float, *, min_cutoff: float = 1.0, beta: float = 0.05,
             d_cutoff: float = 1.0) -> np.ndarray:
    """One causal One-Euro pass over x [T, ...] sampled at ``rate`` Hz (float64 out, same shape).

    ``min_cutoff`` (Hz) is the cutoff at rest; ``beta`` (per unit of x per second) how fast the
    cutoff rises with speed; ``d_cutoff`` (Hz) smooths the speed estimate."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    out[0] = x[0]
    dx = np.zeros_like(x[0])
    a_d = _alpha(d_cutoff, rate)
    for i in range(1, len(x)):
        dx = a_d * (x[i] - out[i - 1]) * rate + (1.0 - a_d) * dx
        a = _alpha(min_cutoff + beta * np.abs(dx), rate)
        out[i] = a * x[i] + (1.0 - a) * out[i - 1]
    return out


def smooth_track(x: np.ndarray, rate: float, *, min_cutoff: float = 1.0, beta: float = 0.05) -> np.ndarray:
    """Zero-lag One-Euro smoothing of a track x [T, ...] (the mean of a forward and a backward pass)."""
    forward = one_euro(x, rate, min_cutoff=min_cutoff, beta=beta)
    backward = one_euro(x[::-1], rate, min_cutoff=min_cutoff, beta=beta)[::-1]
    return 0.5 * (forward + backward)


def fill_gaps(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """x [T, ...] with the frames where ``valid`` [T] is False linearly interpolated from the
    nearest valid frames (held constant before the first and after the last). Needs one valid frame."""
    x = np.array(x, dtype=np.float64)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise ValueError("fill_gaps: no valid frame")
    flat = x.reshape(len(x), -1)
    frames = np.arange(len(x))
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(frames, idx, flat[idx, c])
    return flat.reshape(x.shape)

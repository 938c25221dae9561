"""Lip-sync measurements on the demo head (used by the tests and benchmarks/lip_sync.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

#: The lips count as closed when the mean gap of the central seam pairs is below this (metres).
CLOSED_GAP_M = 1.5e-3
#: A bilabial is closed if some frame within this many seconds of its midpoint is closed.
CLOSURE_WINDOW_S = 0.040


@lru_cache(maxsize=1)
def _demo():
    from being_kernel.head.demo_head import build_demo_head
    from being_kernel.head.flame import FlameModel

    head = build_demo_head()
    up, lo = head.regions["lip_inner_upper"], head.regions["lip_inner_lower"]
    n = len(up)
    centre = slice(n // 3, n - n // 3)  # the central third of the seam
    return FlameModel(head), up[centre], lo[centre]


def lip_gap(motion) -> np.ndarray:  # noqa: ANN001 - Motion in the demo head's space
    """Mean distance (metres) between the central matched lip-seam pairs, per frame."""
    model, up, lo = _demo()
    with torch.no_grad():
        v = model(motion).vertices
    return (v[:, up] - v[:, lo]).norm(dim=-1).mean(-1).numpy()


def read_segs(path: str | Path) -> list[tuple[str, float, float]]:
    """Festival .segs: lines 'END 100 PHONE'; a phone starts where the previous ended."""
    out, start = [], 0.0
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[0] == "#":
            continue
        end = float(parts[0])
        out.append((parts[2], start, end))
        start = end
    return out


def bilabial_closure(gap: np.ndarray, fps: float, segs) -> tuple[int, int]:  # noqa: ANN001
    """(closed, total) over the p/b/m phones of ``segs``; frame k is at time k / fps."""
    times = np.arange(len(gap)) / fps
    closed = total = 0
    for phone, s, e in segs:
        if phone.lower() not in ("p", "b", "m"):
            continue
        total += 1
        near = np.abs(times - (s + e) / 2) <= CLOSURE_WINDOW_S + 1e-9
        closed += bool(near.any() and (gap[near] < CLOSED_GAP_M).any())
    return closed, total


VOWELS = frozenset("aa ae ah ao aw ax axr ay eh er ey ih iy ow oy uh uw".split())


def vowel_opening(gap: np.ndarray, fps: float, segs) -> tuple[int, int]:  # noqa: ANN001
    """(open, total) over the vowels of ``segs``: lips apart (gap >= the closure threshold) at
    the frame nearest the vowel's middle. The control for ``bilabial_closure``: a mouth that is
    always shut would score perfectly there and zero here."""
    opened = total = 0
    for phone, s, e in segs:
        k = int(round((s + e) / 2 * fps))
        if phone.lower() in VOWELS and k < len(gap):
            total += 1
            opened += bool(gap[k] >= CLOSED_GAP_M)
    return opened, total


def read_wav(path: str | Path) -> np.ndarray:
    import wave

    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0

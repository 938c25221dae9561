"""Lip-timing metrics against phone-level ground truth: is the mouth shut on p/b/m and open on vowels?

The lips' state comes from skinning the head model with the motion: the lip gap of a frame is the
mean distance between matched inner-lip seam vertices (regions ``lip_inner_upper`` and
``lip_inner_lower``, central third, so the corners, which always touch, do not count). The demo
head has these regions; a head model without them cannot be measured this way.

Ground truth is Festival's ``.segs`` phone timing (``END_TIME 100 PHONE`` per line).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..head.data import HeadModelData
from ..head.flame import FlameModel
from ..types import Motion

#: The lips count as closed when the mean gap of the central seam pairs is below this (metres).
CLOSED_GAP_M = 1.5e-3
#: A bilabial is closed if some frame within this many seconds of its midpoint is closed.
CLOSURE_WINDOW_S = 0.040
#: Phones whose lips must close, and the vowels (Festival/ARPAbet names) that must open them.
BILABIALS = frozenset("p b m".split())
VOWELS = frozenset("aa ae ah ao aw ax axr ay eh er ey ih iy ow oy uh uw".split())
SEAM_REGIONS = ("lip_inner_upper", "lip_inner_lower")

Segs = Sequence[tuple[str, float, float]]


def has_lip_seam(head: HeadModelData) -> bool:
    """Whether ``head`` names the inner-lip seam that ``lip_gap`` measures."""
    return all(name in head.regions for name in SEAM_REGIONS)


def _seam(head: HeadModelData) -> tuple[FlameModel, np.ndarray, np.ndarray]:
    if not has_lip_seam(head):
        raise ValueError(f"head model '{head.name}' has no regions {' and '.join(SEAM_REGIONS)}: its lip gap is unknown")
    up, lo = head.regions[SEAM_REGIONS[0]], head.regions[SEAM_REGIONS[1]]
    n = len(up)
    centre = slice(n // 3, n - n // 3)
    return FlameModel(head).eval(), up[centre], lo[centre]


@lru_cache(maxsize=1)
def _demo_seam() -> tuple[FlameModel, np.ndarray, np.ndarray]:
    from ..head.demo_head import build_demo_head

    return _seam(build_demo_head())


def lip_gap(motion: Motion, head: HeadModelData | None = None) -> np.ndarray:
    """Mean distance (metres) between the central matched lip-seam pairs, per frame ``[T]``.

    ``head``: the head model the motion's expressions belong to (default: the demo head)."""
    model, up, lo = _demo_seam() if head is None else _seam(head)
    with torch.no_grad():
        v = model(motion.to("cpu")).vertices
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


def bilabial_closure(gap: np.ndarray, fps: float, segs: Segs) -> tuple[int, int]:
    """(closed, total) over the p/b/m phones of ``segs``; frame k is at time k / fps."""
    times = np.arange(len(gap)) / fps
    closed = total = 0
    for phone, s, e in segs:
        if phone.lower() not in BILABIALS:
            continue
        total += 1
        near = np.abs(times - (s + e) / 2) <= CLOSURE_WINDOW_S + 1e-9
        closed += bool(near.any() and (gap[near] < CLOSED_GAP_M).any())
    return closed, total


def vowel_opening(gap: np.ndarray, fps: float, segs: Segs) -> tuple[int, int]:
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

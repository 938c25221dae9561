"""Building a cell's figures: measured (with spread), single values, and missing ones (with why)."""

from __future__ import annotations

from typing import Sequence

from being_kernel import BeingError

from .schema import FIGURES, Figure
from .timing import Stats


def measured(samples: Sequence[float], unit: str, *, tails: bool = False, note: str | None = None) -> Figure:
    """The median of ``samples`` with quartiles, extremes, the raw samples, and p90/p99 if ``tails``."""
    s = Stats.of(samples)
    return Figure(value=s.median, unit=unit, n=s.n, median=s.median, q1=s.q1, q3=s.q3, iqr=s.iqr, min=s.min,
                  max=s.max, p90=s.p90 if tails else None, p99=s.p99 if tails else None,
                  samples=[float(x) for x in samples], note=note)


def single(value: bool | int | float, unit: str, *, n: int = 1, note: str | None = None) -> Figure:
    return Figure(value=value, unit=unit, n=n, note=note)


def missing(name: str, reason: str) -> Figure:
    """Figure ``name`` of FIGURES, absent because of ``reason``."""
    return Figure(value=None, unit=FIGURES[name].unit, reason=reason)


def all_missing(reason: str, names: Sequence[str] = tuple(FIGURES)) -> dict[str, Figure]:
    return {name: missing(name, reason) for name in names}


def one_line(exc: BaseException) -> str:
    """An exception as one line: a BeingError's message and hint, else its type and first line."""
    if isinstance(exc, BeingError):
        return exc.one_line()
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__

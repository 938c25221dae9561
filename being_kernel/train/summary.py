"""``FitSummary``: what every training run reports, whatever the method (``being fit`` prints it,
``work/summary.json`` stores it)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Union

SUMMARY_FORMAT, SUMMARY_VERSION = "being-fit-summary", 1

StatValue = Union[int, float, str]


@dataclass(frozen=True)
class FitStat:
    """One method-specific figure, e.g. FitStat("gaussians", 47585) or FitStat("mlp_params", 1.2e6)."""

    name: str
    value: StatValue
    unit: str = ""

    def text(self) -> str:
        value = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        return f"{self.name} {value}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class FitSummary:
    """A finished (or interrupted) training run.

    contract, method:  what was trained ("avatar", "splatting")
    steps, train_seconds: optimisation steps taken and seconds spent in them (resumed runs add up)
    stopped_by:        "steps" (all steps ran) or "time" (the max_minutes budget ended it)
    initial_test_psnr, test_psnr: held-out PSNR (dB) before and after training, None when the method
                       has no image output to compare (or no frames are held out)
    stats:             the method's own figures (Gaussian count, ...)
    """

    contract: str
    method: str
    data: str
    out: str
    device: str
    steps: int
    train_seconds: float
    stopped_by: Literal["steps", "time"]
    train_frames: int
    test_frames: int
    image_size: tuple[int, int] | None
    initial_test_psnr: float | None
    test_psnr: float | None
    stats: tuple[FitStat, ...] = field(default_factory=tuple)

    def stat(self, name: str) -> StatValue:
        for s in self.stats:
            if s.name == name:
                return s.value
        raise KeyError(name)

    def lines(self) -> list[str]:
        """What ``being fit`` prints: any method's summary in the same few lines."""
        out = [f"wrote {self.out}: --{self.contract} {self.method}, {self.steps} steps in {self.train_seconds:.0f} s "
               f"(stopped by {'the time budget' if self.stopped_by == 'time' else 'the step count'}) on {self.device}"]
        if self.test_psnr is not None:
            before = f" (before training {self.initial_test_psnr:.2f} dB)" if self.initial_test_psnr is not None else ""
            out.append(f"held-out PSNR {self.test_psnr:.2f} dB{before} over {self.test_frames} frames; "
                       f"{self.train_frames} frames trained on")
        if self.stats:
            out.append("; ".join(s.text() for s in self.stats))
        return out

    def to_json(self) -> str:
        body = {"format": SUMMARY_FORMAT, "version": SUMMARY_VERSION, **asdict(self)}
        return json.dumps(body, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FitSummary:
        body = json.loads(text)
        if body.pop("format", None) != SUMMARY_FORMAT or body.pop("version", None) != SUMMARY_VERSION:
            raise ValueError("not a being fit summary of this version")
        body["stats"] = tuple(FitStat(**s) for s in body["stats"])
        if body["image_size"] is not None:
            body["image_size"] = tuple(body["image_size"])
        return cls(**body)

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(self.to_json())
        tmp.replace(path)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: a metric that could not be computed is None."""
    return None if value is None or not math.isfinite(value) else round(float(value), 3)

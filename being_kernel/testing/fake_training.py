"""The fake torso's trainer: it learns the plain background colour of a full-frame dataset.

Small but real: one RGB parameter trained by the harness to minimise the photometric loss over
the whole frame (with ``ssim_weight=0`` it converges to the per-channel median of the pixels, an
analytic value tests can check), exported as a config file that ``being run --config`` reads.
It lets ``being fit --torso fake`` exercise the harness's dispatch for a non-avatar contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..train import FitContext, FitMethod, FitStat, FrameStore, ParamGroup, TrainRender
from .specs import FakeTorsoFitConfig


class FakeTorsoFit(FitMethod):
    def __init__(self, video, config: FakeTorsoFitConfig, device: torch.device,  # noqa: ANN001 - a TrackedVideo
                 generator: torch.Generator) -> None:
        self.config, self.device = config, device
        self.frames = FrameStore.load(video, device)
        train, test = video.split()
        self.train_indices = torch.tensor(train, dtype=torch.int64, device=device)
        self.test_indices = torch.tensor(test, dtype=torch.int64, device=device)
        self.color: torch.nn.Parameter

    def initialize(self) -> None:
        self.color = torch.nn.Parameter(torch.full((3,), 0.5, device=self.device))

    def parameter_groups(self) -> list[ParamGroup]:
        return [ParamGroup("color", self.color, 0.01)]

    def _plate(self, n: int) -> torch.Tensor:
        w, h = self.frames.size
        return self.color.clamp(0, 1).expand(n, h, w, 3)

    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        return TrainRender(self._plate(frames.numel()), self.frames.image(frames))

    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._plate(frames.numel()).detach(), self.frames.image(frames)

    def state_dict(self) -> dict:
        return {"color": self.color.detach()}

    def load_state_dict(self, state: dict) -> None:
        self.color = torch.nn.Parameter(state["color"].to(self.device))

    def export(self, directory: Path, name: str) -> None:
        color = [round(float(v), 6) for v in self.color.detach().clamp(0, 1).cpu()]
        (directory / "torso.json").write_text(json.dumps({"torso": {"color": color}}) + "\n")

    def stats(self) -> tuple[FitStat, ...]:
        return tuple(FitStat(f"color_{c}", round(float(v), 4)) for c, v in zip("rgb", self.color.detach().cpu()))

"""The trainer: per-vertex colours fitted to a tracked video by the kernel's harness."""

from pathlib import Path

import torch

from being_kernel.head import FlameModel
from being_kernel.render import rasterize
from being_kernel.train import FitContext, FitMethod, FitStat, FrameStore, ParamGroup, TrainRender

from .model import ASSET


class PointsFit(FitMethod):
    def __init__(self, video, config, device: torch.device, generator: torch.Generator) -> None:  # noqa: ANN001
        self.config = config
        self.store = FrameStore.load(video, device)  # images, masks and cameras on the device
        with torch.no_grad():  # the tracking is fixed: pose every frame once
            self.vertices = FlameModel(video.head()).to(device)(video.motion.to(device)).vertices
        train, test = video.split()
        self.train_indices = torch.tensor(train, device=device)
        self.test_indices = torch.tensor(test, device=device)

    def initialize(self) -> None:
        self.colors = torch.nn.Parameter(torch.full((self.vertices.shape[1], 3), 0.5, device=self.vertices.device))

    def parameter_groups(self) -> list[ParamGroup]:
        return [ParamGroup("colors", self.colors, lr=0.05)]

    def _render(self, frames: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        v = self.vertices[frames]  # [B, N, 3]
        n = v.shape[1]
        quats = torch.tensor([1.0, 0, 0, 0], device=v.device).expand(n, 4)
        scales = torch.full((n, 3), self.config.point_size, device=v.device)
        return rasterize(v, quats, scales, torch.ones(n, device=v.device), self.colors.clamp(0, 1),
                         self.store.views(frames), background=background).rgb

    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        return TrainRender(self._render(frames, ctx.background), self.store.targets(frames, ctx.background))

    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._render(frames, background), self.store.targets(frames, background)

    def state_dict(self) -> dict:
        return {"colors": self.colors.detach()}

    def load_state_dict(self, state: dict) -> None:
        self.colors = torch.nn.Parameter(state["colors"].to(self.vertices.device))

    def export(self, directory: Path, name: str) -> None:
        asset = {"colors": self.colors.detach().clamp(0, 1).cpu(), "size": torch.tensor(self.config.point_size)}
        torch.save(asset, directory / ASSET)

    def stats(self) -> tuple[FitStat, ...]:
        return (FitStat("points", int(self.colors.shape[0])),)

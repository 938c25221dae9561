"""The ``restorer`` TorsoCompositor: the base torso's composite, then the seam restored.

Per batch of head frames: the base compositor (``static`` over the dataset's scene, or ``warp``, as
trained; its assets are in the restorer's ``base/``) composites them and reports where it drew the
head and the torso; ``restore.restore`` repaints the band where the two meet. Every network call
has ``batch_frames`` frames (8 on CUDA, 1 on the CPU by default; a short batch is padded with
copies of its last frame), and each base frame depends only on itself, so the stream equals the
batch bit for bit.
"""

from __future__ import annotations

from typing import Sequence

import torch

from being_kernel import ConfigError
from being_kernel.api import Frame, FramewiseStream, TorsoCompositor, TorsoCompositorInfo, build_named, resolve_device

from .asset import load_restorer, network_dtype
from .restore import Layout, restore
from .spec import RestorerConfig


class RestorerTorso(TorsoCompositor):
    """Composites premultiplied RGBA head frames over the base torso and restores the seam; see the README."""

    def __init__(self, config: RestorerConfig) -> None:
        if not isinstance(config, RestorerConfig):
            config = RestorerConfig.model_validate(config)
        super().__init__(config)
        self.net, self.meta = load_restorer(config.path)
        size = self.meta["size"]
        if config.size is not None and tuple(config.size) != size:
            raise ConfigError(f"torso.size {config.size[0]}x{config.size[1]}: the restorer at {config.path} was "
                              f"trained at {size[0]}x{size[1]} (it works in pixels)",
                              hint="leave torso.size unset, or train at that size (being fit --torso restorer)")
        self.net.requires_grad_(False).eval()
        self.layout = Layout(self.meta["band"], self.meta["crop"], self.meta["scale"])
        self._device = resolve_device(config.device)  # None: follow the incoming frames
        base_config = {**self.meta["base_config"], "size": list(size)}
        self.base: TorsoCompositor = build_named("torso", self.meta["base"], base_config, config.device)
        if self._device is not None:
            self._to(self._device)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _to(self, device: torch.device) -> None:
        self.net.to(device=device, dtype=network_dtype(device, self.config.half), memory_format=torch.channels_last)

    def info(self) -> TorsoCompositorInfo:
        return TorsoCompositorInfo(size=self.meta["size"], needs_alpha=True, latency_frames=0)

    def open_stream(self) -> FramewiseStream:
        return FramewiseStream(self.composite)

    def close(self) -> None:
        self.base.close()

    def _batch(self, device: torch.device) -> int:
        n = self.config.batch_frames
        return n if n is not None else (8 if device.type == "cuda" else 1)

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        if not heads:
            return []
        n = self._batch(self._device or heads[0].image.device)
        out: list[Frame] = []
        for a in range(0, len(heads), n):
            out += self._chunk(heads[a:a + n], n)
        return out

    @torch.no_grad()
    def _chunk(self, heads: Sequence[Frame], n: int) -> list[Frame]:
        frames, coverage = self.base.composite_with_coverage(heads)
        dev = self._device or frames[0].image.device
        if self.device != dev:
            self._to(dev)
        image = torch.stack([f.image for f in frames]).to(dev, torch.float32)
        coverage = coverage.to(dev, torch.float32)
        pad = n - len(frames)
        if pad:  # the network always sees batch_frames frames: its result then never depends on the call
            image = torch.cat([image, image[-1:].expand(pad, -1, -1, -1)])
            coverage = torch.cat([coverage, coverage[-1:].expand(pad, -1, -1, -1)])
        restored = restore(self.net, image, coverage, self.layout)
        return [Frame(image=restored[b], index=f.index, pts=f.pts, depth=None, placement=None)
                for b, f in enumerate(frames)]

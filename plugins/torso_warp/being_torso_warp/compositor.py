"""The ``warp`` TorsoCompositor: the trained torso drawn for each head frame's pose, the head on top.

Per batch of head frames: each frame's pose as the torso sees it (``pose.head_pose``); the torso
layer for those poses (``mode``: the full model, or the distilled one); the heads placed at the
torso's neck (portrait heads: moved and scaled by their Placement onto the projected neck base;
heads rendered through the torso's own camera are already in place); then plate <- torso <- head.
Each frame depends only on itself, so the stream is the batch call chunk by chunk.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from being_kernel import ConfigError
from being_kernel.api import Frame, FramewiseStream, TorsoCompositor, TorsoCompositorInfo, resolve_device
from being_kernel.render import place_heads

from .asset import load_torso
from .pose import head_pose, is_in_frame
from .spec import WarpConfig


class WarpTorso(TorsoCompositor):
    """Composites premultiplied RGBA head frames over the trained torso; see the package README."""

    def __init__(self, config: WarpConfig) -> None:
        if not isinstance(config, WarpConfig):
            config = WarpConfig.model_validate(config)
        super().__init__(config)
        self.model, self.meta = load_torso(config.path)
        if config.size is not None and tuple(config.size) != self.model.camera.size:
            self.model = self.model.resized(_same_aspect(tuple(config.size), self.model.camera.size, config.path))
        self.model.requires_grad_(False).eval()
        self._device = resolve_device(config.device)  # None: follow the incoming frames
        if self._device is not None:
            self.model.to(self._device)

    @property
    def device(self) -> torch.device:
        return self.model.plate.device

    def info(self) -> TorsoCompositorInfo:
        return TorsoCompositorInfo(size=self.model.camera.size, needs_alpha=True, latency_frames=0)

    def open_stream(self) -> FramewiseStream:
        return FramewiseStream(self.composite)

    def close(self) -> None:
        pass

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        return self._composite(heads, with_coverage=False)[0]

    def composite_with_coverage(self, heads: Sequence[Frame]) -> tuple[list[Frame], torch.Tensor]:
        return self._composite(heads, with_coverage=True)

    def _composite(self, heads: Sequence[Frame], with_coverage: bool) -> tuple[list[Frame], torch.Tensor | None]:
        for f in heads:
            _check(f)
        out: list[Frame] = []
        coverage: list[torch.Tensor] = []
        for a in range(0, len(heads), self.config.batch_frames):
            frames, cov = self._chunk(heads[a:a + self.config.batch_frames], with_coverage)
            out += frames
            if cov is not None:
                coverage.append(cov)
        if not with_coverage:
            return out, None
        w, h = self.model.camera.size
        return out, (torch.cat(coverage) if coverage else torch.zeros(0, h, w, 2, device=self.device))

    @torch.no_grad()
    def _chunk(self, heads: Sequence[Frame], with_coverage: bool) -> tuple[list[Frame], torch.Tensor | None]:
        dev = self._device or heads[0].image.device
        if self.model.plate.device != dev:
            self.model.to(dev)
        cam = self.model.camera
        poses = []
        in_frame = [is_in_frame(f.head, (f.image.shape[1], f.image.shape[0]), cam) if f.head is not None else False
                    for f in heads]
        for f, inside in zip(heads, in_frame):
            poses.append(head_pose(f.head, inside, cam) if f.head is not None
                         else (cam.R_ref, cam.c_ref))  # no pose: the torso at rest
        R = torch.stack([p[0] for p in poses])
        c = torch.stack([p[1] for p in poses])
        self.model.field.half = self.config.half
        # frame by frame: BLAS picks kernels by matrix shape, so a frame batched with others would
        # differ in the last bits; this way the stream equals the batch exactly
        layers = [self.model.layer(R[i:i + 1], c[i:i + 1], self.config.mode)[:2] for i in range(len(heads))]
        rgb, alpha = torch.cat([x[0] for x in layers]), torch.cat([x[1] for x in layers])
        placed = self._place(heads, in_frame, c, dev)
        frames = self.model.frames(rgb.float(), alpha.float(), placed).clamp_(0.0, 1.0)
        coverage = torch.cat([placed[..., 3:], self.model.in_frame(alpha.float())], -1) if with_coverage else None
        return [Frame(image=frames[b], index=f.index, pts=f.pts, depth=None, placement=None)
                for b, f in enumerate(heads)], coverage

    def _place(self, heads: Sequence[Frame], in_frame: list[bool], c: torch.Tensor, dev: torch.device) -> torch.Tensor:
        """[B, H, W, 4] premultiplied heads in the output frame (see the module doc), feathered below
        the neck base when ``feather_px`` > 0."""
        cam = self.model.camera
        w, h = cam.size
        targets = cam.project(c) * torch.tensor([w, h], device=dev, dtype=c.dtype)  # [B, 2] pixels
        out = torch.empty(len(heads), h, w, 4, device=dev)
        portrait = [b for b, inside in enumerate(in_frame) if not inside]
        for b, inside in enumerate(in_frame):
            if inside:
                out[b] = heads[b].image.to(dev, torch.float32)
        for group in _same_size(heads, portrait):
            imgs = torch.stack([heads[b].image.to(dev, torch.float32) for b in group])
            anchors = torch.tensor([heads[b].placement.anchor_xy for b in group], device=dev)
            ppm = torch.tensor([heads[b].placement.px_per_metre for b in group], device=dev)
            scales = cam.px_per_metre(c[group]) / ppm
            out[group] = place_heads(imgs, anchors, scales, targets[group], cam.size)
        if self.config.feather_px > 0:
            rows = torch.arange(h, device=dev, dtype=torch.float32)[None] + 0.5 - targets[:, 1:]  # [B, H]
            t = (rows / self.config.feather_px).clamp(0, 1)
            out = out * (1 - t * t * (3 - 2 * t))[:, :, None, None]
        return out


def _same_aspect(size: tuple[int, int], trained: tuple[int, int], path: str) -> tuple[int, int]:
    if abs(size[0] / size[1] - trained[0] / trained[1]) > 0.01:
        raise ConfigError(f"torso.size {size[0]}x{size[1]}: the torso at {path} was trained at {trained[0]}x{trained[1]}, "
                          "another aspect ratio", hint=f"use a size of aspect {trained[0]}:{trained[1]}, or leave torso.size unset")
    return size


def _same_size(heads: Sequence[Frame], indices: list[int]) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for b in indices:
        groups.setdefault(tuple(heads[b].image.shape), []).append(b)
    return list(groups.values())


def _check(f: Frame) -> None:
    if not f.has_alpha:
        raise ValueError(f"warp torso: head frame {f.index} is RGB [H, W, 3]; it needs premultiplied RGBA "
                         "[H, W, 4] (use a renderer that outputs alpha)")
    if f.placement is None or not (f.placement.px_per_metre > 0 and all(math.isfinite(v) for v in f.placement.anchor_xy)):
        raise ValueError(f"warp torso: head frame {f.index} has no valid placement; the renderer must report a "
                         "Placement (anchor_xy, px_per_metre) so the head can be put on the neck")

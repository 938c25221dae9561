"""Fakes of the three contracts: small, deterministic, and honest about what they are."""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from ..contracts import (AudioToFlame, AudioToFlameInfo, FlameRenderer, FlameRendererInfo, FramewiseRenderStream,
                         FramewiseStream, Stream, TorsoCompositor, TorsoCompositorInfo)
from ..types import Audio, Frame, Motion, Placement, frames_for, head_poses
from .specs import FakeAudioConfig, FakeCompositorConfig, FakeRendererConfig


class FakeAudioToFlame(AudioToFlame):
    """Jaw opening from the RMS loudness of each frame's audio window, a blink every
    ``blink_every_s``, a slow head sway. Frame i sees samples [i*sr/fps, (i+1)*sr/fps)."""

    config: FakeAudioConfig

    def info(self) -> AudioToFlameInfo:
        c = self.config
        return AudioToFlameInfo(c.sample_rate, c.fps, c.motion_space, c.n_expression, latency_s=1.0 / c.fps)

    def _bounds(self, i: int) -> tuple[int, int]:
        sr, fps = self.config.sample_rate, self.config.fps
        return int(i * sr / fps), int((i + 1) * sr / fps)

    def _frames(self, first: int, rms: np.ndarray) -> Motion:
        """Motion for frames ``first .. first+len(rms)`` from their RMS values ``[t]``."""
        c = self.config
        if c.fail_after_frames is not None and first + len(rms) > c.fail_after_frames:
            raise RuntimeError(f"fake audio model told to fail after {c.fail_after_frames} frames")
        t = (first + np.arange(len(rms))) / c.fps
        m = Motion.zeros(len(rms), c.n_expression, fps=c.fps, space=c.motion_space)
        m.jaw[:, 0] = torch.from_numpy(np.clip(c.jaw_gain * rms, 0.0, 0.5).astype(np.float32))
        phase = np.mod(t, c.blink_every_s) - (c.blink_every_s - 0.3)  # a 0.15 s blink 0.3 s before each period ends
        blink = np.clip(1.0 - np.abs(phase - 0.075) / 0.075, 0.0, 1.0).astype(np.float32)
        m.eyelids[:] = torch.from_numpy(blink)[:, None]
        m.global_rot[:, 1] = torch.from_numpy((0.06 * np.sin(2 * np.pi * t / 4.0)).astype(np.float32))
        return m

    def _rms(self, samples: np.ndarray, offset: int, frames: range) -> np.ndarray:
        out = np.zeros(len(frames), np.float32)
        for k, i in enumerate(frames):
            a, b = self._bounds(i)
            window = samples[max(a - offset, 0):max(b - offset, 0)]
            out[k] = math.sqrt(float(np.mean(np.square(window, dtype=np.float64)))) if b > a and len(window) else 0.0
        return out

    def generate(self, audio: Audio) -> Motion:
        n = audio.num_frames(self.config.fps)
        return self._frames(0, self._rms(audio.samples, 0, range(n)))

    def open_stream(self) -> Stream[np.ndarray, Motion]:
        return _FakeAudioStream(self)


class _FakeAudioStream(Stream[np.ndarray, Motion]):
    def __init__(self, model: FakeAudioToFlame) -> None:
        self.model = model
        self.pending = np.zeros(0, np.float32)  # samples not yet fully used
        self.offset = 0  # absolute index of pending[0]
        self.done = 0  # frames emitted

    def _emit(self, upto: int) -> Motion:
        frames = range(self.done, upto)
        motion = self.model._frames(self.done, self.model._rms(self.pending, self.offset, frames))
        self.done = upto
        start = self.model._bounds(self.done)[0]
        self.pending = self.pending[max(start - self.offset, 0):]
        self.offset = max(start, self.offset)
        return motion

    def push(self, chunk: np.ndarray) -> Motion:
        self.pending = np.concatenate([self.pending, np.asarray(chunk, np.float32)])
        end = self.offset + len(self.pending)
        upto = self.done
        while self.model._bounds(upto)[1] <= end:
            upto += 1
        return self._emit(upto)

    def finish(self) -> Motion:
        c = self.model.config
        return self._emit(frames_for(self.offset + len(self.pending), c.sample_rate, c.fps))


def _ellipse(x: torch.Tensor, y: torch.Tensor, cx, cy, rx, ry, px: float) -> torch.Tensor:
    """Anti-aliased coverage of ellipses: x, y [H, W] grid; cx.. [T, 1, 1]; returns [T, H, W]."""
    d = torch.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1.0
    return torch.sigmoid(-d * torch.minimum(rx, ry) / px * 4.0)


class FakeRenderer(FlameRenderer):
    """A 2-D cartoon head and neck: the face moves with yaw and pitch and tilts with roll, the
    mouth opens with the jaw, the eyes close with the eyelids. Premultiplied RGBA plus depth; the
    head pose of each frame has no camera (there is no 3-D camera to report)."""

    config: FakeRendererConfig

    def info(self) -> FlameRendererInfo:
        c = self.config
        return FlameRendererInfo(tuple(c.motion_spaces), c.n_expression, c.accepts_pose_only, tuple(c.size), c.fps,
                                 has_depth=True)

    def render(self, motion: Motion, start_index: int = 0) -> list[Frame]:
        w, h = self.config.size
        t = motion.num_frames
        if t == 0:
            return []
        dev = motion.jaw.device
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev), indexing="ij")
        col = lambda v: v.reshape(t, 1, 1).float()  # noqa: E731
        roll = col(motion.global_rot[:, 2])
        # rotate the grid about the neck base (0, 1) by the roll angle
        x = torch.cos(roll) * xs - torch.sin(roll) * (ys - 1.0)
        y = torch.sin(roll) * xs + torch.cos(roll) * (ys - 1.0) + 1.0
        cx, cy = 0.8 * torch.sin(col(motion.global_rot[:, 1])), -0.2 + 0.5 * col(motion.global_rot[:, 0])
        one = torch.ones_like(cx)
        px = 2.0 / h
        face = _ellipse(x, y, cx, cy, 0.42 * one, 0.55 * one, px)
        neck = torch.sigmoid((0.16 - x.abs()) / px * 4) * torch.sigmoid((y - cy - 0.3) / px * 4)
        alpha = torch.maximum(face, neck)
        lids = motion.eyelids.clamp(0, 1)
        eyes = torch.maximum(
            _ellipse(x, y, cx - 0.16, cy - 0.15, 0.08 * one, 0.055 * (1 - col(lids[:, 0])) + 1e-3, px),
            _ellipse(x, y, cx + 0.16, cy - 0.15, 0.08 * one, 0.055 * (1 - col(lids[:, 1])) + 1e-3, px))
        mouth = _ellipse(x, y, cx, cy + 0.25, 0.16 * one, 0.015 + 0.5 * col(motion.jaw[:, 0]).clamp(min=0), px)
        rgb = torch.tensor([0.93, 0.75, 0.63], device=dev).expand(t, h, w, 3)
        rgb = torch.lerp(rgb, torch.tensor([0.1, 0.1, 0.15], device=dev).expand_as(rgb), (eyes * face)[..., None])
        rgb = torch.lerp(rgb, torch.tensor([0.45, 0.08, 0.1], device=dev).expand_as(rgb), (mouth * face)[..., None])
        rgba = torch.cat([rgb * alpha[..., None], alpha[..., None]], dim=-1)
        depth = torch.where(alpha > 0.01, torch.ones_like(alpha), torch.full_like(alpha, float("inf")))
        place = Placement((w / 2.0, h * 0.99), px_per_metre=h * 2.0)
        heads = head_poses(motion, None)
        return [Frame(rgba[i], start_index + i, (start_index + i) / motion.fps, depth[i], place, heads[i])
                for i in range(t)]

    def open_stream(self) -> Stream[Motion, list[Frame]]:
        return FramewiseRenderStream(self._render_slowly)

    def _render_slowly(self, chunk: Motion, start_index: int) -> list[Frame]:
        """``render``, after ``delay_s`` per frame (a slow renderer, for bus tests)."""
        if self.config.delay_s:
            time.sleep(self.config.delay_s * chunk.num_frames)
        return self.render(chunk, start_index)


class FakeCompositor(TorsoCompositor):
    """The head pasted with its anchor at the bottom centre, over a plain colour. It does not move
    with the head pose, but, as the partner renderers are tested with, it refuses head frames
    that lack one."""

    config: FakeCompositorConfig

    def info(self) -> TorsoCompositorInfo:
        return TorsoCompositorInfo(tuple(self.config.size))

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        w, h = self.config.size
        out = []
        for head in heads:
            if head.placement is None or not head.has_alpha:
                raise ValueError("the fake compositor needs RGBA head frames with a placement")
            if head.head is None:
                raise ValueError(f"head frame {head.index} has no head pose: the renderer must attach a "
                                 "HeadPose to every frame (Frame.head, kernel API 2)")
            canvas = torch.tensor(self.config.color, device=head.image.device).expand(h, w, 3).clone()
            ax, ay = head.placement.anchor_xy
            ox, oy = round(w / 2 - ax), round(h - ay)  # head pixel (x, y) lands at (x + ox, y + oy)
            hh, hw = head.image.shape[:2]
            x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + hw, w), min(oy + hh, h)
            if x1 > x0 and y1 > y0:
                part = head.image[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
                canvas[y0:y1, x0:x1] = part[..., :3] + (1 - part[..., 3:]) * canvas[y0:y1, x0:x1]
            out.append(Frame(canvas.clamp(0, 1), head.index, head.pts))
        return out

    def open_stream(self) -> Stream[Sequence[Frame], list[Frame]]:
        return FramewiseStream(self.composite)

"""The ``artalk`` AudioToFlame plugin: 16 kHz speech -> 25 fps FLAME 2020 motion.

Batch and streaming run one computation: audio is cut into whole chunks (4 s for the published
model; the last one zero-padded at the end of input, as published), each chunk runs
``ArtalkModel.step`` as soon as it is complete, and the Savitzky-Golay smoother releases a frame
once the 4 frames after it exist. ``generate`` is a stream fed the whole clip, so streaming
equals batch bit for bit, whatever the chunking. Latency: one chunk plus the smoother's 4 frames
(4.16 s for the published model), plus compute.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from being_kernel import ConfigError
from being_kernel.api import (FLAME_2020, Audio, AudioToFlame, AudioToFlameInfo, Motion, Stream, default_device,
                              frames_for, resolve_device)
from being_kernel.media import resample

from .config import FPS, MOTION_DIM, SAMPLE_RATE, read_sizes
from .model import ArtalkModel
from .postprocess import HALF, finish_pose, smoother
from .style import load_style_clip
from .weights import STYLE_DIR, WeightFiles, find_weights, load_model

N_EXPRESSION = 100


def style_path(style: str | None, files: WeightFiles) -> Path | None:
    """The clip file a ``style`` setting names: None / "default" -> None (neutral style); a path
    (with a separator or ending in .pt) -> that file; a name -> ``style_motion/NAME.pt``."""
    if style is None or style == "default":
        return None
    if os.sep in style or "/" in style or style.endswith(".pt"):
        path = Path(style).expanduser()
        if not path.is_file():
            raise ConfigError(f"audio.style: no such file: {path}", hint="give a 50x106 .pt clip or a style name")
        return path
    names = sorted(p.stem for p in files.style_dir.glob("*.pt")) if files.style_dir else []
    if style not in names:
        where = files.style_dir or files.checkpoint.parent / STYLE_DIR
        raise ConfigError(f"audio.style: no style clip '{style}' in {where}",
                          hint=f"available: {', '.join(names)}" if names else
                          "download style_motion/*.pt from xg-chu/ARTalk beside the checkpoint, or unset audio.style")
    return files.style_dir / f"{style}.pt"


class ArtalkAudio(AudioToFlame):
    def __init__(self, config, model: ArtalkModel | None = None,  # noqa: ANN001 - ArtalkConfig
                 style_clip: torch.Tensor | None = None) -> None:
        """``config``: an ArtalkConfig. ``model``: an in-memory float32 model to use (and own)
        instead of the weight files, for benchmarks, with ``style_clip`` ``[50, 106]`` in place of
        ``config.style``. Motion comes out on the model's device."""
        super().__init__(config)
        self.device = resolve_device(config.device) or default_device()
        clip = style_clip
        if model is None:
            files = find_weights(config.weights)
            sizes = read_sizes(files.config)
            clip_file = style_path(config.style, files)
            clip = load_style_clip(clip_file, sizes.style.frames) if clip_file else None
            model = load_model(files.checkpoint, sizes, self.device)
        self.model, self.sizes = model.to(self.device).eval(), model.sizes
        if config.dtype == "bfloat16":
            self.model.cast_parameters(torch.bfloat16)
        with torch.no_grad():
            self.style = self.model.style_token(clip.to(self.device) if clip is not None else None)

    def info(self) -> AudioToFlameInfo:
        latency = self.sizes.chunk_frames / FPS + (HALF / FPS if self.config.smooth else 0.0)
        return AudioToFlameInfo(sample_rate=SAMPLE_RATE, fps=FPS, motion_space=FLAME_2020,
                                n_expression=N_EXPRESSION, latency_s=latency)

    def generate(self, audio: Audio) -> Motion:
        samples = resample(audio.samples, audio.sample_rate, SAMPLE_RATE)
        stream = self.open_stream()
        first = stream.push(samples)
        return Motion.cat([first, stream.finish(frames=audio.num_frames(FPS))])

    def open_stream(self) -> ArtalkStream:
        return ArtalkStream(self)

    def close(self) -> None:
        self.model = self.style = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class ArtalkStream(Stream[np.ndarray, Motion]):
    """Push float32 16 kHz samples of any count; motion comes out a chunk at a time."""

    def __init__(self, owner: ArtalkAudio) -> None:
        if owner.model is None:
            raise RuntimeError("the artalk plugin was closed")
        self.owner, self.model = owner, owner.model
        self.chunk = owner.sizes.chunk_samples
        self.pending = np.zeros(0, np.float32)  # samples not yet in a whole chunk
        self.heard = 0  # samples pushed
        self.emitted = 0  # frames returned
        self.smoother = smoother(owner.config.smooth, owner.device)
        with torch.no_grad():
            self.state = self.model.initial_state(owner.style)

    def _step(self, samples: np.ndarray) -> torch.Tensor:
        audio = torch.from_numpy(samples)[None].to(self.owner.device)
        motion, self.state = self.model.step(audio, self.owner.style, self.state)
        return motion[0]

    def push(self, chunk: np.ndarray) -> Motion:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.heard += len(chunk)
        self.pending = np.concatenate([self.pending, chunk])
        parts = []
        with torch.no_grad():
            while len(self.pending) >= self.chunk:
                parts.append(self.smoother.push(self._step(self.pending[:self.chunk])))
                self.pending = self.pending[self.chunk:]
        return self._motion(torch.cat(parts) if parts else torch.zeros(0, MOTION_DIM, device=self.owner.device))

    def finish(self, frames: int | None = None) -> Motion:
        """Flush: the zero-padded last chunk, the smoother's tail. ``frames``: the total frame count
        to give (default round(seconds x 25)); at most ceil(seconds x 25)."""
        with torch.no_grad():
            raw = torch.zeros(0, MOTION_DIM, device=self.owner.device)
            if len(self.pending):
                padded = np.zeros(self.chunk, np.float32)
                padded[:len(self.pending)] = self.pending
                raw = self._step(padded)
                self.pending = np.zeros(0, np.float32)
            # the published code smooths the sequence cut to ceil(seconds x 25) frames
            out = self.smoother.finish(raw, math.ceil(self.heard / SAMPLE_RATE * FPS))
        total = frames_for(self.heard, SAMPLE_RATE, FPS) if frames is None else frames
        return self._motion(out[:max(0, total - self.emitted)])

    def _motion(self, values: torch.Tensor) -> Motion:
        """``[n, 106]`` -> Motion (expression 100, global rotation, jaw; the rest zero)."""
        values = finish_pose(values, self.owner.config.fixed_pose)
        self.emitted += len(values)
        m = Motion.zeros(len(values), N_EXPRESSION, fps=FPS, space=FLAME_2020, device=values.device)
        m.expression = values[:, :N_EXPRESSION].contiguous()
        m.global_rot = values[:, 100:103].contiguous()
        m.jaw = values[:, 103:106].contiguous()
        return m

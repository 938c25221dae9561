"""Randomly initialised weight directories in the published layout, for tests and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from .config import MOTION_DIM, ArtalkSizes, sizes_to_json, tiny
from .model import ArtalkModel
from .weights import CHECKPOINT, CONFIG, STYLE_DIR


def random_model(sizes: ArtalkSizes, seed: int = 0) -> ArtalkModel:
    """A model with reproducible random weights, in eval mode."""
    torch.manual_seed(seed)
    return ArtalkModel(sizes).eval().requires_grad_(False)


def write_style_clip(path: Path, seed: int = 0, frames: int = 50) -> torch.Tensor:
    """A random style clip saved as the published ones are: a ``[frames, 106]`` view into a
    longer recording, so the file holds the whole recording. Returns the clip."""
    g = torch.Generator().manual_seed(seed)
    recording = 0.3 * torch.randn(4 * frames, MOTION_DIM, generator=g)
    clip = recording[frames:2 * frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(clip, path)
    return clip


def write_random_weights(directory: Path, sizes: ArtalkSizes | None = None, seed: int = 0,
                         styles: Sequence[str] = ("natural_0",)) -> Path:
    """``directory`` with ``ARTalk_wav2vec.pt`` (random weights), ``config.json`` describing
    ``sizes`` (default: the tiny configuration) and ``style_motion/NAME.pt`` clips."""
    sizes = sizes or tiny()
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(random_model(sizes, seed).state_dict(), directory / CHECKPOINT)
    (directory / CONFIG).write_text(json.dumps(sizes_to_json(sizes), indent=2))
    for i, name in enumerate(styles):
        write_style_clip(directory / STYLE_DIR / f"{name}.pt", seed=seed + i, frames=sizes.style.frames)
    return directory

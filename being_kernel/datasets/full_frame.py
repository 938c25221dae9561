"""The layers of a full-frame dataset (``"full_frame": true``): besides the frames and ``alpha/`` (the
whole person), a head mask, a torso mask and the background plate, as torso methods train on them.

Layout (written by ``being make-dataset synthetic --full-frame`` and ``being prepare --full-frame``)::

    masks/person/NNNNN.png   the person (head, neck, torso)
    masks/head/NNNNN.png     the head (face, hair, ears) down to the jaw line
    masks/torso/NNNNN.png    the person less the head (neck, shoulders, clothes); when absent it is
                             read as person x (1 - head)
    background.png           the background plate, the person removed

The frames are numbered as the checkpoints (``input/00012.png`` -> ``masks/head/00012.png``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..media.images import read_image

PERSON_DIR, HEAD_DIR, TORSO_DIR = "masks/person", "masks/head", "masks/torso"
BACKGROUND_FILE = "background.png"

_HINT = "a full-frame dataset holds masks/person, masks/head and background.png (docs/datasets.md#full-frame-datasets)"


@dataclass
class FullFrames:
    """Frames ``frames`` [K] of a full-frame dataset on one device, uint8 (a quarter of float32's memory).

    images [K, H, W, 3]; head, torso [K, H, W, 1] masks; background [H, W, 3] the plate.
    Look-ups take rows 0..K-1 (``rows``) and give float in [0, 1]."""

    frames: torch.Tensor
    images: torch.Tensor
    head: torch.Tensor
    torso: torch.Tensor
    background: torch.Tensor

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows of dataset frames ``idx`` [B] (every one must be held)."""
        idx = idx.to(self.frames.device)
        rows = torch.searchsorted(self.frames, idx).clamp_max(len(self.frames) - 1)
        if not bool((self.frames[rows] == idx).all()):
            raise IndexError("FullFrames: a requested frame is not held")
        return rows

    def image(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, H, W, 3] float."""
        return self.images[self.rows(idx)].float() / 255.0

    def head_mask(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, H, W, 1] float."""
        return self.head[self.rows(idx)].float() / 255.0

    def torso_mask(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, H, W, 1] float."""
        return self.torso[self.rows(idx)].float() / 255.0

    def plate(self) -> torch.Tensor:
        """[H, W, 3] float."""
        return self.background.float() / 255.0


def _mask_path(video, folder: str, i: int) -> Path:  # noqa: ANN001 - a TrackedVideo
    return video.root / folder / f"{video.image_paths[i].stem}.png"


def _read_mask(video, path: Path) -> np.ndarray:  # noqa: ANN001
    """uint8 [H, W, 1] (alpha channel, else the mean of the colour channels)."""
    if not path.is_file():
        raise InputError(f"{path}: mask missing", hint=_HINT)
    pixels = read_image(path)
    if pixels.shape[:2] != (video.cameras.height, video.cameras.width):
        raise InputError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]}, but the frames are "
                         f"{video.cameras.width}x{video.cameras.height}", hint=_HINT)
    if pixels.shape[2] in (2, 4):
        return pixels[..., -1:]
    return np.round(pixels.astype(np.float32).mean(axis=2, keepdims=True)).astype(np.uint8)


def check_full_frame(video) -> None:  # noqa: ANN001 - a TrackedVideo
    """InputError unless ``video`` is a full-frame dataset with its plate and masks folders."""
    if not video.full_frame:
        raise InputError(f"{video.root}: not a full-frame dataset (its frames are head crops)",
                         hint="make one with being make-dataset synthetic --full-frame or being prepare --full-frame")
    missing = [p for p in (PERSON_DIR, HEAD_DIR, BACKGROUND_FILE) if not (video.root / p).exists()]
    if missing:
        raise InputError(f"{video.root}: a full-frame dataset without {', '.join(missing)}", hint=_HINT)


def load_full_frames(video, device: torch.device | str = "cpu",  # noqa: ANN001 - a TrackedVideo
                     frames: Sequence[int] | None = None) -> FullFrames:
    """Read ``frames`` (default all; kept sorted) of the full-frame dataset ``video`` onto ``device``."""
    check_full_frame(video)
    frames = list(range(len(video))) if frames is None else sorted(set(int(i) for i in frames))
    images, heads, torsos = [], [], []
    for i in frames:
        images.append((video.load_image(i) * 255.0 + 0.5).clamp(0, 255).to(torch.uint8))
        head = _read_mask(video, _mask_path(video, HEAD_DIR, i))
        torso_path = _mask_path(video, TORSO_DIR, i)
        if torso_path.is_file():
            torso = _read_mask(video, torso_path)
        else:
            person = _read_mask(video, _mask_path(video, PERSON_DIR, i)).astype(np.float32)
            torso = np.round(person * (1.0 - head / 255.0)).astype(np.uint8)
        heads.append(torch.from_numpy(np.ascontiguousarray(head)))
        torsos.append(torch.from_numpy(np.ascontiguousarray(torso)))
    plate = read_image(video.root / BACKGROUND_FILE)
    if plate.shape[:2] != (video.cameras.height, video.cameras.width):
        raise InputError(f"{video.root / BACKGROUND_FILE}: {plate.shape[1]}x{plate.shape[0]}, but the frames are "
                         f"{video.cameras.width}x{video.cameras.height}", hint=_HINT)
    if plate.shape[2] < 3:
        plate = np.repeat(plate[..., :1], 3, axis=2)
    h, w = video.cameras.height, video.cameras.width
    empty = lambda c: torch.zeros(0, h, w, c, dtype=torch.uint8)  # noqa: E731
    return FullFrames(frames=torch.tensor(frames, dtype=torch.int64, device=device),
                      images=(torch.stack(images) if images else empty(3)).to(device),
                      head=(torch.stack(heads) if heads else empty(1)).to(device),
                      torso=(torch.stack(torsos) if torsos else empty(1)).to(device),
                      background=torch.from_numpy(np.ascontiguousarray(plate[..., :3])).to(device))

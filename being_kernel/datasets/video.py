"""``TrackedVideo``: a monocular talking-head video with per-frame FLAME tracking, in the kernel's
conventions whatever format it came from (see docs/datasets.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import InputError
from ..head.data import HeadModelData
from ..media.audio_io import read_audio
from ..media.images import read_image
from ..types import Audio, Motion


@dataclass
class TrackedVideo:
    """A monocular video with per-frame FLAME tracking in the kernel's conventions (OpenCV cameras,
    FLAME in metres, unscaled).

    motion       [T] frames in the head model's motion space (expression padded or cut to its E)
    shape        [S] float32 identity coefficients (S may be 0)
    cameras      one per frame: R [T, 3, 3], t [T, 3], K [T, 3, 3], width, height
    image_paths  T images; mask_paths: T masks or None (no mask: all ones)
    head_model   a head-model reference (``being_kernel.head.refs``): "demo", "flame2020", a path...
    test_frames  how many LAST frames are held out for testing
    audio_path   the recording's sound (a file ``load_audio`` decodes), or None: the sidecar's
                 ``audio``, else ``audio.{wav,flac,mp3,m4a}`` or an audible ``video.mp4`` in ``root``
    full_frame   the images are whole frames (head, neck, torso, background), as torso methods
                 need; the sidecar's ``"full_frame": true`` says so (default: head crops)

    The posed mesh of frame i is ``FlameModel(video.head())(video.motion, video.shape).vertices[i]``
    and ``video.cameras`` projects it onto image i. Some formats keep the head pose in the camera
    (global rotation zero, see docs/datasets.md); only the projected mesh is format-independent.
    """

    root: Path
    format: str
    motion: Motion
    shape: torch.Tensor
    cameras: Cameras
    image_paths: list[Path]
    mask_paths: list[Path | None]
    head_model: str
    fps: float
    test_frames: int
    audio_path: Path | None = None
    full_frame: bool = False
    _head: HeadModelData | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return self.motion.num_frames

    def load_image(self, i: int) -> torch.Tensor:
        """Image i as float32 [H, W, 3] in [0, 1] (RGB; alpha dropped, gray repeated)."""
        pixels = self._read(self.image_paths[i])
        if pixels.shape[2] < 3:
            pixels = np.repeat(pixels[..., :1], 3, axis=2)
        return torch.from_numpy(pixels[..., :3].astype(np.float32) / 255.0)

    def load_mask(self, i: int) -> torch.Tensor:
        """Mask i as float32 [H, W, 1] in [0, 1]: the file's alpha channel if it has one, else its
        gray value (the mean of R, G, B); all ones when the frame has no mask."""
        path = self.mask_paths[i]
        if path is None:
            return torch.ones(self.cameras.height, self.cameras.width, 1)
        pixels = self._read(path)
        if pixels.shape[2] == 4:
            mask = pixels[..., 3:].astype(np.float32)
        else:
            mask = pixels.astype(np.float32).mean(axis=2, keepdims=True)
        return torch.from_numpy(mask / 255.0)

    def load_audio(self, sample_rate: int | None = None) -> Audio | None:
        """The audio track as mono float32 ``[N]`` (channels averaged) at its own rate, or resampled to
        ``sample_rate``; None when the dataset has none. Sample 0 is the start of frame 0."""
        return None if self.audio_path is None else read_audio(self.audio_path, sample_rate)

    def split(self) -> tuple[list[int], list[int]]:
        """(train indices, test indices): the last ``test_frames`` frames are the test frames."""
        n = len(self)
        return list(range(n - self.test_frames)), list(range(n - self.test_frames, n))

    def head(self) -> HeadModelData:
        """The head model that ``head_model`` names (resolved once, relative paths from ``root``)."""
        if self._head is None:
            from ..head.refs import resolve_head_model

            self._head = resolve_head_model(self.head_model, self.root, where=f"{self.root}: head_model")
        return self._head

    def _read(self, path: Path) -> np.ndarray:
        if not path.is_file():
            raise InputError(f"{path}: image missing", hint="restore the file, or re-export the dataset")
        pixels = read_image(path)
        size = (self.cameras.height, self.cameras.width)
        if pixels.shape[:2] != size:
            raise InputError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, but the dataset's frames are "
                             f"{size[1]}x{size[0]} (frames of different image sizes)",
                             hint="resize every frame (and its mask) to one size and re-track, or fix the camera sizes")
        return pixels


@dataclass
class Tracking:
    """What a format reader returns, before the head model's widths are applied (float64 numpy).

    expression [T, E'] as stored; global_rot, neck, jaw [T, 3], eyes [T, 6], eyelids [T, 2],
    translation [T, 3] axis-angle / metres in the unscaled FLAME world; shape [S'] as stored (None:
    the format keeps no identity; ``shape_source`` is where it would be).
    ``sources`` names the file each frame's parameters came from (for error messages);
    ``test_frames`` is the format's own split when it has one.
    """

    expression: np.ndarray
    global_rot: np.ndarray
    neck: np.ndarray
    jaw: np.ndarray
    eyes: np.ndarray
    eyelids: np.ndarray
    translation: np.ndarray
    shape: np.ndarray | None
    cameras: Cameras
    image_paths: list[Path]
    mask_paths: list[Path | None]
    sources: list[Path]
    shape_source: Path
    test_frames: int | None = None

    def __len__(self) -> int:
        return len(self.image_paths)

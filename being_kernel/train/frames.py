"""The frames a trainer or an evaluation compares against, read once and kept on the device.

Images and masks are stored as uint8 (a quarter of float32's memory: 600 frames of 512x512 take
about 600 MB), converted per batch.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from ..cameras import Cameras


#: Whether ``FrameStore.read`` shows its bar: ``run_fit(progress=False)`` (``being fit -q``) turns it off.
_SHOW_PROGRESS: ContextVar[bool] = ContextVar("being_train_progress", default=True)


@contextmanager
def progress_shown(show: bool) -> Iterator[None]:
    """Within the block, ``FrameStore.read`` shows its progress bar only if ``show``."""
    token = _SHOW_PROGRESS.set(show)
    try:
        yield
    finally:
        _SHOW_PROGRESS.reset(token)


@dataclass
class FrameStore:
    """frames [K] dataset indices held; images [K, H, W, 3] uint8; masks [K, H, W, 1] uint8;
    cameras: the K frames' cameras. Look-ups take dataset indices."""

    frames: torch.Tensor
    images: torch.Tensor
    masks: torch.Tensor
    cameras: Cameras
    # rows are dataset indices (all frames held, in order): look-ups need no search, and no GPU sync
    _identity: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = int(self.frames.numel())
        self._identity = bool((self.frames.cpu() == torch.arange(n)).all())

    @classmethod
    def load(cls, video, device: torch.device, frames: Sequence[int] | None = None,  # noqa: ANN001 - a TrackedVideo
             progress: Callable[[int], None] | None = None) -> FrameStore:
        """Read ``frames`` (default all; kept sorted) of ``video``'s images and masks onto ``device``."""
        frames = list(range(len(video))) if frames is None else sorted(set(frames))
        images, masks = [], []
        for i in frames:
            images.append(_to_u8(video.load_image(i)))
            masks.append(_to_u8(video.load_mask(i)))
            if progress is not None:
                progress(1)
        h, w = video.cameras.height, video.cameras.width
        index = torch.tensor(frames, dtype=torch.int64)
        return cls(frames=index.to(device),
                   images=torch.stack(images).to(device) if images else torch.zeros(0, h, w, 3, dtype=torch.uint8, device=device),
                   masks=torch.stack(masks).to(device) if masks else torch.zeros(0, h, w, 1, dtype=torch.uint8, device=device),
                   cameras=video.cameras[index].to(device))

    @classmethod
    def read(cls, video, device: torch.device) -> FrameStore:  # noqa: ANN001 - a TrackedVideo
        """All of ``video``'s frames, as ``load``, with a "reading frames" bar (unless ``being fit -q``)."""
        from tqdm import tqdm

        with tqdm(total=len(video), unit="frame", desc="reading frames", leave=False,
                  disable=not _SHOW_PROGRESS.get()) as bar:
            return cls.load(video, device, progress=bar.update)

    def __len__(self) -> int:
        return int(self.frames.numel())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.cameras.width, self.cameras.height

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows of dataset frames ``idx`` [B] in this store."""
        idx = idx.to(self.frames.device)
        if self._identity:
            return idx
        rows = torch.searchsorted(self.frames, idx)
        if not bool((self.frames[rows.clamp_max(len(self) - 1)] == idx).all()):
            raise IndexError("FrameStore: a requested frame is not held")
        return rows

    def views(self, idx: torch.Tensor) -> Cameras:
        """The cameras of dataset frames ``idx`` [B]."""
        return self.cameras[self._rows(idx)]

    def image(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, H, W, 3] float in [0, 1]."""
        return self.images[self._rows(idx)].float() / 255.0

    def mask(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, H, W, 1] float in [0, 1]."""
        return self.masks[self._rows(idx)].float() / 255.0

    def targets(self, idx: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Frames ``idx`` [B] with ``background`` [B, 3] where the mask is off: [B, H, W, 3]."""
        rows = self._rows(idx)
        img = self.images[rows].float() / 255.0
        mask = self.masks[rows].float() / 255.0
        return img * mask + background[:, None, None, :].to(img) * (1.0 - mask)


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)

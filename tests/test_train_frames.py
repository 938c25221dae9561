"""The training frame store: look-ups by dataset index, whether it holds every frame or a subset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from being_kernel.datasets import load_tracked_video
from being_kernel.datasets.synthetic import make_synthetic
from being_kernel.train import FrameStore


def test_lookups_by_dataset_index(tmp_path: Path) -> None:
    video = load_tracked_video(make_synthetic(tmp_path / "s", size=32, frames=6, test_frames=2, progress=False))
    full = FrameStore.load(video, torch.device("cpu"))
    part = FrameStore.load(video, torch.device("cpu"), [5, 2])
    idx = torch.tensor([5, 2, 5])
    for store in (full, part):
        torch.testing.assert_close(store.image(idx), torch.stack([video.load_image(i) for i in (5, 2, 5)]), atol=1 / 255, rtol=0)
        torch.testing.assert_close(store.views(idx).K, video.cameras.K[idx])
        bg = torch.tensor([[1.0, 0, 0]]).expand(3, 3)
        mask = torch.stack([video.load_mask(i) for i in (5, 2, 5)])
        expect = torch.stack([video.load_image(i) for i in (5, 2, 5)]) * mask + bg[:, None, None] * (1 - mask)
        torch.testing.assert_close(store.targets(idx, bg), expect, atol=2 / 255, rtol=0)
    with pytest.raises(IndexError):
        part.image(torch.tensor([3]))

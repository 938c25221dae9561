"""Cameras: indexing keeps the picked cameras, resizing scales projections with the image."""

import pytest
import torch

from being_kernel.cameras import Cameras


def _cams(b: int = 4) -> Cameras:
    g = torch.Generator().manual_seed(0)
    R = torch.linalg.qr(torch.randn(b, 3, 3, generator=g))[0]
    t = torch.randn(b, 3, generator=g) + torch.tensor([0.0, 0.0, 5.0])
    K = torch.tensor([[300.0, 0, 100.0], [0, 320.0, 60.0], [0, 0, 1]]).repeat(b, 1, 1) + torch.rand(b, 3, 3, generator=g) * torch.tensor([[1.0, 0, 1], [0, 1, 1], [0, 0, 0]])
    return Cameras(R, t, K, 200, 120)


def test_indexing_picks_cameras() -> None:
    cams = _cams()
    for index in (2, -1, slice(1, 3), [3, 0], torch.tensor([1, 1])):
        sub = cams[index]
        expect = torch.arange(4)[index if not isinstance(index, int) else slice(index % 4, index % 4 + 1)]
        torch.testing.assert_close(sub.R, cams.R[expect])
        torch.testing.assert_close(sub.t, cams.t[expect])
        torch.testing.assert_close(sub.K, cams.K[expect])
        assert (sub.width, sub.height) == (cams.width, cams.height)
    with pytest.raises(IndexError):
        cams[4]  # never an empty batch


def test_resized_projection_scales_with_the_image() -> None:
    cams = _cams()
    points = torch.randn(4, 50, 3)
    pix, depth = cams.project(points)
    small = cams.resized(50, 90)
    pix2, depth2 = small.project(points)
    torch.testing.assert_close(pix2, pix * torch.tensor([50 / 200, 90 / 120]), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(depth2, depth)
    assert (small.width, small.height) == (50, 90)

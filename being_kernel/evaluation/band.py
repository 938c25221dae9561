"""The neck band: where a rendered head meets the torso, the pixels a compositor most often gets wrong."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """[B, H, W] bool -> bool, grown by a (2r+1)^2 square: two 1-D max pools (rows, then columns),
    the same as one square pool at 2(2r+1) instead of (2r+1)^2 comparisons a pixel."""
    if radius <= 0:
        return mask
    x = mask.to(torch.float16 if mask.is_cuda else torch.float32)[:, None]
    k = 2 * radius + 1
    x = F.max_pool2d(x, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(x, (k, 1), stride=1, padding=(radius, 0))[:, 0] > 0.5


def neck_band(head: torch.Tensor, torso: torch.Tensor | None, radius: int, below_y: torch.Tensor | None = None
              ) -> torch.Tensor:
    """[B, H, W, 1] float 0/1: pixels within ``radius`` px of the head/torso boundary.

    head [B, H, W, 1] head mask in [0, 1]; torso [B, H, W, 1] or None. With a torso mask the band is
    where both masks, grown by ``radius``, overlap (the seam itself). Without one it is the ring of
    width 2 ``radius`` around the head mask's outline, kept only below ``below_y`` [B] (image row of
    the jaw or neck base, when given), since the seam to the body is the lower outline."""
    h = head[..., 0] > 0.5
    if torso is not None:
        band = dilate(h, radius) & dilate(torso[..., 0] > 0.5, radius)
    else:
        band = dilate(h, radius) & dilate(~h, radius)  # near both sides: a ring across the outline
        if below_y is not None:
            rows = torch.arange(h.shape[1], device=h.device)[None, :, None]
            band = band & (rows >= below_y.to(h.device)[:, None, None])
    return band[..., None].float()

"""Putting rendered heads into a full frame: what a compositor that draws a torso of its own needs.

A renderer's head frame is premultiplied RGBA with a ``Placement`` (where its neck base is, and the
image scale there). ``place_heads`` moves and scales a batch of them so each neck base lands on a
target point of the output frame at a target scale, in one bilinear resampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def place_heads(heads: torch.Tensor, anchors: torch.Tensor, scales: torch.Tensor, targets: torch.Tensor,
                size: tuple[int, int]) -> torch.Tensor:
    """Premultiplied RGBA heads [B, h, w, 4] -> [B, H, W, 4] in an output of ``size`` = (W, H).

    anchors [B, 2]: each head's neck base in its image (pixels, centres at +0.5); scales [B]: output
    pixels per head pixel; targets [B, 2]: where the neck base goes in the output. Point q of a
    head image lands at ``targets + scales * (q - anchors)``. Outside the head image: transparent.
    A head shrunk by more than 10 % is first reduced with an antialiasing filter. Each head is
    placed on its own (its result does not depend on the others in the batch)."""
    return torch.cat([_place(heads[b], anchors[b].to(heads), float(scales[b]), targets[b].to(heads), size)
                      for b in range(heads.shape[0])])


def _place(head: torch.Tensor, anchor: torch.Tensor, scale: float, target: torch.Tensor,
           size: tuple[int, int]) -> torch.Tensor:
    h, w, _ = head.shape
    width, height = size
    img = head.permute(2, 0, 1)[None]
    if scale < 0.9:  # antialias the shrink, then resample the remainder
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        img = F.interpolate(img, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        fx, fy = nw / w, nh / h
        anchor = anchor * torch.tensor([fx, fy], device=img.device, dtype=img.dtype)
        scale = scale / ((fx + fy) / 2)
        h, w = nh, nw
    ys = torch.arange(height, device=img.device, dtype=img.dtype) + 0.5
    xs = torch.arange(width, device=img.device, dtype=img.dtype) + 0.5
    # output point P -> head point q = (P - target) / scale + anchor -> grid_sample's [-1, 1]
    qx = (xs - target[0]) / scale + anchor[0]  # [W]
    qy = (ys - target[1]) / scale + anchor[1]  # [H]
    grid = torch.stack(torch.broadcast_tensors((2 * qx / w - 1)[None, :], (2 * qy / h - 1)[:, None]), dim=-1)
    out = F.grid_sample(img, grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.permute(0, 2, 3, 1)

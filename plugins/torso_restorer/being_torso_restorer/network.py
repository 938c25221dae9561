"""The restorer's network: a small residual U-Net over crops of the composite around the seam.

Input [B, 6, h, w]: the composite's RGB mapped to [-1, 1], the head's and the torso's coverage, and
the band weight (where the output may change). Output [B, 3, h, w]: an RGB correction added to the
composite inside the band. The last layer starts at zero, so an untrained restorer returns its base
torso's composite: training only ever starts from the base's quality.

Size, chosen for speed: ``width`` channels at full resolution, doubling per level, two 3x3
convolutions a level (one where the decoder joins its skip). With the defaults (width 24, 3 levels)
that is 0.27 M parameters and about 64 k multiply-adds per crop pixel.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

IN_CHANNELS = 6


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True))


class RestorerNet(nn.Module):
    """U-Net of ``levels`` resolutions, ``width`` channels at the first (see the module doc)."""

    def __init__(self, width: int = 24, levels: int = 3) -> None:
        super().__init__()
        self.width, self.levels = width, levels
        chans = [width * 2 ** i for i in range(levels)]
        self.stem = nn.Sequential(_conv(IN_CHANNELS, chans[0]), _conv(chans[0], chans[0]))
        self.down = nn.ModuleList(nn.Sequential(_conv(chans[i], chans[i + 1], stride=2), _conv(chans[i + 1], chans[i + 1]))
                                  for i in range(levels - 1))
        self.up = nn.ModuleList(nn.Sequential(_conv(chans[i + 1] + chans[i], chans[i]), _conv(chans[i], chans[i]))
                                for i in reversed(range(levels - 1)))
        self.out = nn.Conv2d(chans[0], 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        """Crop sides must be multiples of this (each level halves the resolution)."""
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 6, h, w] (h, w multiples of ``multiple``) -> correction [B, 3, h, w]."""
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = skips.pop()
        for block in self.up:
            skip = skips.pop()
            y = block(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.out(y)

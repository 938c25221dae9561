"""The restoring step shared by training and the compositor: band, crop, network, paste back.

For a batch of composites [B, H, W, 3] and their coverage [B, H, W, 2] (head, torso, as the base
compositor reports them):

1. the band: where the head and the torso, each grown by ``radius`` px, overlap (the kernel's
   ``neck_band``, the same definition ``being eval`` scores), with a weight that rises from 0 at its
   edge to 1 over ``FEATHER`` px inside, so a restored band has no step at its border;
2. one crop of fixed size ``crop`` = (w, h) per frame, centred on the band's bounding box and kept
   inside the frame (fixed, so frames batch; the size is fitted to the training frames' bands);
3. the network's correction, weighted by the band, added to the crop;
4. the crop pasted back. Pixels outside the band are the composite's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from being_kernel.evaluation import neck_band

from .network import RestorerNet

#: Width (px) of the band's soft inner edge.
FEATHER = 3


@dataclass
class Crops:
    """Crops of one batch: ``ys`` [B, h] and ``xs`` [B, w] (the rows and columns taken from each frame),
    the composite's ``image`` [B, h, w, 3], ``coverage`` [B, h, w, 2] and band ``weight`` [B, h, w, 1]."""

    ys: torch.Tensor
    xs: torch.Tensor
    image: torch.Tensor
    coverage: torch.Tensor
    weight: torch.Tensor

    def take(self, frames: torch.Tensor) -> torch.Tensor:
        """The same crops of other full frames [B, H, W, C] -> [B, h, w, C]."""
        b = torch.arange(frames.shape[0], device=frames.device)[:, None, None]
        return frames[b, self.ys[:, :, None], self.xs[:, None, :]]

    def paste(self, frames: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        """``frames`` [B, H, W, C] with ``crops`` [B, h, w, C] put back in place (a new tensor)."""
        out = frames.clone()
        b = torch.arange(frames.shape[0], device=frames.device)[:, None, None]
        out[b, self.ys[:, :, None], self.xs[:, None, :]] = crops.to(out.dtype)
        return out


def band_weight(coverage: torch.Tensor, radius: int) -> torch.Tensor:
    """[B, H, W, 2] coverage -> [B, H, W, 1] weight: 0 outside the band, and inside it rising from
    1 / (FEATHER + 1) at its edge to 1 at FEATHER px in (1 + the band eroded 1..FEATHER times)."""
    band = neck_band(coverage[..., :1], coverage[..., 1:], radius).permute(0, 3, 1, 2)  # [B, 1, H, W] 0/1
    total, inner = band.clone(), band
    for _ in range(FEATHER):
        inner = 1 - F.max_pool2d(1 - inner, 3, stride=1, padding=1)  # erode by one pixel
        total += inner
    return (total / (FEATHER + 1)).permute(0, 2, 3, 1)


def _origins(band: torch.Tensor, length: int, size: int) -> torch.Tensor:
    """band [B, N] bool (any along the other axis) -> [B] first index of a window of ``length`` in
    [0, size) centred on the band's extent (the frame's centre when the band is empty)."""
    n = band.shape[1]
    idx = torch.arange(n, device=band.device)
    lo = torch.where(band, idx, n).amin(1)
    hi = torch.where(band, idx, -1).amax(1)
    centre = torch.where(hi >= lo, (lo + hi + 1) / 2, torch.full_like(lo, n / 2, dtype=torch.float32))
    return (centre - length / 2).round().long().clamp(0, size - length)


def crops(image: torch.Tensor, coverage: torch.Tensor, radius: int, crop: tuple[int, int]) -> Crops:
    """The band and fixed-size crops of a batch (see the module doc). image [B, H, W, 3]."""
    weight = band_weight(coverage, radius)
    H, W = image.shape[1:3]
    cw, ch = min(crop[0], W), min(crop[1], H)
    inside = weight[..., 0] > 0
    y0 = _origins(inside.any(2), ch, H)
    x0 = _origins(inside.any(1), cw, W)
    ys = y0[:, None] + torch.arange(ch, device=image.device)
    xs = x0[:, None] + torch.arange(cw, device=image.device)
    c = Crops(ys, xs, image, coverage, weight)
    return Crops(ys, xs, c.take(image), c.take(coverage), c.take(weight))


def correct(net: RestorerNet, c: Crops) -> torch.Tensor:
    """The restored crops [B, h, w, 3]: the composite plus the network's correction inside the band
    (the network runs in its parameters' dtype; the sum is float32)."""
    dtype = next(net.parameters()).dtype
    x = torch.cat([c.image * 2 - 1, c.coverage, c.weight], -1).permute(0, 3, 1, 2).to(dtype)
    h, w = x.shape[-2:]
    m = net.multiple
    ph, pw = -h % m, -w % m
    if ph or pw:  # crops of a frame smaller than the trained crop: pad to the network's multiple
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    delta = net(x.contiguous(memory_format=torch.channels_last))[:, :, :h, :w].float().permute(0, 2, 3, 1)
    return torch.where(c.weight > 0, c.image + c.weight * delta, c.image)


def restore(net: RestorerNet, image: torch.Tensor, coverage: torch.Tensor, radius: int,
            crop: tuple[int, int]) -> torch.Tensor:
    """Composites image [B, H, W, 3] with coverage [B, H, W, 2] -> restored frames [B, H, W, 3] in [0, 1]."""
    c = crops(image, coverage, radius, crop)
    return c.paste(image, correct(net, c).clamp(0, 1))

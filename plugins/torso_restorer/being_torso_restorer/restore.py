"""The restoring step shared by training and the compositor: band, crop, network, paste back.

For a batch of composites [B, H, W, 3] and their coverage [B, H, W, 2] (head, torso, as the base
compositor reports them):

1. the band: where the head grown by ``band[0]`` px (reaching into the torso) and the torso grown by
   ``band[1]`` px (reaching into the head) overlap: ``being eval``'s neck band with its two sides
   apart, wide on the torso's side, where a base torso is wrong, and narrow on the head's, which the
   renderer drew; with a weight that rises from 1/4 at its edge to 1 over ``FEATHER`` px inside, so a
   restored band has no step at its border;
2. one crop of fixed size ``crop`` = (w, h) per frame, centred on the band's bounding box and kept
   inside the frame (fixed, so frames batch; the size is fitted to the training frames' bands);
3. the network's correction, weighted by the band, added to the crop. The network works at
   ``scale`` times the frame's resolution (the crop resized with antialiasing, the correction
   resized back): its receptive field then spans the neck at any frame size, and it costs less;
4. the crop pasted back. Pixels outside the band are the composite's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from being_kernel.evaluation import dilate

from .network import RestorerNet

#: Width (px) of the band's soft inner edge.
FEATHER = 3


@dataclass(frozen=True)
class Layout:
    """Where and at what resolution a restorer works: ``band`` (torso, head) px, the two radii of the
    band; ``crop`` (w, h) px; ``scale`` the network's resolution over the frame's (at most 1)."""

    band: tuple[int, int]
    crop: tuple[int, int]
    scale: float = 1.0


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


def band_weight(coverage: torch.Tensor, band: tuple[int, int]) -> torch.Tensor:
    """[B, H, W, 2] coverage -> [B, H, W, 1] weight: 0 outside the band (see the module doc), and inside
    it rising from 1 / (FEATHER + 1) at its edge to 1 at FEATHER px in (1 + the band eroded 1..FEATHER times)."""
    inside = dilate(coverage[..., 0] > 0.5, band[0]) & dilate(coverage[..., 1] > 0.5, band[1])
    band = inside[:, None].float()  # [B, 1, H, W]
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


def crops(image: torch.Tensor, coverage: torch.Tensor, layout: Layout) -> Crops:
    """The band and fixed-size crops of a batch (see the module doc). image [B, H, W, 3]."""
    weight = band_weight(coverage, layout.band)
    H, W = image.shape[1:3]
    cw, ch = min(layout.crop[0], W), min(layout.crop[1], H)
    inside = weight[..., 0] > 0
    y0 = _origins(inside.any(2), ch, H)
    x0 = _origins(inside.any(1), cw, W)
    ys = y0[:, None] + torch.arange(ch, device=image.device)
    xs = x0[:, None] + torch.arange(cw, device=image.device)
    c = Crops(ys, xs, image, coverage, weight)
    return Crops(ys, xs, c.take(image), c.take(coverage), c.take(weight))


def correct(net: RestorerNet, c: Crops, scale: float = 1.0) -> torch.Tensor:
    """The restored crops [B, h, w, 3]: the composite plus the network's correction inside the band
    (the network runs in its parameters' dtype at ``scale``; the sum is float32)."""
    dtype = next(net.parameters()).dtype
    x = torch.cat([c.image * 2 - 1, c.coverage, c.weight], -1).permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    m = net.multiple
    sh, sw = max(m, round(h * scale)), max(m, round(w * scale))
    if (sh, sw) != (h, w):
        x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
    ph, pw = -sh % m, -sw % m
    if ph or pw:  # pad to the network's multiple
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    delta = net(x.to(dtype).contiguous(memory_format=torch.channels_last))[:, :, :sh, :sw].float()
    if (sh, sw) != (h, w):
        delta = F.interpolate(delta, size=(h, w), mode="bilinear", align_corners=False)
    delta = delta.permute(0, 2, 3, 1)
    return torch.where(c.weight > 0, c.image + c.weight * delta, c.image)


def restore(net: RestorerNet, image: torch.Tensor, coverage: torch.Tensor, layout: Layout) -> torch.Tensor:
    """Composites image [B, H, W, 3] with coverage [B, H, W, 2] -> restored frames [B, H, W, 3] in [0, 1]."""
    c = crops(image, coverage, layout)
    return c.paste(image, correct(net, c, layout.scale).clamp(0, 1))

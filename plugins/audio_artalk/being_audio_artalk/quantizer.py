"""Multi-scale residual binary spherical quantisation (BSQ); no parameters.

A chunk's code ``[B, T, C]`` (T frames, C bits) is quantised coarse to fine: at each scale the
residual is area-resampled to that scale's length, L2-normalised and replaced by its signs
(``+-1 / sqrt(C)``, a corner of the cube on the unit sphere); the quantised scale is linearly
upsampled back to T and subtracted. The bits of all scales, concatenated, are the tokens
``[B, sum(patch_nums), C]`` that the autoregressive model predicts. Everything here runs in
float32 whatever the model's dtype, as the published code fixes (artalk/modules/bitwise_vae.py).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _resample(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resample ``[B, T, C]`` along T (area: mean pooling; linear: align_corners=False)."""
    return F.interpolate(x.permute(0, 2, 1), size=size, mode=mode).permute(0, 2, 1).contiguous()


def sphere_signs(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One scale: ``[B, T, C]`` -> (quantised values, bits as int32).

    The values are ``z + (zhat - z)``, the forward value of the published straight-through
    estimator; in floating point that can differ from ``zhat`` in the last bit, and later scales
    see it through the residual, so it is kept."""
    z = F.normalize(z, dim=-1)
    zhat = torch.where(z > 0, torch.tensor(1).type_as(z), torch.tensor(-1).type_as(z))
    zhat = (1.0 / z.shape[-1] ** 0.5) * zhat
    quantised = z + (zhat - z)
    return quantised, (quantised > 0).int()


def quantize(code: torch.Tensor, patch_nums: Sequence[int]) -> torch.Tensor:
    """Residual quantisation of ``[B, T, C]`` (T = patch_nums[-1]) -> bits ``[B, sum(patch_nums), C]``."""
    t = code.shape[1]
    residual, bits = code, []
    for n in patch_nums:
        part = _resample(residual, n, "area") if n != t else residual
        values, b = sphere_signs(part)
        if n != t:
            values = _resample(values, t, "linear")
        residual = residual - values
        bits.append(b)
    return torch.cat(bits, dim=1)


def bit_values(bits: torch.Tensor) -> torch.Tensor:
    """Bits {0, 1} -> values ``(2 b - 1) / sqrt(C)`` in float32."""
    return (bits.float() * 2 - 1.0) / (bits.shape[-1] ** 0.5)


def next_scale_inputs(bits: torch.Tensor, patch_nums: Sequence[int], upto: int) -> torch.Tensor:
    """What the autoregressive model reads for scales 1..upto+1: for k = 0..upto, the running sum
    of scales 0..k (each linearly upsampled to T) area-resampled to the length of scale k+1.

    bits ``[B, >= sum(patch_nums[:upto+1]), C]`` -> ``[B, sum(patch_nums[1:upto+2]), C]`` float32.
    With ``upto = len(patch_nums) - 2`` it is the whole-chunk input (the last scale's bits are
    never read: no scale follows it)."""
    b, c, t = bits.shape[0], bits.shape[-1], patch_nums[-1]
    h = bit_values(bits).permute(0, 2, 1).contiguous()  # [B, C, L]
    total = h.new_zeros(b, c, t)
    out, start = [], 0
    for k in range(upto + 1):
        end = start + patch_nums[k]
        total.add_(F.interpolate(h[..., start:end], size=t, mode="linear"))
        out.append(F.interpolate(total, size=patch_nums[k + 1], mode="area"))
        start = end
    return torch.cat(out, dim=-1).permute(0, 2, 1).contiguous()


def decoder_inputs(bits: torch.Tensor, patch_nums: Sequence[int]) -> torch.Tensor:
    """The VAE decoder's input: the sum of all scales at full length. ``[B, L, C]`` -> ``[B, T, C]``
    float32; the coarse scales are linearly upsampled, the last (already T long) is added as is."""
    b, c, t = bits.shape[0], bits.shape[-1], patch_nums[-1]
    h = bit_values(bits)
    total = h.new_zeros(b, t, c)
    start = 0
    for n in patch_nums[:-1]:
        total.add_(_resample(h[:, start:start + n], t, "linear"))
        start += n
    total.add_(h[:, start:])
    return total

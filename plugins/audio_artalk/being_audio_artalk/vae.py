"""The motion VAE (``basic_vae.``): a transformer encoder to a C-wide code per frame, multi-scale
bit quantisation, and a transformer decoder back to 106 numbers per frame.

It always sees a window of two chunks, ``[previous chunk | current chunk]`` (2T frames), with
learned positional embeddings for the 2T positions and a mask by which previous frames cannot
attend to current ones. Quirks of the published code (artalk/modules/bitwise_vae.py) kept here:

* attention scale ``hidden ** -0.5`` (the full width, 512), not ``head_dim ** -0.5``;
* a pre-norm LayerNorm (with affine, eps 1e-5) before attention only: the MLP of each block
  has no norm, and there is no final norm;
* ``to_qkv`` has no bias; its output channels are laid out ``(q|k|v, head, dim)``;
* motion is normalised by the VAE's own ``motion_mean`` / ``motion_std`` buffers;
* encoding one chunk alone (the re-encoding of the previous prediction) uses the positional
  embeddings and mask of the *first* T positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import MOTION_DIM, VaeSizes
from .quantizer import decoder_inputs, quantize


class VaeAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = int(hidden) ** -0.5
        self.norm = nn.LayerNorm(hidden, eps=1e-5)
        self.to_qkv = nn.Linear(hidden, hidden * 3, bias=False)
        self.to_out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # [B, N, H], mask [1, 1, N, N]
        b, n, c = x.shape
        q, k, v = self.to_qkv(self.norm(x)).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=0.0, scale=self.scale)
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


def _mlp(hidden: int) -> nn.Sequential:
    inner = int(1.5 * hidden)
    return nn.Sequential(nn.Linear(hidden, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, hidden))


def _blocks(hidden: int, depth: int, heads: int) -> nn.ModuleList:
    """[attention, mlp] x depth, flat (state-dict indices 2i and 2i+1)."""
    return nn.ModuleList(m for _ in range(depth) for m in (VaeAttention(hidden, heads), _mlp(hidden)))


def _run(blocks: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = x + (block(x, mask) if isinstance(block, VaeAttention) else block(x))
    return x


class VaeEncoder(nn.Module):
    def __init__(self, s: VaeSizes) -> None:
        super().__init__()
        self.inp_mapping = nn.Sequential(nn.Linear(MOTION_DIM, s.hidden), nn.LeakyReLU(0.2))
        self.code_mapping = nn.Linear(s.hidden, s.code_dim)
        self.encoder_transformer = _blocks(s.hidden, s.depth, s.heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # [B, N, 106] -> [B, N, C]
        return self.code_mapping(_run(self.encoder_transformer, self.inp_mapping(x), mask))


class VaeDecoder(nn.Module):
    def __init__(self, s: VaeSizes) -> None:
        super().__init__()
        self.inp_mapping = nn.Sequential(nn.Linear(s.code_dim, s.hidden), nn.LeakyReLU(0.2))
        self.out_mapping = nn.Linear(s.hidden, MOTION_DIM)
        nn.init.xavier_uniform_(self.out_mapping.weight, gain=0.05)
        nn.init.zeros_(self.out_mapping.bias)
        self.decoder_transformer = _blocks(s.hidden, s.depth, s.heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # [B, N, C] -> [B, N, 106]
        return self.out_mapping(_run(self.decoder_transformer, self.inp_mapping(x), mask))


def window_mask(t: int) -> torch.Tensor:
    """``[1, 1, 2T, 2T]`` additive mask: the previous chunk (rows < T) cannot see the current one."""
    mask = torch.zeros(2 * t, 2 * t)
    mask[:t, t:] = -torch.inf
    return mask[None, None]


class MotionVae(nn.Module):
    def __init__(self, s: VaeSizes) -> None:
        super().__init__()
        self.patch_nums = tuple(s.patch_nums)
        t = s.patch_nums[-1]
        self.encoder = VaeEncoder(s)
        self.decoder = VaeDecoder(s)
        self.register_buffer("attn_mask", window_mask(t))
        self.enc_pos_embed = nn.Parameter(
            nn.init.trunc_normal_(torch.empty(1, 2 * t, MOTION_DIM), std=math.sqrt(1 / MOTION_DIM / 3)))
        self.dec_pos_embed = nn.Parameter(
            nn.init.trunc_normal_(torch.empty(1, 2 * t, s.code_dim), std=math.sqrt(1 / s.code_dim / 3)))
        # dataset statistics; the checkpoint carries the published values
        self.register_buffer("motion_mean", torch.zeros(MOTION_DIM))
        self.register_buffer("motion_std", torch.ones(MOTION_DIM))

    def encode(self, motion: torch.Tensor) -> torch.Tensor:
        """One chunk of motion ``[B, T, 106]`` (float32) -> bits ``[B, L, C]``, encoded alone in
        the window's first T positions (the published ``quant_to_vqidx(motion, None)``)."""
        t = motion.shape[1]
        x = (motion - self.motion_mean) / self.motion_std
        x = x.to(self.enc_pos_embed.dtype) + self.enc_pos_embed[:, :t]
        return quantize(self.encoder(x, self.attn_mask[:, :, :t, :t]).float(), self.patch_nums)

    def decode(self, prev_bits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """Bits of the previous and the current chunk ``[B, L, C]`` each -> the current chunk's
        motion ``[B, T, 106]`` float32 (the decoder sees both; the previous half is dropped)."""
        t = self.patch_nums[-1]
        x = torch.cat([decoder_inputs(prev_bits, self.patch_nums), decoder_inputs(bits, self.patch_nums)], dim=1)
        out = self.decoder(x.to(self.dec_pos_embed.dtype) + self.dec_pos_embed, self.attn_mask)
        motion = out.float() * self.motion_std + self.motion_mean
        return motion[:, t:]

"""The next-scale autoregressive transformer's parts: AdaLN blocks conditioned per token on
audio features, the AdaLN head, and the block-causal mask by scale.

Quirks of the published code (artalk/transformer.py, artalk/models.py) kept here:

* attention with L2-normalised queries and keys (``attn_l2_norm=True``): the query is scaled
  by ``exp(min(scale_mul_1H11, log 100))`` per head (initialised to log 4) and the softmax scale
  is 1, not ``head_dim ** -0.5``;
* ``key`` has no bias, ``query`` and ``value`` do; keys and values are computed over
  ``[previous-chunk tokens | current tokens]``, queries over the current tokens only;
* the LayerNorms have no affine parameters and eps 1e-6; the block's AdaLN projection gives six
  vectors per token, split in the order gamma1, gamma2, scale1, scale2, shift1, shift2, used as
  ``x + attn(LN(x) * (1 + scale1) + shift1) * gamma1`` then
  ``x + mlp(LN(x) * (1 + scale2) + shift2) * gamma2``; the head's gives scale, shift;
* the condition is the audio feature of each token's own position (not pooled), through SiLU
  then a Linear (``ada_lin.1``);
* the MLP is 4x wide with tanh-approximated GELU; DropPath is inactive at inference.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ScaleAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.max_scale_mul = math.log(100)
        self.query = nn.Linear(width, width, bias=True)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width, bias=True)
        self.proj = nn.Linear(width, width, bias=True)

    def forward(self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x ``[B, L, W]`` attends to ``[context | x]`` (context ``[B, P, W]``); bias ``[1, 1, L, P + L]``."""
        b, n, c = x.shape
        both = torch.cat([context, x], dim=1)
        heads = lambda t: t.view(b, t.shape[1], self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = heads(self.query(x)), heads(self.key(both)), heads(self.value(both))
        q = F.normalize(q, dim=-1).mul(self.scale_mul_1H11.clamp_max(self.max_scale_mul).exp())
        k = F.normalize(k, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=0.0, scale=1)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class AdaLNBlock(nn.Module):
    def __init__(self, width: int, cond_dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        inner = round(width * mlp_ratio)
        self.attn = ScaleAttention(width, heads)
        self.ffn = nn.Sequential(nn.Linear(width, inner), nn.GELU(approximate="tanh"), nn.Linear(inner, width))
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * width))
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)

    def forward(self, x: torch.Tensor, context: torch.Tensor, cond: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x ``[B, L, W]``, context ``[B, P, W]``, cond ``[B, L, D]`` -> ``[B, L, W]``."""
        b, n = x.shape[0], cond.shape[1]
        gamma1, gamma2, scale1, scale2, shift1, shift2 = self.ada_lin(cond).view(b, n, 6, -1).unbind(2)
        x = x + self.attn(self.norm(x).mul(scale1.add(1)).add_(shift1), context, bias).mul_(gamma1)
        return x + self.ffn(self.norm(x).mul(scale2.add(1)).add_(shift2)).mul(gamma2)


class AdaLNHead(nn.Module):
    """The AdaLN before the logits (``cond_logits_head.``)."""

    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], cond.shape[1]
        scale, shift = self.ada_lin(cond).view(b, n, 2, -1).unbind(2)
        return self.norm(x).mul(scale.add(1)).add_(shift)


def scale_mask(patch_nums: Sequence[int], prev_ratio: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention bias ``[1, 1, L, L * (prev_ratio + 1)]``, scale index of each token ``[1, L]`` int64).

    The first ``L * prev_ratio`` columns (previous chunks' tokens) are visible to every token;
    among the current tokens, one of scale i sees the scales <= i."""
    level = torch.cat([torch.full((n,), i) for i, n in enumerate(patch_nums)])
    causal = torch.where(level[:, None] >= level[None, :], 0.0, -torch.inf)
    bias = torch.cat([torch.zeros(len(level), len(level) * prev_ratio), causal], dim=-1)
    return bias[None, None].contiguous(), level[None].contiguous()

"""The style encoder (``style_encoder.``) and the published style clips.

A style clip is ``[50, 106]`` tracked motion (2 s at 25 fps, same layout as the output). The
encoder normalises it with its own ``motion_mean`` / ``motion_std`` buffers, projects to 128,
adds a sinusoidal position code, runs a 4-layer post-norm ``nn.TransformerEncoder`` (4 heads,
FFN 512, exact GELU, eps 1e-5) and averages over time.

Quirk (artalk/modules/style_encoder.py): the "positional encoding" adds the single table row at
index ``clip length`` (row 50) to every frame, not row t to frame t. The table is a buffer
(``PE.pe``, 600 rows) stored in the checkpoint.

The published clips (``style_motion/*.pt``, e.g. natural_0, happy_1) are tensors saved with
``torch.save`` as views into longer recordings, so each file holds the whole recording's
storage; loading gives the 50-frame view.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from being_kernel import InputError
from being_kernel.api import safe_torch_load

from .config import MOTION_DIM, StyleSizes


class SinusoidTable(nn.Module):
    def __init__(self, width: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        rate = torch.exp(torch.arange(0, width, 2).float() * (-math.log(10000.0) / width))
        table = torch.zeros(max_len, width)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)
        self.register_buffer("pe", table[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F, W]
        return x + self.pe[:, x.shape[1]].to(x.dtype)  # one row for all frames: the published quirk


class StyleEncoder(nn.Module):
    def __init__(self, s: StyleSizes) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=s.width, nhead=s.heads, dim_feedforward=s.ffn,
                                           activation="gelu", batch_first=True)
        self.PE = SinusoidTable(s.width, s.max_len)
        self.encoder = nn.ModuleDict({
            "motion_proj": nn.Linear(MOTION_DIM, s.width),
            "transformer": nn.TransformerEncoder(layer, num_layers=s.layers),
        })
        # dataset statistics; the checkpoint carries the published values
        self.register_buffer("motion_mean", torch.zeros(MOTION_DIM))
        self.register_buffer("motion_std", torch.ones(MOTION_DIM))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """``[B, F, 106]`` float32 -> style ``[B, width]``."""
        proj = self.encoder["motion_proj"]
        x = ((clip - self.motion_mean) / self.motion_std).to(proj.weight.dtype)
        return self.encoder["transformer"](self.PE(proj(x))).mean(dim=1)


def load_style_clip(path: Path, frames: int) -> torch.Tensor:
    """A style clip file -> ``[frames, 106]`` float32 (CPU). Safe loading only (``safe_torch_load``)."""
    clip = safe_torch_load(path, what="style clip", hint="a style clip is a tensor saved with torch.save")
    if not isinstance(clip, torch.Tensor) or tuple(clip.shape) != (frames, MOTION_DIM):
        got = tuple(clip.shape) if isinstance(clip, torch.Tensor) else type(clip).__name__
        raise InputError(f"style clip {path}: expected a tensor of shape ({frames}, {MOTION_DIM}), got {got}",
                         hint="a style clip is 2 s of tracked motion: 100 expression, 3 head, 3 jaw numbers a frame")
    return clip.detach().to(torch.float32).contiguous()

"""The whole ARTalk model. Submodule and parameter names are those of the published state dict
(``basic_vae.``, ``audio_encoder.``, ``style_encoder.``, ``attn_blocks.N.``, ...), so
``ARTalk_wav2vec.pt`` loads with ``strict=True``.

Generation runs one chunk at a time (T = 100 frames, 4 s of audio for the published schedule):

1. the chunk's audio -> wav2vec features (~50 Hz) -> area-resampled to every scale's length and
   concatenated: one condition vector per token, ``[1, L, 1024]`` (L = 181);
2. next-scale prediction: the token sequence starts with the style token alone; at scale k the
   whole sequence so far (style token, then the inputs of scales 1..k) runs through all blocks
   with the previous chunk's tokens as extra keys/values, and the logits of every position give
   greedy bits (argmax over two classes per bit). No KV cache: every step recomputes all
   positions and the bits of the last step are used for every scale, as published;
3. the VAE decodes ``[previous bits | current bits]`` and keeps the current chunk's motion;
4. that motion is re-encoded alone, and the context for the next chunk becomes
   ``[style token, embedded next-scale inputs of those bits]`` (the first chunk's context is the
   encoding of all-zero motion).

The style token is ``style_cond_embed(style_encoder(clip)) * 1.1 - null_style_cond * 0.1`` for a
clip (a push away from the neutral style), and ``null_style_cond`` itself without one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from being_kernel.audio import Wav2Vec2

from .config import MOTION_DIM, PUBLISHED, ArtalkSizes
from .quantizer import next_scale_inputs
from .style import StyleEncoder
from .transformer import AdaLNBlock, AdaLNHead, scale_mask
from .vae import MotionVae


@dataclass(frozen=True)
class ChunkState:
    """What crosses a chunk boundary: the previous chunk's re-encoded bits ``[1, L, C]`` and the
    context tokens ``[1, L * prev_ratio, W]`` the next chunk attends to."""

    prev_bits: torch.Tensor
    context: torch.Tensor


def _trunc_normal(*shape: int, width: int) -> nn.Parameter:
    return nn.Parameter(nn.init.trunc_normal_(torch.empty(*shape), std=math.sqrt(1 / width / 3)))


class ArtalkModel(nn.Module):
    def __init__(self, sizes: ArtalkSizes = PUBLISHED) -> None:
        super().__init__()
        self.sizes = sizes
        ar, vae, w = sizes.ar, sizes.vae, sizes.ar.width
        audio_dim = sizes.wav2vec.hidden
        self.basic_vae = MotionVae(vae)
        self.vqfeat_embed = nn.Linear(vae.code_dim, w)
        self.style_encoder = StyleEncoder(sizes.style)
        self.style_cond_embed = nn.Linear(sizes.style.width, w)
        self.audio_encoder = Wav2Vec2(sizes.wav2vec)
        self.attn_blocks = nn.ModuleList(AdaLNBlock(w, audio_dim, ar.heads, ar.mlp_ratio) for _ in range(ar.depth))
        self.cond_logits_head = AdaLNHead(w, audio_dim)
        self.logits_head = nn.Linear(w, vae.code_dim * 2)
        self.null_style_cond = nn.Parameter(torch.randn(1, 1, w) * 0.5)
        self.pos_embed = _trunc_normal(1, sizes.tokens, w, width=w)
        self.prev_pos_embed = _trunc_normal(1, sizes.tokens * ar.prev_ratio, w, width=w)
        self.lvl_embed = nn.Embedding(len(vae.patch_nums), w)
        nn.init.trunc_normal_(self.lvl_embed.weight, std=math.sqrt(1 / w / 3))
        bias, level = scale_mask(vae.patch_nums, ar.prev_ratio)
        self.register_buffer("attn_bias_for_masking", bias)
        self.register_buffer("lvl_idx", level)

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.pos_embed.dtype

    def style_token(self, clip: torch.Tensor | None) -> torch.Tensor:
        """Style clip ``[F, 106]`` (or None: the learned neutral style) -> style token ``[1, 1, W]``."""
        if clip is None:
            return self.null_style_cond
        style = self.style_encoder(clip[None].float())
        return self.style_cond_embed(style)[:, None] * 1.1 - self.null_style_cond * 0.1

    def _context_tokens(self, style: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """One chunk's tokens as context: ``[1, L, W]``."""
        pn = self.sizes.vae.patch_nums
        inputs = next_scale_inputs(bits, pn, len(pn) - 2).to(self.compute_dtype)
        return torch.cat([style, self.vqfeat_embed(inputs)], dim=1)

    def initial_state(self, style: torch.Tensor) -> ChunkState:
        """The state before the first chunk: the encoding of all-zero motion."""
        zero = torch.zeros(1, self.sizes.chunk_frames, MOTION_DIM, device=style.device)
        bits = self.basic_vae.encode(zero)
        return ChunkState(bits, self._context_tokens(style, bits).repeat(1, self.sizes.ar.prev_ratio, 1))

    def audio_condition(self, audio: torch.Tensor) -> torch.Tensor:
        """One chunk of audio ``[1, S]`` -> per-token conditions ``[1, L, D]``."""
        # ARTalk's wav2vec forward (artalk/modules/wav2vec.py): the chunk normalised by its own mean
        # and unbiased std, (x - mean) / (std + 1e-6), in float32; no masking, no attention mask
        audio = audio.float()
        audio = (audio - audio.mean(dim=-1, keepdim=True)) / (audio.std(dim=-1, keepdim=True) + 1e-6)
        feat = self.audio_encoder.encode(audio).permute(0, 2, 1)  # [1, D, F]
        return torch.cat([F.interpolate(feat, size=n, mode="area").permute(0, 2, 1)
                          for n in self.sizes.vae.patch_nums], dim=1)

    def predict_bits(self, cond: torch.Tensor, style: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Next-scale greedy decoding of one chunk -> bits ``[1, L, C]`` (int64)."""
        pn = self.sizes.vae.patch_nums
        total = self.sizes.tokens * self.sizes.ar.prev_ratio
        level = self.lvl_embed(self.lvl_idx)
        pos = level + self.pos_embed
        context = context + (level.repeat(1, self.sizes.ar.prev_ratio, 1) + self.prev_pos_embed)
        tokens = style
        for k in range(len(pn)):
            n = sum(pn[:k + 1])
            c, bias = cond[:, :n], self.attn_bias_for_masking[:, :, :n, :n + total]
            x = tokens + pos[:, :n]
            for block in self.attn_blocks:
                x = block(x, context, c, bias)
            logits = self.logits_head(self.cond_logits_head(x, c))
            bits = logits.view(logits.shape[0], n, -1, 2).argmax(dim=-1)
            if k < len(pn) - 1:
                inputs = next_scale_inputs(bits, pn, k).to(self.compute_dtype)
                tokens = torch.cat([style, self.vqfeat_embed(inputs)], dim=1)
        return bits

    def step(self, audio: torch.Tensor, style: torch.Tensor, state: ChunkState) -> tuple[torch.Tensor, ChunkState]:
        """One chunk: audio ``[1, S]`` float32 (S = ``sizes.chunk_samples``) -> motion ``[1, T, 106]``
        float32, and the state for the next chunk."""
        bits = self.predict_bits(self.audio_condition(audio), style, state.context)
        motion = self.basic_vae.decode(state.prev_bits, bits)
        new_bits = self.basic_vae.encode(motion)
        tokens = self._context_tokens(style, new_bits)
        context = torch.cat([state.context[:, tokens.shape[1]:], tokens], dim=1)
        return motion, ChunkState(new_bits, context)

    def cast_parameters(self, dtype: torch.dtype) -> ArtalkModel:
        """Parameters to ``dtype``; buffers (statistics, masks, tables) stay as they are, and the
        quantiser and the motion (un)normalisation keep running in float32."""
        for p in self.parameters():
            p.data = p.data.to(dtype)
        return self

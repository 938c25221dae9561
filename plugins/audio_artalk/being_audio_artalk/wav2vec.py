"""The wav2vec 2.0 audio encoder (the facebook/wav2vec2-xls-r-300m architecture), written here so
the plugin needs no ``transformers`` at run time. Module and parameter names follow the layout
that ``transformers.Wav2Vec2Model`` gives its state dict, which is what the published checkpoint
stores under ``audio_encoder.``.

ARTalk's wrapper (artalk/modules/wav2vec.py) changes the model's forward: each chunk is first
normalised by its own mean and (unbiased) standard deviation, ``(x - mean) / (std + 1e-6)``; no
time masking, no attention mask; the output is the last hidden state (after the encoder's final
layer norm). ``masked_spec_embed`` exists only because the xls-r config enables SpecAugment
masking: it is in the checkpoint and never used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import Wav2VecSizes


class ConvLayer(nn.Module):
    """Conv1d -> LayerNorm over channels -> GELU (xls-r: ``feat_extract_norm="layer"``, conv bias)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=True)
        self.layer_norm = nn.LayerNorm(c_out)  # default eps 1e-5, not the config's layer_norm_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, N] -> [B, C_out, N']
        x = self.conv(x)
        x = self.layer_norm(x.transpose(-2, -1)).transpose(-2, -1)
        return F.gelu(x)


class FeatureEncoder(nn.Module):
    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        dims = (1, *s.conv_dim)
        self.conv_layers = nn.ModuleList(
            ConvLayer(dims[i], dims[i + 1], s.conv_kernel[i], s.conv_stride[i]) for i in range(len(s.conv_dim)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:  # [B, N] -> [B, C, F]
        x = audio[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class FeatureProjection(nn.Module):
    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(s.conv_dim[-1], eps=s.eps)
        self.projection = nn.Linear(s.conv_dim[-1], s.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F, C] -> [B, F, H]
        return self.projection(self.layer_norm(x))


class PositionalConv(nn.Module):
    """Grouped convolution over time with weight normalisation over the kernel axis (dim 2).

    The weight is a ``torch.nn.utils.parametrizations.weight_norm`` parametrisation, so the state
    dict names ``conv.parametrizations.weight.original0`` (g, [1, 1, K]) and ``original1``
    (v, [H, H / groups, K]); older checkpoints call them ``conv.weight_g`` / ``conv.weight_v``
    (weights.py maps those)."""

    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        conv = nn.Conv1d(s.hidden, s.hidden, s.pos_kernel, padding=s.pos_kernel // 2, groups=s.pos_groups)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if s.pos_kernel % 2 == 0 else 0  # an even kernel with padding K/2 gives one frame too many

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F, H] -> [B, F, H]
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[:, :, :-self.trim]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, hidden)
        self.q_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F, H]
        b, f, h = x.shape
        split = lambda t: t.view(b, f, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, f, h))


class FeedForward(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(hidden, intermediate)
        self.output_dense = nn.Linear(intermediate, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(F.gelu(self.intermediate_dense(x)))


class EncoderLayer(nn.Module):
    """Pre-norm layer: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.attention = SelfAttention(s.hidden, s.heads)
        self.layer_norm = nn.LayerNorm(s.hidden, eps=s.eps)
        self.feed_forward = FeedForward(s.hidden, s.intermediate)
        self.final_layer_norm = nn.LayerNorm(s.hidden, eps=s.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layer_norm(x))
        return x + self.feed_forward(self.final_layer_norm(x))


class Encoder(nn.Module):
    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.pos_conv_embed = PositionalConv(s)
        self.layer_norm = nn.LayerNorm(s.hidden, eps=s.eps)
        self.layers = nn.ModuleList(EncoderLayer(s) for _ in range(s.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F, H]
        x = x + self.pos_conv_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)  # the final norm comes after the layers (stable layer norm)


class Wav2Vec2(nn.Module):
    """16 kHz audio -> ~50 Hz features: ``[B, N]`` -> ``[B, F, hidden]``; with the xls-r strides
    (5, 2, 2, 2, 2, 2, 2) a 4 s chunk of 64000 samples gives F = 199."""

    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.masked_spec_embed = nn.Parameter(torch.rand(s.hidden))  # unused; in the checkpoint
        self.feature_extractor = FeatureEncoder(s)
        self.feature_projection = FeatureProjection(s)
        self.encoder = Encoder(s)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """The plain wav2vec 2.0 forward (``last_hidden_state``) of already normalised audio."""
        x = self.feature_extractor(audio.to(self.feature_projection.projection.weight.dtype))
        return self.encoder(self.feature_projection(x.transpose(1, 2)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """ARTalk's forward: per-chunk normalisation (in float32), then ``encode``."""
        audio = audio.float()
        mean, std = audio.mean(dim=-1, keepdim=True), audio.std(dim=-1, keepdim=True)
        return self.encode((audio - mean) / (std + 1e-6))

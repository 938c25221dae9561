"""wav2vec 2.0 (Baevski et al., 2020): 16 kHz audio -> ~50 Hz features.

Module and parameter names follow the state dict of ``transformers.Wav2Vec2Model``, which is
where the published checkpoints of the audio models built on it (ARTalk: xls-r-300m under
``audio_encoder.``; EMOTE: base-960h) store its weights, so they load with ``strict=True``.

Two variants of the architecture exist among the released models, chosen by
:class:`Wav2VecSizes`:

* ``feat_norm="layer"``, ``stable_layer_norm=True`` (facebook/wav2vec2-xls-r-300m, large-lv60):
  every convolution has a bias and a LayerNorm over channels; transformer layers are pre-norm
  and the encoder's LayerNorm comes after the last layer.
* ``feat_norm="group"``, ``stable_layer_norm=False`` (facebook/wav2vec2-base, base-960h): no conv
  bias, a GroupNorm with one group per channel after the first convolution only; transformer
  layers are post-norm and the encoder's LayerNorm comes before the first layer.

Both have ``masked_spec_embed`` (SpecAugment masking is on in their configs): stored, never used
at inference. The forward here is the plain inference one: no masking, no attention mask (the
base models were trained without one), dropout off. What a model does to the audio before
(normalisation) or to the features between stages (resampling) is the plugin's business: the
stages are exposed separately (``features``, ``project``, ``transform``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Wav2VecSizes:
    """The configuration of one wav2vec 2.0 model (``transformers.Wav2Vec2Config`` names in
    comments). The defaults are facebook/wav2vec2-xls-r-300m; :data:`BASE_960H` is
    facebook/wav2vec2-base-960h."""

    hidden: int = 1024  # hidden_size
    layers: int = 24  # num_hidden_layers
    heads: int = 16  # num_attention_heads
    intermediate: int = 4096  # intermediate_size
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    pos_kernel: int = 128  # num_conv_pos_embeddings
    pos_groups: int = 16  # num_conv_pos_embedding_groups
    eps: float = 1e-5  # layer_norm_eps
    feat_norm: Literal["layer", "group"] = "layer"  # feat_extract_norm
    conv_bias: bool = True
    stable_layer_norm: bool = True  # do_stable_layer_norm: pre-norm transformer layers

    def __post_init__(self) -> None:
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ValueError("wav2vec conv_dim, conv_kernel and conv_stride must have one entry per layer")
        if self.hidden % self.heads:
            raise ValueError("wav2vec hidden size is not divisible by its head count")
        if self.feat_norm not in ("layer", "group"):
            raise ValueError(f"wav2vec feat_norm must be 'layer' or 'group', got {self.feat_norm!r}")

    def frames(self, samples: int) -> int:
        """Feature frames for ``samples`` input samples (each convolution unpadded)."""
        n = samples
        for k, s in zip(self.conv_kernel, self.conv_stride):
            n = (n - k) // s + 1
        return max(n, 0)


XLSR_300M = Wav2VecSizes()
BASE_960H = Wav2VecSizes(hidden=768, layers=12, heads=12, intermediate=3072, feat_norm="group", conv_bias=False,
                         stable_layer_norm=False)


class ConvLayer(nn.Module):
    """Conv1d -> optional norm -> GELU. ``norm``: "layer" (LayerNorm over channels, PyTorch's
    default eps 1e-5 whatever the config says), "group" (GroupNorm, one group per channel) or None."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, bias: bool,
                 norm: Literal["layer", "group"] | None) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias)
        self.norm = norm
        if norm == "layer":
            self.layer_norm = nn.LayerNorm(c_out)
        elif norm == "group":
            self.layer_norm = nn.GroupNorm(c_out, c_out, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, N] -> [B, C_out, N']
        x = self.conv(x)
        if self.norm == "layer":
            x = self.layer_norm(x.transpose(-2, -1)).transpose(-2, -1)
        elif self.norm == "group":
            x = self.layer_norm(x)
        return F.gelu(x)


class FeatureEncoder(nn.Module):
    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        dims = (1, *s.conv_dim)

        def norm(i: int) -> Literal["layer", "group"] | None:
            return "layer" if s.feat_norm == "layer" else ("group" if i == 0 else None)

        self.conv_layers = nn.ModuleList(
            ConvLayer(dims[i], dims[i + 1], s.conv_kernel[i], s.conv_stride[i], s.conv_bias, norm(i))
            for i in range(len(s.conv_dim)))

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
    (:func:`canonical_weight_norm` maps those)."""

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
    """Pre-norm (stable): x + attn(LN(x)), then x + ffn(LN(x)). Post-norm: LN(x + attn(x)), then
    LN(x + ffn(x))."""

    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.pre_norm = s.stable_layer_norm
        self.attention = SelfAttention(s.hidden, s.heads)
        self.layer_norm = nn.LayerNorm(s.hidden, eps=s.eps)
        self.feed_forward = FeedForward(s.hidden, s.intermediate)
        self.final_layer_norm = nn.LayerNorm(s.hidden, eps=s.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(x + self.feed_forward(x))


class Encoder(nn.Module):
    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.pre_norm = s.stable_layer_norm
        self.pos_conv_embed = PositionalConv(s)
        self.layer_norm = nn.LayerNorm(s.hidden, eps=s.eps)
        self.layers = nn.ModuleList(EncoderLayer(s) for _ in range(s.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F, H]
        x = x + self.pos_conv_embed(x)
        if not self.pre_norm:
            x = self.layer_norm(x)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x) if self.pre_norm else x


class Wav2Vec2(nn.Module):
    """``transformers.Wav2Vec2Model`` at inference: ``[B, N]`` 16 kHz samples -> ``[B, F, hidden]``,
    F = ``sizes.frames(N)`` (49 for one second with the published strides)."""

    def __init__(self, s: Wav2VecSizes) -> None:
        super().__init__()
        self.sizes = s
        self.masked_spec_embed = nn.Parameter(torch.rand(s.hidden))  # unused; in the checkpoints
        self.feature_extractor = FeatureEncoder(s)
        self.feature_projection = FeatureProjection(s)
        self.encoder = Encoder(s)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """The convolutional features: ``[B, N]`` -> ``[B, F, C]`` (C = conv_dim[-1])."""
        dtype = self.feature_projection.projection.weight.dtype
        return self.feature_extractor(audio.to(dtype)).transpose(1, 2)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, F, C]`` -> ``[B, F, hidden]``: LayerNorm and projection into the transformer width."""
        return self.feature_projection(features)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The transformer encoder: ``[B, F, hidden]`` -> ``last_hidden_state`` ``[B, F, hidden]``."""
        return self.encoder(x)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """The plain forward (``last_hidden_state``) of already normalised audio ``[B, N]``."""
        return self.transform(self.project(self.features(audio)))


# Names of the positional convolution's weight-norm tensors: older transformers/torch save the
# weight_norm hook's names, newer ones the parametrisation's. Both are accepted; this one is kept.
_WEIGHT_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def canonical_weight_norm(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``state`` with the positional convolution's ``weight_g`` / ``weight_v`` of the wav2vec model
    stored under ``prefix`` (e.g. "audio_encoder.") renamed to the parametrisation's names."""
    conv = prefix + "encoder.pos_conv_embed.conv."
    out = {}
    for key, value in state.items():
        if key.startswith(conv) and key[len(conv):] in _WEIGHT_NORM:
            key = conv + _WEIGHT_NORM[key[len(conv):]]
        out[key] = value
    return out


def tiny_sizes(base: Wav2VecSizes = XLSR_300M) -> Wav2VecSizes:
    """``base``'s architecture at a size that runs in milliseconds on a CPU, for tests."""
    return replace(base, hidden=32, layers=2, heads=2, intermediate=64, conv_dim=(8,) * 7, pos_kernel=16,
                   pos_groups=4)

"""EMOTE (Daněček et al., SIGGRAPH Asia 2023), written here: speech + emotion, intensity and
speaking style -> FLAME expression and jaw, decoded through the FLINT motion prior.

Module and parameter names follow the state dict of the released Lightning checkpoints
(inferno's ``FaceFormer`` with a ``BertPriorDecoder``), so their network tensors load strictly:

* ``audio_model.model.``: wav2vec 2.0 (the facebook/wav2vec2-base-960h architecture; its
  transformer was fine-tuned in EMOTE's first stage, so the weights come from the checkpoint);
* ``sequence_encoder.linear``: 768 -> 128 per frame;
* ``sequence_decoder.obj_vector.map``: the style, one linear map of [emotion one-hot (8) |
  intensity one-hot (3) | identity one-hot (MEAD subjects)], concatenated to every frame's
  feature (``style_op: cat``);
* ``sequence_decoder.bert_decoder``: a post-norm transformer encoder over the whole window with
  FaceFormer's symmetric temporal bias (``faceformer_future``: head h adds -slope_h floor(|i - j| /
  period)); ``sequence_decoder.decoder``: into FLINT's latent width;
* ``sequence_decoder.squasher_2``: 8 frames stacked into one latent frame (``stack_linear``);
* ``sequence_decoder.motion_prior.motion_decoder``: FLINT's decoder (frozen while EMOTE trained):
  a transposed convolution and convolutions that upsample the latent back to 25 fps, a
  transformer with an ALiBi bias on both sides, and a smoothing convolution to expression + jaw.

The checkpoints also carry the FLAME model's buffers (``sequence_decoder.flame.*`` and the
renderer's); they are not part of the network and are not read (see ``emote_weights``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from being_kernel.audio import Wav2Vec2

from .emote_config import EmoteSizes, PriorSizes


def alibi_slopes(heads: int) -> list[float]:
    """ALiBi's per-head slopes (Press et al.): a geometric sequence from 2^(-8 / n) for n a power
    of two, else the closest power's slopes followed by every other one of the next power's."""
    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start ** (i + 1) for i in range(n)]

    if math.log2(heads).is_integer():
        return power_of_two(heads)
    closest = 2 ** math.floor(math.log2(heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][:heads - closest]


def temporal_bias(kind: str, heads: int, length: int, period: int = 1) -> torch.Tensor | None:
    """The additive attention bias ``[heads, length, length]`` that looks both ways:
    ``-slope_h * floor(|i - j| / period)`` ("faceformer_future"; "alibi_future" is period 1), or None."""
    if kind == "none":
        return None
    if kind == "alibi_future":
        period = 1
    elif kind != "faceformer_future":
        raise ValueError(f"unknown temporal bias {kind!r}")
    i = torch.arange(length)
    distance = torch.div((i[:, None] - i[None, :]).abs(), period, rounding_mode="floor").float()
    return -torch.tensor(alibi_slopes(heads))[:, None, None] * distance


def _encoder(width: int, heads: int, feedforward: int, layers: int) -> nn.TransformerEncoder:
    """PyTorch's post-norm transformer encoder, GELU, batch first: the layout both decoders use."""
    layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=feedforward, dropout=0.0, activation="gelu",
                                       batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


def _attend(encoder: nn.TransformerEncoder, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x`` [B, T, D] through ``encoder`` with ``bias`` [heads, >= T, >= T] cut to T (repeated per batch item)."""
    t = x.shape[1]
    mask = None if bias is None else bias[:, :t, :t].to(x).repeat(x.shape[0], 1, 1)
    return encoder(x, mask=mask)


class AudioModel(nn.Module):
    def __init__(self, sizes: EmoteSizes) -> None:
        super().__init__()
        self.model = Wav2Vec2(sizes.wav2vec)

    def forward(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        """Normalised audio ``[B, N]`` -> ``[B, frames, 768]``: the convolutional features (50 Hz) are
        resampled to the motion's frame count by linear interpolation with aligned corners before
        the projection and the transformer (inferno's ``Wav2Vec2ModelResampled``)."""
        feats = self.model.features(audio).transpose(1, 2)  # [B, C, F]
        feats = F.interpolate(feats, size=frames, mode="linear", align_corners=True).transpose(1, 2)
        return self.model.transform(self.model.project(feats))


class SequenceEncoder(nn.Module):
    def __init__(self, sizes: EmoteSizes) -> None:
        super().__init__()
        self.linear = nn.Linear(sizes.wav2vec.hidden, sizes.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class StyleCondition(nn.Module):
    def __init__(self, sizes: EmoteSizes) -> None:
        super().__init__()
        self.map = nn.Linear(sizes.condition_dim, sizes.feature_dim, bias=sizes.style_bias)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.map(condition)


class StackLinearSquash(nn.Module):
    """``latent_frames`` consecutive frames concatenated and mapped to one latent frame."""

    def __init__(self, width: int, latent_frames: int) -> None:
        super().__init__()
        self.latent_frames = latent_frames
        self.linear = nn.Linear(width * latent_frames, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T / k, D]
        b, t, d = x.shape
        return self.linear(x.reshape(b, t // self.latent_frames, d * self.latent_frames))


class PriorDecoder(nn.Module):
    """FLINT's decoder: latent ``[B, T / 2^q, D]`` -> motion ``[B, T, exp + jaw]``."""

    def __init__(self, p: PriorSizes) -> None:
        super().__init__()
        d = p.feature_dim
        first = nn.Sequential(nn.ConvTranspose1d(d, d, 5, stride=2, padding=2, output_padding=1),
                              nn.LeakyReLU(0.2), nn.BatchNorm1d(d))
        rest = [nn.Sequential(nn.Conv1d(d, d, 5, padding=2, padding_mode="replicate"), nn.LeakyReLU(0.2),
                              nn.BatchNorm1d(d)) for _ in range(1, p.quant_factor)]
        self.expander = nn.ModuleList([first, *rest])
        self.decoder_transformer = _encoder(d, p.heads, p.intermediate, p.layers)
        self.decoder_linear_embedding = nn.Linear(d, d)
        self.cross_smooth_layer = nn.Conv1d(d, p.out_dim, 5, padding=2) if p.conv_smooth else None
        self.post_transformer_linear = (nn.Linear(d, d if p.conv_smooth else p.out_dim) if p.post_transformer_proj
                                        else None)
        self.post_conv_proj = nn.Linear(p.out_dim, p.out_dim) if p.post_conv_proj else None
        self.bias_kind, self.heads = p.temporal_bias, p.heads

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = latent
        for i, module in enumerate(self.expander):
            x = module(x.transpose(1, 2)).transpose(1, 2)
            if i > 0:
                x = x.repeat_interleave(2, dim=1)
        x = self.decoder_linear_embedding(x)
        x = _attend(self.decoder_transformer, x, temporal_bias(self.bias_kind, self.heads, x.shape[1]))
        if self.post_transformer_linear is not None:
            x = self.post_transformer_linear(x)
        if self.cross_smooth_layer is not None:
            x = self.cross_smooth_layer(x.transpose(1, 2)).transpose(1, 2)
        if self.post_conv_proj is not None:
            x = self.post_conv_proj(x)
        return x


class MotionPrior(nn.Module):
    def __init__(self, p: PriorSizes) -> None:
        super().__init__()
        self.motion_decoder = PriorDecoder(p)


class SequenceDecoder(nn.Module):
    def __init__(self, sizes: EmoteSizes) -> None:
        super().__init__()
        w = sizes.model_dim
        self.sizes = sizes
        self.obj_vector = StyleCondition(sizes)
        self.bert_decoder = _encoder(w, sizes.heads, w, sizes.layers)  # feed-forward as wide as the model, as released
        self.decoder = nn.Linear(w, sizes.prior.feature_dim)
        self.squasher_2 = StackLinearSquash(sizes.prior.feature_dim, sizes.prior.latent_frames)
        self.motion_prior = MotionPrior(sizes.prior)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``features`` [B, T, 128], ``condition`` [B, T, 8 + 3 + identities] -> [B, T, exp + jaw]."""
        s = self.sizes
        style = self.obj_vector(condition)
        x = torch.cat([features, style], dim=-1) if s.style_op == "cat" else features + style
        x = _attend(self.bert_decoder, x, temporal_bias("faceformer_future", s.heads, x.shape[1], s.period))
        x = self.decoder(x)
        t = x.shape[1]
        k = s.prior.latent_frames
        x = F.pad(x, (0, 0, 0, -t % k))  # zero frames up to whole latent frames, cut off again below
        return self.motion_prior.motion_decoder(self.squasher_2(x))[:, :t]


class EmoteModel(nn.Module):
    """The network of a released EMOTE checkpoint, for inference."""

    def __init__(self, sizes: EmoteSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.audio_model = AudioModel(sizes)
        self.sequence_encoder = SequenceEncoder(sizes)
        self.sequence_decoder = SequenceDecoder(sizes)

    def condition(self, emotion: int, intensity: int, identity: int, frames: int,
                  device: torch.device | None = None) -> torch.Tensor:
        """The style input ``[1, frames, 8 + 3 + identities]``: three one-hots, the same every frame."""
        s = self.sizes
        parts = [F.one_hot(torch.tensor(i), n).float() for i, n in
                 ((emotion, s.n_emotions), (intensity, s.n_intensities), (identity, s.n_identities))]
        return torch.cat(parts).to(device).expand(1, frames, -1)

    def forward(self, audio: torch.Tensor, frames: int, condition: torch.Tensor) -> torch.Tensor:
        """One window: processor-normalised audio ``[1, N]`` and its motion frame count -> ``[1, frames,
        exp + jaw]`` (jaw as the prior's rotation representation)."""
        features = self.sequence_encoder(self.audio_model(audio, frames))
        return self.sequence_decoder(features, condition.expand(features.shape[0], frames, -1))

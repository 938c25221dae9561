"""SadTalker's PoseVAE (Zhang et al., CVPR 2023; src/audio2pose_models/): a conditional VAE from
speech to head motion, written here so the published audio2pose weights strict-load.

Module names and order follow the published state dict (419 tensors): ``audio_encoder`` (the
Wav2Lip audio encoder), ``netG`` (the CVAE: ``encoder``, used in training only, and ``decoder``)
and ``netD_motion`` (the training discriminator). Only ``audio_encoder`` and ``netG.decoder`` run
at inference; the rest is built so the published files load strictly and nothing in them goes
unread by accident.

Inference (``Audio2Pose.test``): per 32-frame chunk, 16-frame mel windows -> audio encoder
``[32, 512]`` -> ``linear_audio`` ``[32, 6]``; a latent ``z ~ N(0, I)`` ``[64]`` plus the pose
style's learned bias ``classbias[style]``; ``[ref pose (6) | z (64) | audio (192)]`` -> MLP
(262 -> 128 -> 192, sigmoid) -> a 32 x 6 image -> ResUnet -> ``pose_linear`` -> per-frame pose
change ``[32, 6]`` added to the reference pose (3 angles in radians, 3 translations).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

N_STYLES = 46  # DATASET.NUM_CLASSES
LATENT = 64  # MODEL.CVAE.LATENT_SIZE
SEQ_LEN = 32  # MODEL.CVAE.SEQ_LEN: frames per chunk
AUDIO_IN, AUDIO_OUT = 512, 6  # MODEL.CVAE.AUDIO_EMB_IN_SIZE / OUT_SIZE
POSE = 6  # 3 angles + 3 translations


@dataclass(frozen=True)
class PoseVaeSizes:
    """The published values of src/config/auido2pose.yaml; tests use the same."""

    styles: int = N_STYLES
    latent: int = LATENT
    seq_len: int = SEQ_LEN
    encoder_hidden: int = 128  # ENCODER_LAYER_SIZES [192, 128]: the first is widened in place (see Encoder)
    decoder_hidden: tuple[int, int] = (128, 192)  # DECODER_LAYER_SIZES


class ConvBlock(nn.Module):
    """Wav2Lip's Conv2d: conv (with bias) -> BatchNorm -> (+ input) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int | tuple[int, int], padding: int,
                 residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.BatchNorm2d(c_out))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return torch.relu(out + x if self.residual else out)


# (c_in, c_out, kernel, stride, padding, residual): 1 x 80 x 16 -> 512 x 1 x 1
_AUDIO_LAYERS = (
    (1, 32, 3, 1, 1, False), (32, 32, 3, 1, 1, True), (32, 32, 3, 1, 1, True),
    (32, 64, 3, (3, 1), 1, False), (64, 64, 3, 1, 1, True), (64, 64, 3, 1, 1, True),
    (64, 128, 3, 3, 1, False), (128, 128, 3, 1, 1, True), (128, 128, 3, 1, 1, True),
    (128, 256, 3, (3, 2), 1, False), (256, 256, 3, 1, 1, True),
    (256, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False),
)


class AudioEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = nn.Sequential(*(ConvBlock(*layer) for layer in _AUDIO_LAYERS))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """``[B, T, 1, 80, 16]`` windows -> ``[B, T, 512]``. Rows are flattened batch-major: the
        published forward flattens time-major and reshapes batch-major, which is the same for B = 1
        (its only use) and scrambles frames otherwise."""
        b, t = mels.shape[:2]
        return self.audio_encoder(mels.reshape(b * t, *mels.shape[2:])).reshape(b, t, -1)


class ResidualConv(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv-BN-ReLU-conv plus a conv-BN skip."""

    def __init__(self, c_in: int, c_out: int, stride: int | tuple[int, int], padding: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, stride, padding),
            nn.BatchNorm2d(c_out), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1))
        self.conv_skip = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x) + self.conv_skip(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(channels, channels, (2, 1), (2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


class ResUnet(nn.Module):
    """A U-Net over the ``[1, 32 frames, 6]`` pose image, downsampling time only; sigmoid out."""

    def __init__(self, filters: tuple[int, int, int, int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        f0, f1, f2, f3 = filters
        self.input_layer = nn.Sequential(nn.Conv2d(1, f0, 3, padding=1), nn.BatchNorm2d(f0), nn.ReLU(),
                                         nn.Conv2d(f0, f0, 3, padding=1))
        self.input_skip = nn.Sequential(nn.Conv2d(1, f0, 3, padding=1))
        self.residual_conv_1 = ResidualConv(f0, f1, (2, 1), 1)
        self.residual_conv_2 = ResidualConv(f1, f2, (2, 1), 1)
        self.bridge = ResidualConv(f2, f3, (2, 1), 1)
        self.upsample_1 = Upsample(f3)
        self.up_residual_conv1 = ResidualConv(f3 + f2, f2, 1, 1)
        self.upsample_2 = Upsample(f2)
        self.up_residual_conv2 = ResidualConv(f2 + f1, f1, 1, 1)
        self.upsample_3 = Upsample(f1)
        self.up_residual_conv3 = ResidualConv(f1 + f0, f0, 1, 1)
        self.output_layer = nn.Sequential(nn.Conv2d(f0, 1, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 32, 6] -> [B, 1, 32, 6]
        x1 = self.input_layer(x) + self.input_skip(x)
        x2 = self.residual_conv_1(x1)
        x3 = self.residual_conv_2(x2)
        x4 = self.bridge(x3)
        x5 = self.up_residual_conv1(torch.cat([self.upsample_1(x4), x3], dim=1))
        x6 = self.up_residual_conv2(torch.cat([self.upsample_2(x5), x2], dim=1))
        x7 = self.up_residual_conv3(torch.cat([self.upsample_3(x6), x1], dim=1))
        return self.output_layer(x7)


def _mlp(sizes: tuple[int, ...], last: nn.Module | None) -> nn.Sequential:
    """Linear layers named L0, L1, ... with ReLUs A0, ... between; ``last`` (named ``sigmoid``)
    after the final one, else a ReLU there too (the published encoder's single layer)."""
    mlp = nn.Sequential()
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mlp.add_module(f"L{i}", nn.Linear(a, b))
        if i + 2 < len(sizes) or last is None:
            mlp.add_module(f"A{i}", nn.ReLU())
    if last is not None:
        mlp.add_module("sigmoid", last)
    return mlp


class Encoder(nn.Module):
    """The training-time posterior (unused at inference). The published constructor widens its
    config's first layer size in place by latent + seq_len x 6 + 6, hence 192 + 262 = 454 inputs."""

    def __init__(self, s: PoseVaeSizes) -> None:
        super().__init__()
        self.resunet = ResUnet()
        self.MLP = _mlp((192 + s.latent + s.seq_len * AUDIO_OUT + POSE, s.encoder_hidden), None)
        self.linear_means = nn.Linear(s.encoder_hidden, s.latent)
        self.linear_logvar = nn.Linear(s.encoder_hidden, s.latent)
        self.linear_audio = nn.Linear(AUDIO_IN, AUDIO_OUT)
        self.classbias = nn.Parameter(torch.randn(s.styles, s.latent))


class Decoder(nn.Module):
    def __init__(self, s: PoseVaeSizes) -> None:
        super().__init__()
        self.seq_len = s.seq_len
        self.resunet = ResUnet()
        self.MLP = _mlp((s.latent + s.seq_len * AUDIO_OUT + POSE, *s.decoder_hidden), nn.Sigmoid())
        self.pose_linear = nn.Linear(POSE, POSE)
        self.linear_audio = nn.Linear(AUDIO_IN, AUDIO_OUT)
        self.classbias = nn.Parameter(torch.randn(s.styles, s.latent))

    def forward(self, z: torch.Tensor, style: torch.Tensor, ref: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``z`` [B, 64], ``style`` [B] int64, ``ref`` [B, 6], ``audio`` [B, 32, 512] -> pose change [B, 32, 6]."""
        b = z.shape[0]
        a = self.linear_audio(audio).reshape(b, -1)  # [B, 192], frame-major
        h = self.MLP(torch.cat([ref, z + self.classbias[style], a], dim=-1))  # [B, 192]
        r = self.resunet(h.reshape(b, 1, self.seq_len, POSE))
        return self.pose_linear(r[:, 0])


class CVAE(nn.Module):
    def __init__(self, s: PoseVaeSizes) -> None:
        super().__init__()
        self.encoder = Encoder(s)
        self.decoder = Decoder(s)


class ConvNormRelu1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride, padding, bias=False)
        self.norm = nn.BatchNorm1d(c_out)


class PoseDiscriminator(nn.Module):
    """The training discriminator: in the published files, never run here."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvNormRelu1d(POSE, 256, 4, 2, 1), ConvNormRelu1d(256, 512, 4, 2, 1),
                                 ConvNormRelu1d(512, 1024, 3, 1, 1), nn.Conv1d(1024, 1, 3, 1, 1))


class Audio2Pose(nn.Module):
    """The published ``Audio2Pose`` module tree (see the module docstring)."""

    def __init__(self, sizes: PoseVaeSizes = PoseVaeSizes()) -> None:
        super().__init__()
        self.sizes = sizes
        self.audio_encoder = AudioEncoder()
        self.netG = CVAE(sizes)
        self.netD_motion = PoseDiscriminator()

    def chunk(self, mels: torch.Tensor, z: torch.Tensor, style: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """One chunk: ``mels`` [B, n <= 32, 1, 80, 16], ``z`` [B, 64] -> pose change [B, n, 6]. A chunk
        shorter than 32 frames has its audio embedding front-padded with copies of its first row, as
        the published ``test`` does for clips under 33 frames."""
        emb = self.audio_encoder(mels)
        n = emb.shape[1]
        if n < self.sizes.seq_len:
            emb = torch.cat([emb[:, :1].expand(-1, self.sizes.seq_len - n, -1), emb], dim=1)
        return self.netG.decoder(z, style, ref, emb)[:, -n:]

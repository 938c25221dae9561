"""The torso's neural texture and its two MLPs (Gaussian Head & Shoulders, section 3.2).

Image coordinates ``uv`` are normalised to the frame: (x / W, y / H) of a pixel centre, so [0, 1]
covers the frame. The texture covers [-pad, 1 + pad] in both (warped coordinates may land beyond
the frame) and holds 3 colour channels, 1 alpha logit and F feature channels.

* warp MLP: delta = tanh(MLP([gamma(uv), gamma(pose)])), zero-initialised (the identity warp at
  the start), so texture coordinate = uv + delta;
* colour MLP: fine = tanh(MLP([features(uv + delta), gamma(pose)])), zero-initialised; colour =
  texture colour + fine (rgb), alpha = sigmoid(alpha logit + 4 fine alpha);
* gamma: NeRF's positional encoding, x and sin / cos of 2^k x for k < L (the paper's embedder).

Both MLPs' first layer is split into a per-pixel and a per-frame part (the same sum as one layer on
the concatenation): a batch of B frames of P pixels costs P + B first-layer rows, not B P.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

POSE_DIM = 6  # axis-angle of the head's rotation (3) and its neck base's offset (3), see pose.py


def encode(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """[..., D] -> [..., D (1 + 2 octaves)]: x, then sin(2^k x), cos(2^k x) for k = 0..octaves-1."""
    out = [x]
    for k in range(octaves):
        out += [torch.sin(x * 2.0 ** k), torch.cos(x * 2.0 ** k)]
    return torch.cat(out, dim=-1)


class SplitMLP(nn.Module):
    """ReLU MLP of ``layers`` hidden layers of ``width`` on [per-pixel input, per-frame input]; the
    output layer starts at zero. ``forward(a [P, A], b [B, Bd]) -> [B, P, out]``."""

    def __init__(self, pixel_dim: int, frame_dim: int, width: int, out: int, layers: int = 4) -> None:
        super().__init__()
        self.pixel = nn.Linear(pixel_dim, width)
        self.frame = nn.Linear(frame_dim, width, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(layers - 1))
        self.out = nn.Linear(width, out)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pa = self.pixel(a)  # [P, W] or [B, P, W]
        h = torch.relu(pa + self.frame(b)[:, None])  # [B, P, W]
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)


class TorsoField(nn.Module):
    """The neural texture [3 + 1 + F, Ht, Wt] and the warp and colour MLPs (see the module doc)."""

    def __init__(self, size: tuple[int, int], features: int, hidden: int, uv_octaves: int, pose_octaves: int,
                 padding: float) -> None:
        super().__init__()
        w, h = size
        self.padding, self.uv_octaves, self.pose_octaves = float(padding), uv_octaves, pose_octaves
        th, tw = round(h * (1 + 2 * padding)), round(w * (1 + 2 * padding))
        self.texture = nn.Parameter(torch.zeros(4 + features, th, tw))
        uv_dim, pose_dim = 2 * (1 + 2 * uv_octaves), POSE_DIM * (1 + 2 * pose_octaves)
        self.warp_mlp = SplitMLP(uv_dim, pose_dim, hidden, 2)
        self.colour_mlp = SplitMLP(features, pose_dim, hidden, 4) if features else None
        #: run the two MLPs in bfloat16 on CUDA (the compositor's ``half``); texture look-ups and the
        #: geometry stay float32
        self.half = False

    def _mlp(self, mlp: SplitMLP, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        on = self.half and a.device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on):
            return mlp(a, b).float()

    @property
    def features(self) -> int:
        return self.texture.shape[0] - 4

    def pose_code(self, pose: torch.Tensor) -> torch.Tensor:
        """[B, POSE_DIM] -> [B, POSE_DIM (1 + 2 L)]."""
        return encode(pose, self.pose_octaves)

    def warp(self, uv: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """delta [B, P, 2] for image coordinates ``uv`` [P, 2] (or [B, P, 2]) and pose codes [B, C]."""
        return torch.tanh(self._mlp(self.warp_mlp, encode(uv, self.uv_octaves), code))

    def sample(self, uv: torch.Tensor, texture: torch.Tensor | None = None) -> torch.Tensor:
        """Bilinear texture look-up at texture coordinates ``uv`` [B, P, 2] -> [B, P, C] (``texture``
        [C, Ht, Wt]: default the trained one). Coordinates beyond the padding clamp to its border."""
        tex = self.texture if texture is None else texture
        grid = (uv + self.padding) / (1 + 2 * self.padding) * 2 - 1
        out = F.grid_sample(tex[None].expand(uv.shape[0], -1, -1, -1), grid[:, :, None].to(tex.dtype), mode="bilinear",
                            padding_mode="border", align_corners=False)  # [B, C, P, 1]
        return out[..., 0].transpose(1, 2)

    def shade(self, texels: torch.Tensor, code: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(rgb [B, P, 3], alpha [B, P, 1]) from texels [B, P, 4 + F]; ``code`` None: colour alone,
        without the colour MLP (before it starts, or a baked texture)."""
        rgb, logit = texels[..., :3], texels[..., 3:4]
        if code is not None and self.colour_mlp is not None:
            fine = torch.tanh(self._mlp(self.colour_mlp, texels[..., 4:], code))
            rgb, logit = rgb + fine[..., :3], logit + 4.0 * fine[..., 3:]
        return rgb, torch.sigmoid(logit)

    @torch.no_grad()
    def bake(self, code: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """The texture with the colour MLP applied at pose code [1, C], as colour + alpha logit
        [4, Ht, Wt] (the fast mode's texture)."""
        c, th, tw = self.texture.shape
        flat = self.texture.reshape(c, -1).T  # [Ht Wt, C]
        out = []
        for a in range(0, flat.shape[0], chunk):
            texels = flat[a:a + chunk][None]
            rgb, alpha = self.shade(texels, code)
            out.append(torch.cat([rgb, torch.logit(alpha.clamp(1e-6, 1 - 1e-6))], -1)[0])
        return torch.cat(out).T.reshape(4, th, tw).contiguous()

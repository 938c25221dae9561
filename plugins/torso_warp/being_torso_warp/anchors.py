"""Anchor points on the torso that follow the head's skinning, and the homography they define.

An anchor k rests at ``rest[k]`` (the torso camera's coordinates, metres) and has a skinning weight
w_k in [0, 1] to the head's rigid motion relative to the reference pose (two-bone linear blend
skinning: the head and the still body)::

    posed_k = w_k (R_rel (rest_k - c_ref) + c) + (1 - w_k) rest_k,   R_rel = R_hc R_ref^T

Each anchor has a texture position ``target[k]`` (normalised coordinates). Training asks the warp
MLP to carry every posed anchor's image position to its target (the anchor deformation loss); the
anchors are also drawn as small Gaussians (with the texture's colour at their target) until late in
training, so where they land is seen by the photometric loss. The fast mode replaces the warp MLP by
the homography that maps the posed anchors' image positions onto their targets, one per frame.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .pose import TorsoCamera


class Anchors(nn.Module):
    """rest [K, 3], target [K, 2] buffers; weight and opacity logits [K] and ``scale`` [K] (metres)."""

    def __init__(self, rest: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("rest", rest.float())
        self.register_buffer("target", target.float())
        self.register_buffer("scale", scale.float())
        self.weight_logit = nn.Parameter(torch.logit(weight.float().clamp(0.02, 0.98)))
        self.opacity_logit = nn.Parameter(torch.zeros_like(weight, dtype=torch.float32))

    def __len__(self) -> int:
        return int(self.rest.shape[0])

    @property
    def weights(self) -> torch.Tensor:
        return torch.sigmoid(self.weight_logit)

    def posed(self, R_hc: torch.Tensor, c: torch.Tensor, camera: TorsoCamera) -> torch.Tensor:
        """[B, K, 3] anchors for head rotations R_hc [B, 3, 3] and neck bases c [B, 3]."""
        rel = R_hc @ camera.R_ref.T.to(R_hc)
        moved = torch.einsum("bij,kj->bki", rel, self.rest - camera.c_ref) + c[:, None]
        w = self.weights[None, :, None]
        return w * moved + (1 - w) * self.rest[None]

    def image(self, R_hc: torch.Tensor, c: torch.Tensor, camera: TorsoCamera) -> torch.Tensor:
        """[B, K, 2] normalised image positions of the posed anchors."""
        return camera.project(self.posed(R_hc, c, camera))


def fit_homography(src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The homographies H [B, 3, 3] (H[2, 2] = 1) taking points src [B, K, 2] to dst [B, K, 2] (or [K, 2])
    in the weighted least-squares sense of the linear DLT equations, with both point sets first
    centred and scaled (Hartley's normalisation). weights [B, K] (0 drops a point); K >= 4.
    Differentiable."""
    B, K, _ = src.shape
    dst = dst.expand(B, K, 2)
    w = torch.ones(B, K, dtype=src.dtype, device=src.device) if weights is None else weights.to(src.dtype)
    Ts, Td = _normaliser(src, w), _normaliser(dst, w)
    s, d = _apply(Ts, src), _apply(Td, dst)
    x, y, u, v = s[..., 0], s[..., 1], d[..., 0], d[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    # u (h7 x + h8 y + 1) = h1 x + h2 y + h3, and the same for v with h4..h6
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1)
    A = torch.cat([rows_u, rows_v], 1)  # [B, 2K, 8]
    b = torch.cat([u, v], 1)  # [B, 2K]
    ww = torch.cat([w, w], 1)[..., None]
    AtA = (A * ww).transpose(1, 2) @ A + 1e-9 * torch.eye(8, dtype=A.dtype, device=A.device)
    h = torch.linalg.solve(AtA, ((A * ww).transpose(1, 2) @ b[..., None]))[..., 0]
    Hn = torch.cat([h, torch.ones(B, 1, dtype=h.dtype, device=h.device)], 1).reshape(B, 3, 3)
    H = torch.linalg.solve(Td, Hn @ Ts)  # Td^-1 Hn Ts
    return H / H[:, 2:, 2:]


def apply_homography(H: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """points [P, 2] or [B, P, 2] through H [B, 3, 3] -> [B, P, 2]."""
    return _apply(H, points.expand(H.shape[0], *points.shape[-2:]))


def _apply(H: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    p = points @ H[:, :2, :2].transpose(1, 2) + H[:, None, :2, 2]
    q = points @ H[:, 2:, :2].transpose(1, 2) + H[:, None, 2:, 2]
    return p / q


def _normaliser(p: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] similarity taking the weighted points p [B, K, 2] to mean 0, mean distance sqrt(2)."""
    ws = w.sum(1, keepdim=True).clamp_min(1e-9)
    mean = (p * w[..., None]).sum(1) / ws
    dist = ((p - mean[:, None]).norm(dim=-1) * w).sum(1, keepdim=True) / ws
    s = (2 ** 0.5) / dist.clamp_min(1e-9)
    T = torch.zeros(p.shape[0], 3, 3, dtype=p.dtype, device=p.device)
    T[:, 0, 0], T[:, 1, 1], T[:, 2, 2] = s[:, 0], s[:, 0], 1.0
    T[:, :2, 2] = -s * mean
    return T

"""Adaptive density control for mesh-embedded Gaussians (3DGS's clone / split / prune, as
SplattingAvatar uses it, with new Gaussians born on the same triangle).

Screen-space gradients: the rasterizer takes world-space means, so the gradient a Gaussian's
projected centre received is recovered from the gradient of its posed mean ``g`` [B, N, 3]:
moving the mean laterally by dx moves the projection by fx dx / z pixels, hence
|dL/du| ~ |g| z / fx, and 3DGS's threshold (2e-4) is on that gradient in NDC units (x W / 2),
per image of the batch.
"""

from __future__ import annotations

import math

import torch

from .params import GaussianParams


class GradientStats:
    """Running mean of each Gaussian's screen-space gradient over the views that saw it."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.total = torch.zeros(n, device=device)
        self.count = torch.zeros(n, device=device)

    def add(self, mean_grad: torch.Tensor, depth: torch.Tensor, fx: torch.Tensor, width: int) -> None:
        """mean_grad [B, N, 3] (of a loss averaged over the B images), depth [B, N] camera z, fx [B]."""
        b = mean_grad.shape[0]
        ndc = mean_grad.norm(dim=-1) * b * depth / fx[:, None] * (width / 2.0)  # [B, N], per image
        seen = mean_grad.abs().sum(-1) > 0
        self.total += torch.where(seen, ndc, torch.zeros_like(ndc)).sum(0)
        self.count += seen.sum(0)

    def mean(self) -> torch.Tensor:
        return self.total / self.count.clamp_min(1)


@torch.no_grad()
def densify_and_prune(g: GaussianParams, stats: GradientStats, *, grad_threshold: float, prune_opacity: float,
                      max_gaussians: int, generator: torch.Generator) -> dict[str, int]:
    """Clone small and split large Gaussians whose mean screen gradient exceeds ``grad_threshold``
    (at most up to ``max_gaussians``), then prune the nearly transparent. A Gaussian is "large"
    when its in-plane size exceeds its triangle's (relative scale > 1): its two halves get 1/1.6
    of its scale. Copies land near the original in barycentric coordinates (a step of about
    their size), on the same triangle; walking carries them on if they leave it.
    Returns {"cloned", "split", "pruned", "total"}."""
    n = len(g)
    grads = stats.mean()
    room = max(0, max_gaussians - n)
    candidates = torch.nonzero(grads > grad_threshold).squeeze(1)
    if candidates.numel() > room:
        candidates = candidates[torch.argsort(grads[candidates], descending=True)[:room]]
    p = g.params
    rel_size = p["log_scale"][:, :2].exp().amax(-1)  # in-plane size / sqrt(rest triangle area)
    large = rel_size[candidates] > 1.0
    cloned, split = candidates[~large], candidates[large]

    src = torch.cat([cloned, split])
    new = {k: v.data[src].clone() for k, v in p.items()}
    step = rel_size[src, None] * torch.randn(src.numel(), 2, generator=generator).to(src.device) * 0.5
    new["bary12"] = new["bary12"] + step
    shrink = torch.zeros(src.numel(), device=src.device)
    shrink[cloned.numel():] = math.log(1.6)
    new["log_scale"] -= shrink[:, None]
    p["log_scale"].data[split] -= math.log(1.6)

    keep = g.opacity > prune_opacity
    g.select_and_extend(keep, g.face_ids[src], new)
    return {"cloned": int(cloned.numel()), "split": int(split.numel()), "pruned": int((~keep).sum()), "total": len(g)}

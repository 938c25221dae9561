"""Adaptive density control for mesh-embedded Gaussians (3DGS's clone / split / prune, as
SplattingAvatar uses it, with new Gaussians born on the same triangle). The optimizer surgery
and the screen-space gradient statistic are the kernel's (``being_kernel.train``)."""

from __future__ import annotations

import math

import torch

from being_kernel.train import GradientStats, densify_candidates, select_and_extend

from .params import GaussianParams


@torch.no_grad()
def densify_and_prune(g: GaussianParams, stats: GradientStats, optimizer: torch.optim.Optimizer, *,
                      grad_threshold: float, prune_opacity: float, max_gaussians: int,
                      generator: torch.Generator) -> dict[str, int]:
    """Clone small and split large Gaussians whose mean screen gradient exceeds ``grad_threshold``
    (at most up to ``max_gaussians``), then prune the nearly transparent. A Gaussian is "large"
    when its in-plane size exceeds its triangle's (relative scale > 1): its two halves get 1/1.6
    of its scale. Copies land near the original in barycentric coordinates (a step of about
    their size), on the same triangle; walking carries them on if they leave it.
    Returns {"cloned", "split", "pruned", "total"}."""
    n = len(g)
    candidates = densify_candidates(stats.mean(), grad_threshold, max_gaussians - n)
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

    keep = torch.nonzero(g.opacity > prune_opacity).squeeze(1)
    face_ids = torch.cat([g.face_ids[keep], g.face_ids[src]])
    g.replace_rows(select_and_extend(optimizer, g.groups(), keep, new), face_ids)
    return {"cloned": int(cloned.numel()), "split": int(split.numel()), "pruned": n - int(keep.numel()), "total": len(g)}

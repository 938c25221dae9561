"""Optimizer surgery for any Gaussian (or other per-primitive) method: keep a subset of the rows
of every per-row parameter and append new rows, carrying Adam's moments along (zero for new rows),
as 3DGS's densification does; and the screen-space gradient statistic that decides who is cloned
or split.

Screen-space gradients: rasterizers here take world-space means, so the gradient a Gaussian's
projected centre received is recovered from the gradient ``g`` [B, N, 3] of its posed mean:
moving the mean laterally by dx moves the projection by fx dx / z pixels, hence
|dL/du| ~ |g| z / fx, and 3DGS's threshold (2e-4) is on that gradient in NDC units (x W / 2), per
image of the batch.
"""

from __future__ import annotations

import torch

from .method import ParamGroup


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
        """[N] mean gradient (0 for Gaussians no view saw)."""
        return self.total / self.count.clamp_min(1)


def densify_candidates(grads: torch.Tensor, threshold: float, room: int) -> torch.Tensor:
    """Indices [K] of rows whose gradient ``grads`` [N] exceeds ``threshold``, the largest first
    when more than ``room`` qualify."""
    candidates = torch.nonzero(grads > threshold).squeeze(1)
    if candidates.numel() > max(0, room):
        candidates = candidates[torch.argsort(grads[candidates], descending=True)[:max(0, room)]]
    return candidates


@torch.no_grad()
def select_and_extend(optimizer: torch.optim.Optimizer, groups: list[ParamGroup], keep: torch.Tensor,
                      new: dict[str, torch.Tensor] | None = None) -> dict[str, torch.nn.Parameter]:
    """Keep rows ``keep`` ([N] bool or index) of every ``per_row`` group and append ``new``
    (group name -> [M, ...] rows; all per-row groups or none). The optimizer's groups (matched by
    parameter) get the new tensors; Adam's ``exp_avg``/``exp_avg_sq`` follow their rows and start at
    zero for new ones. Returns the new parameters by group name (callers store them)."""
    if keep.dtype == torch.bool:
        keep = torch.nonzero(keep).squeeze(1)
    by_param = {id(g["params"][0]): g for g in optimizer.param_groups}
    out: dict[str, torch.nn.Parameter] = {}
    for group in groups:
        if not group.per_row:
            continue
        old = group.param
        data = old.data[keep] if new is None else torch.cat([old.data[keep], new[group.name]])
        param = torch.nn.Parameter(data.contiguous())
        state = optimizer.state.pop(old, None)
        if state:
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    moment = state[key][keep]
                    if new is not None:
                        moment = torch.cat([moment, torch.zeros_like(new[group.name])])
                    state[key] = moment.contiguous()
            optimizer.state[param] = state
        opt_group = by_param.get(id(old))
        if opt_group is None:
            raise ValueError(f"select_and_extend: group {group.name!r} is not in the optimizer")
        opt_group["params"][0] = param
        out[group.name] = param
    return out

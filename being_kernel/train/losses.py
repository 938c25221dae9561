"""The photometric loss every image trainer shares: (1 - w) D + w (1 - SSIM), plus LPIPS late in
training when its weights are on disk (3DGS's L1 + D-SSIM with w = 0.2; LPIPS as the avatar papers
add it for sharpness). D is L1, L2 or the Huber distance (FlashAvatar trains on Huber alone, w = 0)."""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import ConfigError
from ..metrics import ssim
from .config import FitConfig


class PhotometricLoss:
    """Built once per run from the common config fields; ``lpips`` is None when the term is off."""

    def __init__(self, config: FitConfig, device: torch.device, log: Callable[[str], None]) -> None:
        self.ssim_weight = config.ssim_weight
        self.distance = {"l1": l1, "l2": l2, "huber": lambda a, b: huber(a, b, config.huber_delta)}[config.photometric]
        self.lpips_weight, self.lpips_from = config.lpips_weight, config.lpips_from
        self.lpips = _lpips(config, device, log)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        """pred, target [B, H, W, 3] -> 0-d loss; ``progress`` in [0, 1] switches LPIPS on."""
        w = self.ssim_weight
        loss = (1.0 - w) * self.distance(pred, target)
        if w > 0:
            loss = loss + w * (1.0 - ssim(pred, target).mean())
        if self.lpips is not None and progress >= self.lpips_from:
            loss = loss + self.lpips_weight * self.lpips(pred, target).mean()
        return loss


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (0-d)."""
    return (pred - target).abs().mean()


def l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference (0-d)."""
    return (pred - target).square().mean()


def huber(pred: torch.Tensor, target: torch.Tensor, delta: float) -> torch.Tensor:
    """Mean Huber distance (0-d): 0.5 d^2 where d = |pred - target| < delta, delta (d - delta / 2) above."""
    d = (pred - target).abs()
    return torch.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)).mean()


def _lpips(config: FitConfig, device: torch.device, log: Callable[[str], None]):  # noqa: ANN202 - the LPIPS net
    if config.lpips == "off" or config.lpips_weight == 0:
        return None
    from ..metrics import load_lpips, lpips_available

    reason = lpips_available()
    if reason is None:
        return load_lpips(device=device)
    if config.lpips == "on":
        raise ConfigError(f"fit.lpips=on but {reason}", hint="or set fit.lpips=auto / off")
    log(f"note: training without the LPIPS term: {reason}")
    return None

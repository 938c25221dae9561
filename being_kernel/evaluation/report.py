"""What every evaluation shares: the per-frame scores (PSNR, SSIM, LPIPS when its weights are on
disk, each optionally inside a region), the typed reports, and building a plugin for evaluation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch


@dataclass(kw_only=True)
class ScoreReport:
    """What every evaluation reports: mean metrics over ``frames`` of the tracked video ``data`` and
    the per-frame values. psnr (dB), ssim in [-1, 1], lpips (None when unavailable: lpips_reason
    says why)."""

    data: str
    format: str
    frames: list[int]
    psnr: float
    ssim: float
    lpips: float | None
    lpips_reason: str | None
    device: str
    image_size: tuple[int, int]
    per_frame: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


@dataclass(kw_only=True)
class EvalReport(ScoreReport):
    """An avatar on held-out views. render_fps: frames per second of ``render_views`` (skinning,
    posing, rasterization and the copy back to the host, synchronised on CUDA)."""

    avatar: str
    plugin: str
    render_fps: float


@dataclass(kw_only=True)
class CompositeReport(ScoreReport):
    """A compositor on full frames: the whole image and the neck band (see ``band.neck_band``).

    heads: "avatar PLUGIN PATH" when an avatar rendered the heads, "ground truth" when the frames'
    own masked heads were composited (the compositor alone is measured then)."""

    torso: str
    heads: str
    band_psnr: float
    band_ssim: float
    band_px: int
    composite_fps: float


class Scores:
    """Per-frame PSNR, SSIM (and LPIPS once loaded), optionally also inside a region mask."""

    def __init__(self, device: torch.device) -> None:
        from ..metrics import load_lpips, lpips_available

        self.device = device
        self.lpips_reason = lpips_available()
        self.lpips = load_lpips(device=device) if self.lpips_reason is None else None
        self.rows: list[dict] = []

    def add(self, frames: list[int], pred: torch.Tensor, truth: torch.Tensor, region: torch.Tensor | None = None,
            prefix: str = "band_") -> None:
        """pred, truth [B, H, W, 3]; region [B, H, W, 1] or None: scores inside it get ``prefix``."""
        from ..metrics import psnr, ssim

        p, s = psnr(pred, truth), ssim(pred, truth)
        lp = self.lpips(pred.to(self.device), truth.to(self.device)).cpu() if self.lpips is not None else None
        if region is not None:
            bp, bs = psnr(pred, truth, mask=region), ssim(pred, truth, mask=region)
        for k, index in enumerate(frames):
            row = {"index": index, "psnr": float(p[k]), "ssim": float(s[k])}
            if lp is not None:
                row["lpips"] = float(lp[k])
            if region is not None:
                row[prefix + "psnr"], row[prefix + "ssim"] = float(bp[k]), float(bs[k])
            self.rows.append(row)


def mean_scores(rows: list[dict]) -> dict[str, float]:
    """Mean of each score over the rows that have a finite value for it (identical frames give
    PSNR inf; a frame without a band gives nan)."""
    keys = {k for r in rows for k in r if k != "index"}
    out = {}
    for key in sorted(keys):
        values = [r[key] for r in rows if key in r and math.isfinite(r[key])]
        out[key] = sum(values) / len(values) if values else math.nan
    return out


def held_out_chunks(video, frames: list[int], chunk: int):  # noqa: ANN001, ANN201 - TrackedVideo -> iterator
    """(idx [B], FrameStore of those frames on the CPU) for ``frames`` in chunks of ``chunk``."""
    from ..train import FrameStore

    for a in range(0, len(frames), chunk):
        idx = torch.tensor(frames[a:a + chunk])
        yield idx, FrameStore.load(video, torch.device("cpu"), idx.tolist())


def report_pairs(truth: torch.Tensor, pred: torch.Tensor, on_frame: Callable | None,
                 progress: Callable[[int], None] | None) -> None:
    """Hand each compared pair ([B, H, W, 3] each) to ``on_frame`` and count them on ``progress``."""
    if on_frame is not None:
        for k in range(len(truth)):
            on_frame(truth[k], pred[k])
    if progress is not None:
        progress(len(truth))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Quality figures where ground truth exists: lip timing against a clip's .segs, and a fitted
avatar against held-out frames of a tracked dataset (``being eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from being_kernel.metrics.lipsync import bilabial_closure, lip_gap, read_segs, vowel_opening
from being_kernel.types import DEMO_HEAD, Motion
from .figures import all_missing, missing, one_line, single
from .schema import Figure

LIP_FIGURES = ("bilabial_closure", "vowel_opening")
AVATAR_FIGURES = ("avatar_psnr", "avatar_ssim", "avatar_lpips")


def lip_figures(motion: Motion | None, segs: str | None) -> dict[str, Figure]:
    """Bilabial closure and its control, vowel opening, of ``motion`` against the .segs file."""
    if segs is None:
        return all_missing("the clip has no .segs phone timing", LIP_FIGURES)
    if motion is None:
        return all_missing("no motion: motion generation failed", LIP_FIGURES)
    if motion.space != DEMO_HEAD:  # the only space whose head model (and lip seam) the kernel has
        return all_missing(f"no head model for motion space {motion.space}", LIP_FIGURES)
    gap, phones = lip_gap(motion), read_segs(segs)
    out = {}
    for name, score, what in (("bilabial_closure", bilabial_closure, "p/b/m"), ("vowel_opening", vowel_opening, "vowels")):
        hit, total = score(gap, motion.fps, phones)
        out[name] = (single(hit / total, "fraction", n=total, note=f"{hit}/{total} {what}") if total
                     else missing(name, f"no {what} in the clip's .segs"))
    return out


def avatar_figures(avatar: str, config: dict[str, Any], data: Path, device: str) -> dict[str, Figure]:
    """PSNR, SSIM and LPIPS of the avatar on the held-out frames of ``data``."""
    try:
        from being_kernel.evaluate import evaluate_avatar
    except ImportError:
        return all_missing("being eval not available", AVATAR_FIGURES)
    try:
        report = evaluate_avatar(avatar, config, data, device)
    except Exception as exc:  # noqa: BLE001 - any failure of the evaluation is the figures' reason
        return all_missing(f"being eval failed: {one_line(exc)}", AVATAR_FIGURES)
    out = {}
    for name, key, unit in (("avatar_psnr", "psnr", "dB"), ("avatar_ssim", "ssim", ""), ("avatar_lpips", "lpips", "")):
        value = getattr(report, key)
        why = report.lpips_reason if key == "lpips" else None
        out[name] = (single(float(value), unit, n=len(report.frames), note=f"{len(report.frames)} held-out frames")
                     if value is not None else missing(name, why or f"being eval gave no {key}"))
    return out

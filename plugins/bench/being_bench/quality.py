"""Quality figures where ground truth exists: lip timing against a clip's .segs, and a fitted
avatar against held-out frames of a tracked dataset (``being eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from being_kernel import InputError
from being_kernel.api import Motion
from being_kernel.metrics import bilabial_closure, head_for_motion_space, lip_gap, read_segs, vowel_opening

from .figures import all_missing, missing, one_line, single
from .schema import Figure

LIP_FIGURES = ("bilabial_closure", "vowel_opening")
AVATAR_FIGURES = ("avatar_psnr", "avatar_ssim", "avatar_lpips")


def lip_figures(motion: Motion | None, segs: str | None) -> dict[str, Figure]:
    """Bilabial closure and its control, vowel opening, of ``motion`` against the .segs file, on
    the head model of the motion's space (the demo head, or the user's FLAME file)."""
    if segs is None:
        return all_missing("the clip has no .segs phone timing", LIP_FIGURES)
    if motion is None:
        return all_missing("no motion: motion generation failed", LIP_FIGURES)
    try:
        head = head_for_motion_space(motion.space)
    except InputError as exc:  # an unknown space, or a FLAME file that is not there: the reason says which
        return all_missing(exc.one_line(), LIP_FIGURES)
    try:
        gap = lip_gap(motion, head)
    except ValueError as exc:  # no mouth opening to find, or expressions wider than the head model's
        return all_missing(f"head model '{head.name}' of motion space {motion.space}: {exc}", LIP_FIGURES)
    phones = read_segs(segs)
    out = {}
    for name, score, what in (("bilabial_closure", bilabial_closure, "p/b/m"),
                              ("vowel_opening", vowel_opening, "vowels")):
        hit, total = score(gap, motion.fps, phones)
        out[name] = (single(hit / total, "fraction", n=total, note=f"{hit}/{total} {what}") if total
                     else missing(name, f"no {what} in the clip's .segs"))
    return out


def avatar_figures(avatar: str, config: dict[str, Any], data: Path, device: str) -> dict[str, Figure]:
    """PSNR, SSIM and LPIPS of the avatar on the held-out frames of ``data``."""
    try:
        from being_kernel.evaluation import evaluate_avatar
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

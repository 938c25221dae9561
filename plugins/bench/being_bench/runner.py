"""Runs a bench matrix: each cell in a process of its own (``worker``), one after the other so
they do not compete for the machine, then each avatar's quality evaluation once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from .figures import all_missing
from .matrix import CellPlan
from .quality import AVATAR_FIGURES
from .schema import Cell, Figure, Settings

#: progress(done, total, cell, seconds it took)
Progress = Callable[[int, int, Cell, float], None]


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def run_job(job: dict, stem: Path, timeout_s: float) -> tuple[dict | None, str | None]:
    """Run one worker job; (result, None), or (None, why it failed). Its output goes to STEM.log."""
    job_path, result_path, log_path = (stem.with_name(stem.name + ext) for ext in (".job.json", ".result.json", ".log"))
    job_path.write_text(json.dumps(job))
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "being_bench.worker", str(job_path), str(result_path)]
    try:
        with log_path.open("w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"stopped after {timeout_s:g} s (--timeout); log: {log_path}"
    finally:
        job_path.unlink(missing_ok=True)
    if proc.returncode != 0 or not result_path.is_file():
        return None, f"its process exited with code {proc.returncode}: {_last_line(log_path)} (log: {log_path})"
    result = json.loads(result_path.read_text())
    result_path.unlink()
    return result, None


def _not_started(plan: CellPlan, status: str, reason: str) -> Cell:
    return Cell(id=plan.id, audio=plan.audio, avatar=plan.avatar, torso=plan.torso, size=plan.size, device=plan.device,
                clip=plan.clip, status=status, reason=reason, config=plan.values, figures=all_missing(reason))


def run_cells(plans: list[CellPlan], settings: Settings, logs: Path, timeout_s: float, progress: Progress) -> list[Cell]:
    logs.mkdir(parents=True, exist_ok=True)
    cells: list[Cell] = []
    for i, plan in enumerate(plans):
        t0 = time.monotonic()
        if plan.skip:
            cell = _not_started(plan, "skipped", plan.skip)
        else:
            job = {"kind": "cell", "plan": plan.model_dump(mode="json"), "settings": settings.model_dump(mode="json")}
            result, why = run_job(job, logs / f"cell{i:03d}", timeout_s)
            cell = Cell.model_validate(result) if result is not None else _not_started(plan, "failed", f"cell failed: {why}")
        cells.append(cell)
        progress(i + 1, len(plans), cell, time.monotonic() - t0)
    if settings.data is not None:
        add_avatar_quality(cells, Path(settings.data), logs, timeout_s)
    return cells


def add_avatar_quality(cells: list[Cell], data: Path, logs: Path, timeout_s: float) -> None:
    """Evaluate each distinct (avatar, config, device) of the cells that ran, once, and give its
    PSNR, SSIM and LPIPS to every cell that used it."""
    done: dict[str, dict[str, Figure]] = {}
    for cell in cells:
        if cell.status != "ok":
            continue
        key = json.dumps([cell.avatar, cell.device, cell.config.get("avatar", {})], sort_keys=True)
        if key not in done:
            job = {"kind": "avatar", "avatar": cell.avatar, "config": cell.config.get("avatar", {}), "data": str(data),
                   "device": cell.device}
            result, why = run_job(job, logs / f"avatar{len(done):03d}", timeout_s)
            done[key] = ({k: Figure.model_validate(v) for k, v in result.items()} if result is not None
                         else all_missing(f"being eval failed: {why}", AVATAR_FIGURES))
        cell.figures.update(done[key])

"""Runs a bench matrix: each cell in a process of its own (``worker``), one after the other so
they do not compete for the machine, then each avatar's quality evaluation once.

A worker's stdout and stderr are read as they come: everything goes to its log, and its progress
lines (``worker.PROGRESS_MARK``) are also handed to ``note``, so the user sees each figure start
and end while a cell runs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Callable

from .figures import all_missing
from .matrix import CellPlan
from .quality import AVATAR_FIGURES
from .schema import Cell, Figure, Settings
from .worker import PROGRESS_MARK

#: progress(done, total, cell, seconds it took)
Progress = Callable[[int, int, Cell, float], None]
#: note(line): a progress line for the user (None: keep them in the logs only)
Note = Callable[[str], None]
#: How long the log is still read after a worker exited or was stopped (a child of it may hold the pipe).
DRAIN_S = 10.0


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _tee(pipe: IO[bytes], log: IO[bytes], note: Note | None) -> None:
    """Copy the worker's output into its log line by line, progress lines also to ``note``."""
    mark = PROGRESS_MARK.encode()
    try:
        for raw in iter(pipe.readline, b""):
            log.write(raw)
            log.flush()
            if note is not None and raw.startswith(mark):
                note(raw[len(mark):].decode(errors="replace").rstrip())
    except (OSError, ValueError):  # the pipe or log closed under it: a stopped worker whose child held the pipe
        pass


def run_job(job: dict, stem: Path, timeout_s: float, note: Note | None = None) -> tuple[dict | None, str | None]:
    """Run one worker job; (result, None), or (None, why it failed). Its output goes to STEM.log,
    its progress lines also to ``note`` as they come."""
    job_path, result_path, log_path = (stem.with_name(stem.name + ext) for ext in (".job.json", ".result.json", ".log"))
    job_path.write_text(json.dumps(job))
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "being_bench.worker", str(job_path), str(result_path)]
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            reader = threading.Thread(target=_tee, args=(proc.stdout, log, note), name="being-bench-log", daemon=True)
            reader.start()
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return None, f"stopped after {timeout_s:g} s (--timeout); log: {log_path}"
            finally:
                reader.join(DRAIN_S)
                proc.stdout.close()
    finally:
        job_path.unlink(missing_ok=True)
    if code != 0 or not result_path.is_file():
        return None, f"its process exited with code {code}: {_last_line(log_path)} (log: {log_path})"
    result = json.loads(result_path.read_text())
    result_path.unlink()
    return result, None


def _not_started(plan: CellPlan, status: str, reason: str) -> Cell:
    return Cell(id=plan.id, tuned=plan.tuned, audio=plan.audio, avatar=plan.avatar, torso=plan.torso, size=plan.size, device=plan.device,
                clip=plan.clip, status=status, reason=reason, config=plan.values, figures=all_missing(reason))


def _prefixed(note: Note | None, prefix: str) -> Note | None:
    return None if note is None else (lambda line: note(f"{prefix}{line}"))


def run_cells(plans: list[CellPlan], settings: Settings, logs: Path, timeout_s: float, progress: Progress,
              note: Note | None = None) -> list[Cell]:
    """Every cell, in order; ``progress`` after each, ``note`` with each figure's progress lines."""
    logs.mkdir(parents=True, exist_ok=True)
    cells: list[Cell] = []
    for i, plan in enumerate(plans):
        t0 = time.monotonic()
        if plan.skip:
            cell = _not_started(plan, "skipped", plan.skip)
        else:
            tag = f"  [{i + 1}/{len(plans)}] "
            if note is not None:
                note(f"{tag}{plan.id}: started (log: {logs / f'cell{i:03d}.log'})")
            job = {"kind": "cell", "plan": plan.model_dump(mode="json"), "settings": settings.model_dump(mode="json")}
            result, why = run_job(job, logs / f"cell{i:03d}", timeout_s, _prefixed(note, tag + "  "))
            cell = Cell.model_validate(result) if result is not None else _not_started(plan, "failed", f"cell failed: {why}")
        cells.append(cell)
        progress(i + 1, len(plans), cell, time.monotonic() - t0)
    if settings.data is not None:
        add_avatar_quality(cells, Path(settings.data), logs, timeout_s, note)
    return cells


def add_avatar_quality(cells: list[Cell], data: Path, logs: Path, timeout_s: float, note: Note | None = None) -> None:
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
            result, why = run_job(job, logs / f"avatar{len(done):03d}", timeout_s, _prefixed(note, f"  [{cell.avatar}] "))
            done[key] = ({k: Figure.model_validate(v) for k, v in result.items()} if result is not None
                         else all_missing(f"being eval failed: {why}", AVATAR_FIGURES))
        cell.figures.update(done[key])

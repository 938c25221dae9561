"""What runs inside the Ray workers: rendering clips (a worker keeps its loaded plugins across
clips), fitting, benching. Each returns an ``Outcome`` instead of raising, so the driver sees
the user-facing error line and whether another attempt could help, not a wrapped traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..errors import BeingError, ConfigError, ContractError, InputError, PluginError, StageError

#: Failures another attempt cannot fix: the input or the settings are at fault.
_PERMANENT = (InputError, ConfigError, PluginError, ContractError)


@dataclass(frozen=True)
class Outcome:
    state: str  # done | failed | interrupted
    seconds: float
    error: str | None = None
    retry: bool = False  # a failure another attempt may not repeat
    detail: str | None = None
    plugins_failed: bool = False  # the plugins could not be built: every clip that needs them fails alike


def _failure(exc: BaseException, t0: float) -> Outcome:
    cause = exc.cause if isinstance(exc, StageError) else exc
    line = exc.one_line() if isinstance(exc, BeingError) else f"{type(exc).__name__}: {exc}"
    return Outcome("failed", time.perf_counter() - t0, line, retry=not isinstance(cause, _PERMANENT))


class _Cancelled(Exception):
    """Raised inside a render when the driver asked the worker to stop."""


class RenderWorker:
    """Renders clips with one loaded plugin triple at a time, reloading only when a clip needs
    another triple or config (the driver sends clips of one triple together). Wrapped as a Ray
    actor: ``render`` calls run one at a time, ``cancel`` runs beside them."""

    def __init__(self) -> None:
        self._triple: Any = None  # the LoadedTriple in use
        self._group: str | None = None
        self._cancel = threading.Event()
        self.loads = 0

    def _load(self, group: str, spec: dict[str, Any]) -> Any:
        from ..discovery import Registry
        from ..media.clip import LoadedTriple, select

        if group != self._group:
            if self._triple is not None:
                self._triple.close()
                self._triple, self._group = None, None
            registry = Registry.discover()
            self._triple = LoadedTriple.load(select(registry, spec["names"], spec["values"]), registry)
            self._group = group
            self.loads += 1
        return self._triple

    def render(self, group: str, spec: dict[str, Any], out: str) -> Outcome:
        """Make ``out`` from ``spec`` (clip, names, values, crf: see ``plan``); ``group`` names its
        plugins and config (``Task.group``): the loaded ones serve while it stays the same."""
        from ..media import read_audio_channels

        t0 = time.perf_counter()
        if self._cancel.is_set():
            return Outcome("interrupted", 0.0)

        def check(_frames: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled

        try:
            channels, rate = read_audio_channels(spec["clip"])
        except BaseException as exc:  # noqa: BLE001
            return _failure(exc, t0)
        try:
            triple = self._load(group, spec)
        except BaseException as exc:  # noqa: BLE001
            outcome = _failure(exc, t0)
            return replace(outcome, plugins_failed=not outcome.retry)
        try:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            result = triple.render(channels, rate, Path(out), crf=spec["crf"], progress=check)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes the job's outcome
            if self._cancel.is_set() or isinstance(exc, KeyboardInterrupt):
                return Outcome("interrupted", time.perf_counter() - t0)
            return _failure(exc, t0)
        return Outcome("done", time.perf_counter() - t0, detail=f"{result.frames} frames")

    def cancel(self) -> None:
        """Stop the clip in progress (its writer deletes the partial file) and refuse queued ones."""
        self._cancel.set()

    def stats(self) -> dict[str, Any]:
        return {"loads": self.loads, "pid": os.getpid()}


def _log_to(path: Path) -> Callable[[str], None]:
    path.parent.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        with path.open("a") as f:
            f.write(line.rstrip("\n") + "\n")
    return log


def fit(spec: dict[str, Any], out: str, work: str, log_path: str) -> Outcome:
    """One ``being fit``; resumes from the checkpoint in ``work`` when an earlier attempt left one.
    A cancel (Ray raises KeyboardInterrupt, or SIGINT) stops at the end of a step, checkpointed."""
    from ..discovery import Registry
    from ..errors import Interrupted
    from ..media import check_output_dir
    from ..train.plugin import fit_dataset, trainer_of

    t0 = time.perf_counter()
    log = _log_to(Path(log_path))
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        target = check_output_dir(out, force=True)
        trainer = trainer_of(Registry.discover(), spec["contract"], spec["name"])
        summary = fit_dataset(trainer, spec["contract"], spec["name"], Path(spec["data"]), target, spec["values"],
                              format=spec["format"], head_model=spec["head_model"], test_frames=spec["test_frames"],
                              work=Path(work), log=log, announce=log, progress=False)
    except Interrupted as exc:
        log(exc.one_line())
        return Outcome("interrupted", time.perf_counter() - t0)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            return Outcome("interrupted", time.perf_counter() - t0)
        outcome = _failure(exc, t0)
        log(f"failed: {outcome.error}")
        return outcome
    lines = summary.lines()
    for line in lines:
        log(line)
    return Outcome("done", time.perf_counter() - t0, detail=lines[0] if lines else None)


def bench(spec: dict[str, Any], out: str, log_path: str) -> Outcome:
    """One ``being bench`` in a child process, into a hidden folder renamed to ``out`` when it
    succeeds. A cancel stops the child the way Ctrl-C does."""
    t0 = time.perf_counter()
    target = Path(out)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "being_kernel.cli", "bench", *spec["args"], "--out", str(tmp)]
    try:
        with open(log_path, "ab") as log:
            child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                code = child.wait()
            except BaseException:
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                return Outcome("interrupted", time.perf_counter() - t0)
        if code != 0:
            tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return Outcome("failed", time.perf_counter() - t0, f"being bench exited with {code}: {tail[0]}",
                           retry=code not in (2, 3))  # 2, 3: a bad option or plugin, which no retry fixes
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Outcome("done", time.perf_counter() - t0)

"""The driver of ``being batch``: runs the planned tasks on Ray, retries failures, records every
outcome in the manifest, and stops cleanly on Ctrl-C.

Fits run first (so renders can use what they make), then renders, then benches. Fits and benches
are Ray tasks holding the GPUs and CPUs they ask for. Renders go to long-lived workers (Ray actors),
``workers_per_gpu`` sharing each GPU, or ``cpu_workers`` on a cluster without GPUs;
a worker keeps its plugins loaded, and the driver sends it clips of the same plugin triple while
there are any, so a model loads once per worker, not once per clip."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BeingError, Interrupted
from ..media.video_writer import remove_stale_partials
from .jobfile import Settings
from .manifest import Manifest
from .plan import Task
from .workers import Outcome

#: Seconds the driver waits, after Ctrl-C, for running tasks to stop and clean up.
STOP_GRACE_S = 30.0
#: Clips queued per render worker (one running, one waiting), so a worker never idles between clips.
QUEUED_PER_WORKER = 2


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise BeingError("being batch needs Ray, which is not installed",
                         "pip install 'being-kernel[batch]' (or pip install 'ray>=2.9')") from None
    return ray


@dataclass
class Result:
    task: Task
    state: str  # done | failed | interrupted | skipped
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class _Running:
    task: Task
    attempt: int
    worker: Any = None  # the render actor, None for a Ray task


class BatchRunner:
    """Runs ``tasks`` into ``out`` (the batch folder, where ``manifest`` lives) on the Ray instance
    ``ray`` is connected to. ``progress(result)`` is told of each task that ends."""

    def __init__(self, ray: Any, tasks: list[Task], out: Path, manifest: Manifest, settings: Settings,
                 progress: Callable[[Result], None]) -> None:
        self.ray, self.tasks, self.out, self.manifest = ray, tasks, out, manifest
        self.settings, self.progress = settings, progress
        self.results: dict[str, Result] = {}
        self.running: dict[Any, _Running] = {}  # ObjectRef -> what it is
        self.workers: list[Any] = []
        self.loads = 0  # plugin triples loaded by render workers (reported by the summary)
        self.worker_count = 0  # render workers started, replacements included
        self.gpus = int(ray.cluster_resources().get("GPU", 0))
        self._remote_fns: dict[str, Any] = {}  # kind -> the Ray remote function (exported once)

    # ---- the phases -------------------------------------------------------------------------

    def run(self) -> list[Result]:
        """Every task's result, in plan order. Raises ``Interrupted`` after Ctrl-C (recorded)."""
        todo = []
        for task in self.tasks:
            remove_stale_partials(self.out / task.out)  # left by a worker killed in an earlier run
            if self.manifest.is_done(task):
                self._finish(Result(task, "skipped"))
            else:
                todo.append(task)
        try:
            self._run_remote([t for t in todo if t.kind == "fit"])
            self._run_renders([t for t in todo if t.kind == "render"])
            self._run_remote([t for t in todo if t.kind == "bench"])
        except KeyboardInterrupt:
            self._stop()
            done = sum(r.state in ("done", "skipped") for r in self.results.values())
            raise Interrupted(f"interrupted: {done} of {len(self.tasks)} tasks done, recorded in "
                              f"{self.out / 'manifest.json'}; run the same command again to do the rest") from None
        finally:
            self._kill_workers()
            for task in self.tasks:
                remove_stale_partials(self.out / task.out)
        return [self.results[t.id] for t in self.tasks]

    def _run_remote(self, tasks: list[Task]) -> None:
        """Fits or benches, each a Ray task with its resources; Ray queues what does not fit yet."""
        for task in tasks:
            self._submit_remote(task, 1)
        while self.running:
            for ref, run, outcome in self._wait():
                if (again := self._settle(run, outcome)) is not None:
                    self._submit_remote(run.task, again)

    def _run_renders(self, tasks: list[Task]) -> None:
        if not tasks:
            return
        groups: dict[str, deque[tuple[Task, int]]] = {}
        for task in tasks:
            groups.setdefault(task.group, deque()).append((task, 1))
        count = min(len(tasks), self.gpus * self._per_gpu() if self.gpus else self.settings.cpu_workers)
        self.workers = [self._new_worker() for _ in range(count)]
        self.worker_count += count
        current: dict[Any, str | None] = {w: None for w in self.workers}  # worker -> group it has loaded

        def feed(worker: Any) -> None:
            while sum(r.worker is worker for r in self.running.values()) < QUEUED_PER_WORKER and any(groups.values()):
                group = current[worker]
                if not groups.get(group):  # switch to the largest group left
                    group = max(groups, key=lambda g: len(groups[g]))
                    current[worker] = group
                task, attempt = groups[group].popleft()
                ref = worker.render.remote(task.group, task.spec, str(self.out / task.out))
                self.running[ref] = _Running(task, attempt, worker)

        for w in self.workers:
            feed(w)
        while self.running:
            for ref, run, outcome in self._wait():
                if outcome is None:  # the worker process died: replace it
                    self._replace_worker(run.worker, current)
                    outcome = Outcome("failed", 0.0, "the render worker's process died", retry=True)
                if (again := self._settle(run, outcome)) is not None:
                    groups.setdefault(run.task.group, deque()).appendleft((run.task, again))
                elif outcome.plugins_failed:  # no clip of this group can be made: fail them all now
                    for task, _ in groups.pop(run.task.group, ()):
                        self._settle(_Running(task, 0), outcome)
            for w in self.workers:
                feed(w)
        self.loads += sum(s["loads"] for s in self.ray.get([w.stats.remote() for w in self.workers]))
        self._kill_workers()  # frees their GPUs and CPUs for the benches

    # ---- Ray plumbing ---------------------------------------------------------------------------

    def _resources(self, task: Task) -> dict[str, float]:
        gpus = task.spec.get("gpus")
        return {"num_gpus": (1 if self.gpus else 0) if gpus is None else gpus, "num_cpus": task.spec.get("cpus", 1)}

    def _submit_remote(self, task: Task, attempt: int) -> None:
        from . import workers

        if task.kind not in self._remote_fns:
            self._remote_fns[task.kind] = self.ray.remote(max_retries=0)(getattr(workers, task.kind))
        fn = self._remote_fns[task.kind].options(**self._resources(task))
        log = str(self.out / "logs" / f"{task.id}.log")
        target = str(self.out / task.out)
        args = (target, target + ".fit", log) if task.kind == "fit" else (target, log)
        ref = fn.remote(task.spec, *args)
        self.running[ref] = _Running(task, attempt)

    def _per_gpu(self) -> int:
        """Render workers per GPU: the setting, else half the CPUs per GPU (measured on an H100 with 16
        cores: 1 worker 77 frames/s, 4 workers 265, 8 workers 308; docs/benchmarks.md)."""
        if self.settings.workers_per_gpu is not None:
            return self.settings.workers_per_gpu
        return max(1, int(self.ray.cluster_resources().get("CPU", 1) // (2 * self.gpus)))

    def _new_worker(self) -> Any:
        from .workers import RenderWorker

        cpus = self.ray.cluster_resources().get("CPU", 1)
        if self.gpus:
            per_gpu = self._per_gpu()
            options = {"num_gpus": 1 / per_gpu, "num_cpus": max(1, int(cpus // (self.gpus * per_gpu)))}
        else:
            options = {"num_gpus": 0, "num_cpus": max(1, int(cpus // self.settings.cpu_workers))}
        actor = self.ray.remote(concurrency_groups={"control": 1}, max_restarts=0)(RenderWorker).options(**options)
        return actor.remote()

    def _replace_worker(self, dead: Any, current: dict[Any, str | None]) -> None:
        if dead in self.workers:
            self.workers[self.workers.index(dead)] = fresh = self._new_worker()
            self.worker_count += 1
            current.pop(dead, None)
            current[fresh] = None

    def _wait(self) -> list[tuple[Any, _Running, Outcome | None]]:
        """Refs that finished (waiting for at least one), with their outcome; None: the actor died."""
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=None)
        ready += self.ray.wait([r for r in self.running if r not in ready], num_returns=len(self.running) - 1,
                               timeout=0)[0] if len(self.running) > 1 else []
        out = []
        for ref in ready:
            run = self.running.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except self.ray.exceptions.RayActorError:
                outcome = None
            except self.ray.exceptions.RayError as exc:  # the task's process died (OOM, a crash)
                outcome = Outcome("failed", 0.0, str(exc).strip().splitlines()[0], retry=True)
            out.append((ref, run, outcome))
        return out

    def _settle(self, run: _Running, outcome: Outcome) -> int | None:
        """Record ``outcome``; the next attempt's number when the task should run again."""
        if outcome.state == "failed" and outcome.retry and run.attempt <= run.task.retries:
            return run.attempt + 1
        self.manifest.record(run.task, outcome.state, run.attempt, outcome.seconds, outcome.error, outcome.detail)
        self._finish(Result(run.task, outcome.state, run.attempt, outcome.seconds, outcome.error))
        return None

    def _finish(self, result: Result) -> None:
        self.results[result.task.id] = result
        self.progress(result)

    def _stop(self) -> None:
        """After Ctrl-C: ask everything running to stop, keep what finishes within the grace
        period, record the rest as interrupted."""
        for w in self.workers:
            w.cancel.options(concurrency_group="control").remote()
        for ref, run in self.running.items():
            if run.worker is None:
                self.ray.cancel(ref)
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            while self.running and time.monotonic() < deadline:
                ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running),
                                         timeout=max(0.0, deadline - time.monotonic()))
                for ref in ready:
                    run = self.running.pop(ref)
                    try:
                        outcome = self.ray.get(ref)
                    except self.ray.exceptions.RayError:
                        outcome = Outcome("interrupted", 0.0)
                    self._settle(run, outcome if outcome.state != "failed" else Outcome("interrupted", outcome.seconds))
                if not ready:
                    break
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        for run in self.running.values():
            self._settle(run, Outcome("interrupted", 0.0))
        self.running.clear()

    def _kill_workers(self) -> None:
        for w in self.workers:
            self.ray.kill(w)
        self.workers = []

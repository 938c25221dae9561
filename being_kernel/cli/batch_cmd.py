"""``being batch``: run the render, fit and bench jobs of a job file on Ray (see docs/batch.md)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from .main import app, install_stop_handlers
from .options import overwrite_option, quiet_option, say

#: Object store of a local Ray instance: tasks pass paths and small records, never frames.
_OBJECT_STORE_BYTES = 256 * 1024 * 1024


@app.command("batch")
def batch(
    jobs: Path = typer.Argument(..., help="Job file, TOML or YAML: lists of render, fit and bench jobs, and "
                                "optional batch settings (docs/batch.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Batch folder: outputs, logs/ and manifest.json. A rerun "
                             "into the same folder skips the tasks done before."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (ray://HOST:10001 or "
                                          "HOST:6379; 'auto' for the one on this machine). Default: start a local "
                                          "Ray instance. Paths must be on storage every node sees."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=0, help="Local instance: GPUs to use (default: all)."),
    cpus: Optional[int] = typer.Option(None, "--cpus", min=1, help="Local instance: CPUs to use (default: all)."),
    retries: Optional[int] = typer.Option(None, "--retries", min=0, help="Extra attempts of a failed task (default: "
                                          "the job file's batch.retries, else 1). Bad input is not retried."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the job file and list the tasks; run nothing."),
    overwrite: bool = overwrite_option("Use an --out folder that has files but no batch manifest."),
    quiet: bool = quiet_option(),
) -> None:
    """Render, fit and bench at scale: every job of JOBS on a local Ray instance or a cluster.

    Fits run first, then renders (workers on each GPU keep their models loaded across clips), then
    benches. A failed task is retried, then reported; it never stops the others. Exit code 1 when
    any task failed.

    Example: being batch jobs.toml --out renders
    """
    from ..batch.jobfile import read_jobs
    from ..batch.manifest import FILE, Manifest
    from ..batch.plan import plan
    from ..batch.runner import import_ray
    from ..discovery import Registry
    from ..errors import ConfigError, InputError
    from ..media import check_output_dir

    echo = say(quiet)
    ray = import_ray()
    if address is not None and (gpus is not None or cpus is not None):
        raise ConfigError("--gpus and --cpus size a local Ray instance; a cluster (--address) has its own")
    job_file = read_jobs(jobs)
    if retries is not None:
        job_file.batch.retries = retries
        for job in (*job_file.fit, *job_file.render, *job_file.bench):
            job.retries = None
    tasks = plan(job_file, jobs.resolve().parent, Registry.discover())
    out = out.expanduser().resolve()
    if not (out / FILE).exists():
        out = check_output_dir(out, force=overwrite)
    elif not out.is_dir():
        raise InputError(f"output '{out}' is not a folder")
    manifest = Manifest.open(out)
    done = {t.id for t in tasks if manifest.is_done(t)}
    echo(f"{len(tasks)} tasks ({_counts(tasks)}); {len(done)} done before, {len(tasks) - len(done)} to run", err=True)
    if dry_run:
        for task in tasks:
            echo(f"{'done ' if task.id in done else 'to do'}  {task.id}  ->  {out / task.out}")
        return
    out.mkdir(exist_ok=True)
    _run(ray, tasks, out, manifest, job_file.batch, address, gpus, cpus, quiet, echo)


def _counts(tasks: list) -> str:
    kinds = [k for k in ("fit", "render", "bench") if any(t.kind == k for t in tasks)]
    return ", ".join(f"{sum(t.kind == k for t in tasks)} {k}" for k in kinds)


def _run(ray, tasks, out, manifest, settings, address, gpus, cpus, quiet, echo) -> None:  # noqa: ANN001
    from tqdm import tqdm

    from ..batch.runner import BatchRunner
    from ..batch.summary import summary_lines

    local = {} if address else {"num_gpus": gpus, "num_cpus": cpus, "object_store_memory": _OBJECT_STORE_BYTES}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **local)
    install_stop_handlers()  # Ray's driver would abort on SIGTERM, leaving the manifest behind
    try:
        resources = ray.cluster_resources()
        echo(f"ray: {'cluster ' + address if address else 'local instance'}, {resources.get('CPU', 0):g} CPUs, "
             f"{resources.get('GPU', 0):g} GPUs", err=True)
        with tqdm(total=len(tasks), unit="task", desc="being batch", disable=quiet) as bar:
            said: set[str] = set()

            def progress(result) -> None:  # noqa: ANN001 - runner.Result
                bar.update(1)
                if result.state == "failed" and result.error not in said:  # each distinct error once
                    said.add(result.error)
                    bar.write(f"being: failed: {result.task.id}: {result.error}", file=sys.stderr)
            runner = BatchRunner(ray, tasks, out, manifest, settings, progress)
            t0 = time.perf_counter()
            results = runner.run()
            wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    for line in summary_lines(results, wall, runner.worker_count, runner.loads):
        echo(line)
    failed = [r for r in results if r.state == "failed"]
    if failed:
        typer.echo(f"being: error: {len(failed)} of {len(results)} tasks failed (errors above and in "
                   f"{out / 'manifest.json'}); run the same command again to retry them", err=True)
        raise typer.Exit(1)

"""Turn a job file into tasks: one per output (a clip rendered with one plugin triple and
variant, a fit, a bench), each with a stable id, its output path and a key that changes when
anything that shapes the output changes. Everything checkable is checked here, before any work:
plugins, config values, input paths, name clashes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from itertools import product
from pathlib import Path
from typing import Any

from .. import config as cfg
from ..media.clip import CONTRACTS, select
from ..discovery import Registry
from ..errors import BeingError, ConfigError, InputError
from ..hooks import HOOK_GROUP
from .jobfile import BenchJob, FitJob, JobFile, RenderJob, plugin_names

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class Task:
    """One unit of work. ``id`` names it in the manifest and the logs (``render/JOB/COMBO/CLIP``,
    ``fit/JOB``, ``bench/JOB``); ``out`` is its output, relative to the batch's folder."""

    id: str
    kind: str  # render | fit | bench
    job: str
    out: str
    retries: int
    key: str  # a digest of everything that shapes the output
    spec: dict[str, Any] = field(repr=False)  # what the worker needs, JSON-able

    @property
    def group(self) -> str:
        """Render tasks with the same group use the same loaded plugins."""
        if self.kind != "render":
            return self.id
        return json.dumps([self.spec["names"], self.spec["values"]], sort_keys=True)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_stamp(path: Path) -> list:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _clips(job: RenderJob, base: Path) -> list[Path]:
    """The speech files of a render job, in order; InputError for a missing path or empty folder."""
    out: list[Path] = []
    for entry in [job.input] if isinstance(job.input, str) else job.input:
        path = (base / entry).expanduser().resolve()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise InputError(f"render job '{job.name}': input folder {path} has no {', '.join(AUDIO_SUFFIXES)} files")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise InputError(f"render job '{job.name}': input {path} does not exist")
    stems: dict[str, Path] = {}
    for p in out:
        if (other := stems.setdefault(p.stem, p)) != p:
            raise InputError(f"render job '{job.name}': inputs {other} and {p} would write the same video '{p.stem}.mp4'",
                             "rename one, or put them in separate jobs")
    return out


def _render_tasks(job: RenderJob, base: Path, registry: Registry, retries: int) -> list[Task]:
    try:
        common = cfg.merge(job.config, cfg.parse_sets(job.set, CONTRACTS))
    except ConfigError as exc:
        raise ConfigError(f"render job '{job.name}': {exc}", exc.hint) from None
    clips = _clips(job, base)
    variants: list[tuple[str | None, cfg.Sections]] = list(job.variants.items()) or [(None, {})]
    tasks = []
    combos = product(plugin_names(job.audio), plugin_names(job.avatar), plugin_names(job.torso), variants)
    for audio, avatar, torso, (variant, tables) in combos:
        values = cfg.merge(common, tables)
        try:
            selection = select(registry, {"audio": audio, "avatar": avatar, "torso": torso}, values)
        except BeingError as exc:
            label = "" if variant is None else f" (variant '{variant}')"
            raise type(exc)(f"render job '{job.name}'{label}: {exc}", exc.hint) from None
        combo = "+".join(selection.names[c] for c in CONTRACTS) + (f"+{variant}" if variant else "")
        for clip in clips:
            spec = {"clip": str(clip), "names": selection.names, "values": selection.values, "crf": job.crf}
            tasks.append(Task(f"render/{job.name}/{combo}/{clip.stem}", "render", job.name,
                              f"render/{job.name}/{combo}/{clip.stem}.mp4", retries,
                              _digest([spec, _file_stamp(clip)]), spec))
    return tasks


def _fit_task(job: FitJob, base: Path, registry: Registry, retries: int) -> Task:
    from ..train.plugin import trainer_of

    data = (base / job.data).expanduser().resolve()
    if not data.is_dir():
        raise InputError(f"fit job '{job.name}': data {data} is not a folder", "give a dataset made by being prepare "
                         "or being make-dataset")
    contract, name = job.contract
    try:
        spec = trainer_of(registry, contract, name)
        values = cfg.merge({"fit": job.config}, cfg.parse_sets(job.set, ("fit",)))
        cfg.build(spec.trainer.config, "fit", values.get("fit", {}))  # the dataset's defaults fill in the rest at run time
    except BeingError as exc:
        raise type(exc)(f"fit job '{job.name}': {exc}", exc.hint) from None
    task_spec = {"data": str(data), "contract": contract, "name": name, "values": values, "format": job.format,
                 "head_model": job.head_model, "test_frames": job.test_frames, "gpus": job.gpus, "cpus": job.cpus}
    return Task(f"fit/{job.name}", "fit", job.name, f"fit/{job.name}", retries, _digest(task_spec), task_spec)


def _bench_task(job: BenchJob, retries: int) -> Task:
    if not any(ep.name == "bench" for ep in entry_points(group=HOOK_GROUP)):  # the command comes through a hook
        raise ConfigError(f"bench job '{job.name}': being bench is not installed",
                          "pip install being-bench (plugins/bench in the repository)")
    spec = {"args": job.args, "gpus": job.gpus, "cpus": job.cpus}
    return Task(f"bench/{job.name}", "bench", job.name, f"bench/{job.name}", retries, _digest(spec), spec)


def plan(jobs: JobFile, base: Path, registry: Registry) -> list[Task]:
    """Every task of ``jobs`` in run order: fits, renders (grouped by plugin triple), benches.
    ``base``: the folder relative paths in the file start from (the job file's)."""
    default = jobs.batch.retries
    tasks = [_fit_task(j, base, registry, default if j.retries is None else j.retries) for j in jobs.fit]
    for job in jobs.render:
        tasks += _render_tasks(job, base, registry, default if job.retries is None else job.retries)
    tasks += [_bench_task(j, default if j.retries is None else j.retries) for j in jobs.bench]
    return tasks

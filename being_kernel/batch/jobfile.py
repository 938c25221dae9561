"""The job file of ``being batch``: TOML or YAML, validated by pydantic; an error names the job
and the field.

    [batch]                      # optional: settings for the whole file
    retries = 1                  # extra attempts of a failed job (input errors are not retried)

    [[fit]]                      # fit jobs run first, so render jobs may use their assets
    name = "alice"
    data = "datasets/alice"      # paths are relative to the job file
    avatar = "splatting"         # or torso = "..." or audio = "..." (one)
    set = ["fit.max_minutes=5"]

    [[render]]
    name = "lectures"
    input = ["talks/", "intro.wav"]     # speech files, or folders of .wav .flac .ogg .mp3
    avatar = ["splatting", "flash"]     # a name or a list: every combination is rendered
    set = ["torso.size=[512,512]"]
    [render.variants.sd]                # optional: named config variants, each rendered
    [render.variants.hd]                # (sd, empty, is the config and set alone)
    torso = { size = [1024, 1024] }

    [[bench]]                    # optional: a `being bench` run (needs being-bench)
    name = "sizes"
    args = ["--size", "256,512"]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import read_document
from ..errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
Names = Union[str, list[str], None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Settings(_Strict):
    """The ``[batch]`` table."""

    retries: int = Field(1, ge=0, description="Extra attempts of a failed job before it is reported as failed. "
                         "Bad input (a corrupt file, a wrong config value) is not retried.")
    workers_per_gpu: int | None = Field(None, ge=1, description="Render workers sharing each GPU (a worker alone "
                                        "leaves a GPU mostly idle: phone recognition and H.264 encoding run on the "
                                        "CPU). None: half the CPUs per GPU, at least 1.")
    cpu_workers: int = Field(1, ge=1, description="Render workers when the cluster has no GPU; each gets an "
                             "equal share of the CPUs.")


class _Job(_Strict):
    name: str = Field(description="Unique in the file: letters, digits, '_', '-', '.'; names the outputs.")
    retries: int | None = Field(None, ge=0, description="This job's retries (default: [batch] retries).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("use letters, digits, '_', '-' and '.', starting with a letter or digit")
        return value


def plugin_names(value: Names) -> list[str | None]:
    """A plugin field: one name, a list of names, or None (the default plugin)."""
    if value is None:
        return [None]
    return [value] if isinstance(value, str) else list(value)


class RenderJob(_Job):
    """Speech files x audio x avatar x torso plugins x variants, one MP4 each."""

    kind: Literal["render"] = "render"
    input: Union[str, list[str]] = Field(description="Speech files or folders (their .wav, .flac, .ogg, .mp3).")
    audio: Names = None
    avatar: Names = None
    torso: Names = None
    config: dict[str, dict[str, Any]] = Field({}, description="Tables audio, avatar, torso (as being run --config).")
    set: list[str] = Field([], description="CONTRACT.FIELD=VALUE, as being run --set; wins over config.")
    variants: dict[str, dict[str, dict[str, Any]]] = Field(
        {}, description="Named tables audio/avatar/torso; when given, each variant is rendered (an empty one: "
                        "config and set alone). A variant wins over config and set.")
    crf: int = Field(18, ge=0, le=51, description="H.264 quality (as being run --crf).")

    @field_validator("audio", "avatar", "torso")
    @classmethod
    def _plugins(cls, value: Names) -> Names:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one plugin name, or leave the field out for the default")
        return value

    @field_validator("config")
    @classmethod
    def _tables(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for key in value:
            if key not in ("audio", "avatar", "torso"):
                raise ValueError(f"unknown table '{key}': use audio, avatar and torso")
        return value

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        for name, tables in value.items():
            if not NAME.fullmatch(name):
                raise ValueError(f"variant name {name!r}: use letters, digits, '_', '-' and '.'")
            cls._tables(tables)
        return value


class FitJob(_Job):
    """One ``being fit``: a dataset and the plugin to train on it."""

    kind: Literal["fit"] = "fit"
    data: str = Field(description="The dataset folder (as being fit --data).")
    avatar: str | None = None
    torso: str | None = None
    audio: str | None = None
    config: dict[str, Any] = Field({}, description="The trainer's fields (being fit --config's fit table).")
    set: list[str] = Field([], description="fit.FIELD=VALUE, as being fit --set; wins over config.")
    format: str = "auto"
    head_model: str | None = None
    test_frames: int | None = Field(None, ge=0)
    gpus: float | None = Field(None, ge=0, description="GPUs the job holds (default: 1 when the cluster has any).")
    cpus: float = Field(1, gt=0)

    @model_validator(mode="after")
    def _one_plugin(self) -> FitJob:
        if sum(x is not None for x in (self.avatar, self.torso, self.audio)) > 1:
            raise ValueError("give one of avatar, torso or audio: one plugin is trained per job")
        return self

    @property
    def contract(self) -> tuple[str, str]:
        """(contract, plugin name) trained; the default is the splatting avatar, as being fit."""
        for c in ("avatar", "torso", "audio"):
            if (name := getattr(self, c)) is not None:
                return c, name
        return "avatar", "splatting"


class BenchJob(_Job):
    """One ``being bench`` run, its options as on its command line (--out is the batch's)."""

    kind: Literal["bench"] = "bench"
    args: list[str] = []
    gpus: float | None = Field(None, ge=0, description="GPUs the job holds (default: 1 when the cluster has any).")
    cpus: float = Field(1, gt=0)

    @field_validator("args")
    @classmethod
    def _no_out(cls, value: list[str]) -> list[str]:
        if any(a in ("--out", "-o") or a.startswith("--out=") for a in value):
            raise ValueError("leave out --out: the batch writes the bench to OUT/bench/NAME")
        return value


class JobFile(_Strict):
    batch: Settings = Settings()
    fit: list[FitJob] = []
    render: list[RenderJob] = []
    bench: list[BenchJob] = []

    @model_validator(mode="after")
    def _unique(self) -> JobFile:
        seen: set[str] = set()
        for job in (*self.fit, *self.render, *self.bench):
            if job.name in seen:
                raise ValueError(f"two jobs are named '{job.name}': names must be unique")
            seen.add(job.name)
        if not seen:
            raise ValueError("no jobs: add [[render]], [[fit]] or [[bench]] tables")
        return self


def _where(raw: Any, loc: tuple) -> str:
    """``render[2] 'talks'`` for a location inside a job list, else the dotted location."""
    if len(loc) >= 2 and loc[0] in ("render", "fit", "bench") and isinstance(loc[1], int):
        try:
            name = raw[loc[0]][loc[1]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            name = None
        job = f"{loc[0]} job '{name}'" if isinstance(name, str) else f"{loc[0]} job #{loc[1] + 1}"
        field = ".".join(str(p) for p in loc[2:])
        return job + (f": {field}" if field else "")
    return ".".join(str(p) for p in loc) or "the job file"


def read_jobs(path: Path) -> JobFile:
    """The validated job file at ``path``; one ConfigError line naming the job and field otherwise."""
    raw = read_document(path, "job file")
    if not isinstance(raw, dict):
        raise ConfigError(f"job file {path}: expected tables at the top level ([[render]], [[fit]], [[bench]])")
    try:
        return JobFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _where(raw, tuple(err["loc"]))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"job file {path}: {where}: {msg}{more}") from None

"""The JSON that ``being bench`` writes, as pydantic models (``BenchRun.model_json_schema()`` is the
JSON Schema). Format ``being-bench``, version 1.

Every cell carries every figure of ``FIGURES``: a measured value with its unit and spread, or
``value: null`` with the reason it is missing. A cell that could not run at all has ``status``
"skipped" (it was never started: plugin missing, no CUDA) or "failed" (its process or its set-up
failed), and each of its figures gives that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMAT = "being-bench"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FigureDef:
    unit: str
    label: str  # short column title
    meaning: str  # one line for --help, the Markdown legend and docs


#: Every figure a cell reports, in report order.
FIGURES: dict[str, FigureDef] = {
    "motion_rtf": FigureDef("s/s", "motion RTF",
                            "audio model, batch call on the clip (on a thread of its own, as the pipeline calls it): "
                            "seconds of compute per second of audio"),
    "render_fps": FigureDef("frames/s", "render fps",
                            "head renderer on the clip's motion as the pipeline calls it (its stream, fed packets of "
                            "--chunk-frames motion frames, on a thread of its own): skinning, host-to-device copies "
                            "and rasterization"),
    "composite_fps": FigureDef("frames/s", "composite fps",
                               "torso compositor on the rendered heads as the pipeline calls it (its stream, one head "
                               "frame per push, on a thread of its own)"),
    "e2e_fps_no_encode": FigureDef("frames/s", "e2e fps",
                                   "whole pipeline (being run's offline path on the bus), frames copied to host "
                                   "memory as uint8, no encoding; motion generation included"),
    "e2e_fps_encode": FigureDef("frames/s", "e2e+H.264 fps",
                                "the same into a real MP4 (H.264 + AAC, Mp4Writer, crf 18, preset medium)"),
    "stream_first_frame_latency_ms": FigureDef("ms", "first frame ms",
                                               "streaming: from pushing the first audio chunk to the first "
                                               "composited frame in host memory"),
    "stream_steady_latency_ms": FigureDef("ms", "steady ms",
                                          "streaming: per audio chunk, from its push to the last frame it made "
                                          "final in host memory (after the first frame)"),
    "stream_rtf": FigureDef("s/s", "stream RTF",
                            "streaming, unpaced: wall seconds per second of audio (< 1 keeps up with real time)"),
    "stream_lag_drift_ms": FigureDef("ms", "lag drift ms",
                                     "streaming paced in real time: growth of the frame lag behind the audio "
                                     "from the first to the last tenth of the run (0: no drift)"),
    "stream_pts_drift_ms": FigureDef("ms", "pts drift ms",
                                     "streaming: last frame's pts + one frame minus the audio duration "
                                     "(within half a frame when the video is frame-exact)"),
    "stream_frames_exact": FigureDef("bool", "frame-exact",
                                     "streaming: round(duration x fps) frames out, frame k at pts k / fps"),
    "stream_dropped_frames": FigureDef("frames", "dropped",
                                       "streaming: frames dropped by the live bus and repeated at the sink"),
    "peak_rss_mb": FigureDef("MB", "peak RSS MB",
                             "peak resident memory of the cell's own process (interpreter, torch and plugins "
                             "included)"),
    "peak_gpu_mb": FigureDef("MB", "peak GPU MB", "peak CUDA memory allocated by torch in the cell's process"),
    "bilabial_closure": FigureDef("fraction", "p/b/m closed",
                                  "p/b/m phones of the clip's .segs with the lips closed within 40 ms of "
                                  "their middle"),
    "vowel_opening": FigureDef("fraction", "vowels open",
                               "vowels of the clip's .segs with the lips apart at their middle (the control: "
                               "a shut mouth scores 0)"),
    "avatar_psnr": FigureDef("dB", "PSNR", "fitted avatar against held-out frames of --data (being eval)"),
    "avatar_ssim": FigureDef("", "SSIM", "fitted avatar against held-out frames of --data (being eval)"),
    "avatar_lpips": FigureDef("", "LPIPS", "fitted avatar against held-out frames of --data (being eval)"),
}


class Figure(BaseModel):
    """One figure of a cell: ``value`` with ``unit``, or ``value: null`` and ``reason``.

    For repeated measurements ``value`` is the median of ``n`` runs, with quartiles, extremes and
    the raw ``samples``; p90/p99 are given for latency distributions."""

    model_config = ConfigDict(extra="forbid")

    value: bool | int | float | None
    unit: str
    reason: str | None = None
    n: int | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    iqr: float | None = None
    min: float | None = None
    max: float | None = None
    p90: float | None = None
    p99: float | None = None
    samples: list[float] | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _value_or_reason(self) -> Figure:
        if (self.value is None) == (not self.reason):
            raise ValueError("a figure has either a value or a reason why it is missing, never both or neither")
        return self


class Clip(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    path: str | None = Field(description="the audio file; None for the generated demo speech")
    duration_s: float | None = None
    segs: str | None = Field(None, description="phone timing ground truth (.segs) when there is one")


class Cell(BaseModel):
    """One combination of the matrix: plugins x size x device x clip."""

    model_config = ConfigDict(extra="forbid")

    id: str
    audio: str
    avatar: str
    torso: str
    size: tuple[int, int]
    device: str
    clip: Clip
    status: Literal["ok", "skipped", "failed"]
    reason: str | None = None
    tuned: str | None = Field(None, description="the plugins' bench settings this cell ran with; None: being run's "
                              "own defaults")
    config: dict[str, dict[str, Any]] = Field(default_factory=dict, description="plugin configs as used")
    info: dict[str, Any] = Field(default_factory=dict, description="what the built plugins declared")
    warnings: list[str] = Field(default_factory=list)
    figures: dict[str, Figure]

    @model_validator(mode="after")
    def _every_figure(self) -> Cell:
        if set(self.figures) != set(FIGURES):
            missing, extra = sorted(set(FIGURES) - set(self.figures)), sorted(set(self.figures) - set(FIGURES))
            raise ValueError(f"cell {self.id}: figures missing {missing}, unknown {extra}")
        if (self.status != "ok") != bool(self.reason):
            raise ValueError(f"cell {self.id}: a reason is given exactly when the status is not ok")
        return self


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repeats: int
    warmup: int | None = Field(description="None: each cell uses its plugins' bench warm-up")
    chunk_frames: int | None = Field(description="motion frames per pipeline packet; None: being run's (the "
                                     "renderer's batch_frames)")
    chunk_s: float
    stream_seconds: float
    realtime: bool
    crf: int
    data: str | None
    sets: list[str]


class BenchRun(BaseModel):
    """The whole output of one ``being bench`` run."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["being-bench"] = FORMAT
    format_version: Literal[1] = FORMAT_VERSION
    created: str
    command: list[str]
    being_version: str
    machine: dict[str, Any]
    settings: Settings
    cells: list[Cell]
    plots: list[str] = Field(default_factory=list)
    plots_skipped: str | None = None


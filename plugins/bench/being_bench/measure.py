"""The measurements of one cell, run in the cell's own process (see ``worker``).

Each timed figure is ``warmup`` untimed runs and then ``repeats`` timed runs (``timing.Timer``:
CUDA events on the GPU) of exactly what the pipeline does: the audio model's batch call on the
clip; the renderer on the clip's motion and the compositor on the rendered heads, each called as
``run_pipeline``'s stages call them (``render_as_pipeline``, ``composite_as_pipeline``: the
stage's stream, fed the packets the pipeline feeds it; skinning, copies to the device and
rasterization inside the timed call); and the whole pipeline through ``run_pipeline``. Like the
pipeline's bus, which runs each stage on a thread of its own, each stage's call runs on a fresh
thread named as the bus names it (``on_stage_thread``): on a CPU the same torch calls run at
different speeds on a process's main thread and on another one (each thread that calls torch has
its own OpenMP pool). On the idle 2-core development machine (2026-12-01) the splatting renderer
drew 8-frame batches at 256² at 11.1 frames/s on the main thread and 6.4 on a second thread once
the main thread had used torch. A measurement that fails gives its figures the failure as their
reason and the others go on.

Each measurement says when it starts and what it measured through ``say`` (the worker prints
those lines for the runner to pass on), so a long cell shows progress figure by figure.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch

from being_kernel import BeingError
from being_kernel.api import (Audio, AudioToFlame, FlameRenderer, Frame, Motion, Registry, StageCheck, TorsoCompositor,
                              build_config, build_plugin, check_stages, close_all, packet_frames, pose_only,
                              run_pipeline)
from being_kernel.media import Mp4Writer, demo_speech, read_audio_channels, resample

from .clips import DEMO_CLIP_S
from .figures import all_missing, measured, missing, one_line, single
from .matrix import CONTRACTS, CellPlan
from .memory import peak_gpu_mb, peak_rss_mb, reset_gpu_peak, rss_mb
from .quality import AVATAR_FIGURES, lip_figures
from .report import format_figure
from .schema import FIGURES, Cell, Figure, Settings
from .stream import HostSink, StreamTrace, stream_run
from .timing import Timer

Figures = dict[str, Figure]
T = TypeVar("T")
#: Where a cell's progress lines go (the worker prints them for the runner to pass on).
Say = Callable[[str], None]


@dataclass
class ClipAudio:
    channels: np.ndarray  # float32 [C, N] at ``rate``, for the MP4's audio track
    rate: int
    mono: Audio  # at the audio plugin's rate


def load_clip(plan: CellPlan, sample_rate: int) -> ClipAudio:
    if plan.clip.path is None:
        demo = demo_speech(plan.clip.duration_s or DEMO_CLIP_S)
        channels, rate = demo.samples[None, :], demo.sample_rate
    else:
        channels, rate = read_audio_channels(plan.clip.path)
    mono = Audio(resample(channels.mean(axis=0, dtype=np.float32), rate, sample_rate), sample_rate)
    return ClipAudio(channels, rate, mono)


def tiled(audio: Audio, seconds: float) -> Audio:
    """``audio`` repeated end to end (or cut) to ``seconds``."""
    n = max(1, round(seconds * audio.sample_rate))
    return Audio(np.resize(audio.samples, n).astype(np.float32), audio.sample_rate)


def on_stage_thread(name: str, fn: Callable[[], T]) -> T:
    """``fn()`` on a fresh thread named ``name``, as the pipeline's bus runs a stage (its threads
    are ``being-audio``, ``being-avatar``, ``being-torso``, ``being-sink``); its result, or its
    exception raised here."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def render_as_pipeline(renderer: FlameRenderer, motion: Motion, chunk_frames: int) -> list[Frame]:
    """The clip's ``motion`` rendered as ``run_pipeline`` renders it: one ``open_stream()``, a
    ``push`` per packet of ``chunk_frames`` motion frames (cut with ``Motion.slice``, as the
    pipeline's source cuts the audio model's motion), then ``finish()``. ``motion`` is what the
    renderer gets (already ``pose_only`` for a pose-only renderer), where the audio model left it."""
    stream = renderer.open_stream()
    frames: list[Frame] = []
    for start in range(0, motion.num_frames, chunk_frames):
        frames += stream.push(motion.slice(start, start + chunk_frames))
    return frames + stream.finish()


def composite_as_pipeline(compositor: TorsoCompositor, heads: Sequence[Frame]) -> list[Frame]:
    """``heads`` composited as ``run_pipeline`` composites them: one ``open_stream()``, a ``push``
    of each head frame on its own (the pipeline's render stage hands frames on one by one), then
    ``finish()``."""
    stream = compositor.open_stream()
    frames: list[Frame] = []
    for head in heads:
        frames += stream.push([head])
    return frames + stream.finish()


def _close(plugins: dict[str, Any]) -> str | None:
    """Close the plugins; a failure to close is reported, not raised (the figures stand)."""
    try:
        close_all(*plugins.values())
    except Exception as exc:  # noqa: BLE001
        return one_line(exc)
    return None


def _not_run(plan: CellPlan, status: str, reason: str) -> Cell:
    return Cell(id=plan.id, tuned=plan.tuned, audio=plan.audio, avatar=plan.avatar, torso=plan.torso, size=plan.size,
                device=plan.device, clip=plan.clip, status=status, reason=reason, config=plan.values,
                figures=all_missing(reason))


def _attempt(names: tuple[str, ...], fn: Callable[[], Figures]) -> Figures:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not cost the others
        return all_missing(f"failed: {one_line(exc)}", names)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe(figures: Figures) -> str:
    """One progress line's worth of ``figures``: each measured one as the tables give it; when none
    was measured, the (first) reason."""
    shown = [f"{FIGURES[n].label} {format_figure(f, {})}" for n, f in figures.items() if f.value is not None]
    if shown:
        return "; ".join(shown)
    reason = next((f.reason for f in figures.values() if f.reason), "nothing measured")
    return f"{', '.join(FIGURES[n].label for n in figures)}: {_shorten(reason or '')}"


class _Measure:
    def __init__(self, plan: CellPlan, settings: Settings, a: AudioToFlame, r: FlameRenderer, t: TorsoCompositor,
                 check: StageCheck, clip: ClipAudio, say: Say | None = None) -> None:
        self.plan, self.settings, self.a, self.r, self.t, self.check, self.clip = plan, settings, a, r, t, check, clip
        self.say: Say = say or (lambda line: None)
        self.device = torch.device(plan.device)
        self.timer = Timer(self.device)
        self.motion: Motion | None = None
        self.frames: list[Frame] | None = None
        # motion frames per pipeline packet: --chunk-frames, else what run_pipeline picks for this renderer
        self.chunk_frames = settings.chunk_frames or packet_frames(r)

    def _repeat(self, fn: Callable[[], Any]) -> tuple[list[float], Any]:
        return self.timer.repeat(fn, self.plan.warmup, self.settings.repeats)

    def runs(self) -> str:
        return f"{self.plan.warmup} warm-up + {self.settings.repeats} timed runs"

    def step(self, title: str, names: tuple[str, ...], fn: Callable[[], Figures], detail: str = "") -> Figures:
        """``_attempt(names, fn)``, saying before that it starts and after what it measured."""
        self.say(f"{title}: {detail or self.runs()} ...")
        t0 = time.monotonic()
        figures = _attempt(names, fn)
        self.say(f"{describe(figures)} ({time.monotonic() - t0:.0f} s)")
        return figures

    def motion_rtf(self) -> Figures:
        audio = self.clip.mono
        times, self.motion = self._repeat(lambda: on_stage_thread("being-audio", lambda: self.a.generate(audio)))
        return {"motion_rtf": measured([s / audio.duration for s in times], "s/s",
                                       note="the batch call on the clip, on a thread of its own as run_pipeline's "
                                            "source calls it")}

    def render(self) -> Figures:
        if self.motion is None:
            return all_missing("no motion: motion generation failed", ("render_fps",))
        motion = pose_only(self.motion) if self.check.pose_only else self.motion
        chunk = self.chunk_frames
        times, self.frames = self._repeat(lambda: on_stage_thread("being-avatar",
                                                                  lambda: render_as_pipeline(self.r, motion, chunk)))
        return {"render_fps": measured([motion.num_frames / s for s in times], "frames/s",
                                       note=f"{motion.num_frames} frames per run, pushed to the renderer's stream in "
                                            f"packets of {chunk} motion frames on a thread of its own, as run_pipeline "
                                            "renders")}

    def composite(self) -> Figures:
        frames = self.frames
        if frames is None:
            return all_missing("no head frames: rendering failed", ("composite_fps",))
        times, _ = self._repeat(lambda: on_stage_thread("being-torso", lambda: composite_as_pipeline(self.t, frames)))
        self.frames = None  # the clip's frames held at once are not what the pipeline needs: free them
        return {"composite_fps": measured([len(frames) / s for s in times], "frames/s",
                                          note=f"{len(frames)} frames per run, pushed to the compositor's stream one "
                                               "by one on a thread of its own, as run_pipeline composites")}

    def _pipeline(self, sink_factory: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            return run_pipeline(self.a, self.r, self.t, self.clip.mono, sink_factory(), mode="offline", check=self.check,
                                chunk_frames=self.chunk_frames)
        return run

    def e2e(self) -> Figures:
        reset_gpu_peak(self.device)
        n = self.clip.mono.num_frames(self.a.info().fps)
        times, _ = self._repeat(self._pipeline(lambda: HostSink()))
        return {"e2e_fps_no_encode": measured([n / s for s in times], "frames/s")}

    def peak_gpu(self, e2e: Figure) -> Figure:
        """The peak CUDA memory over the offline pipeline runs (``e2e``, then ``e2e_encode``)."""
        if e2e.value is None:
            return missing("peak_gpu_mb", e2e.reason or "the offline pipeline did not run")
        return single(peak_gpu_mb(self.device), "MB", note="torch.cuda.max_memory_allocated over the offline pipeline runs")

    def e2e_encode(self) -> Figures:
        n = self.clip.mono.num_frames(self.a.info().fps)
        size, fps = self.t.info().size, self.a.info().fps
        with tempfile.TemporaryDirectory(prefix="being-bench-") as tmp:
            out = Path(tmp) / "bench.mp4"
            writer = lambda: Mp4Writer(out, fps, size, self.clip.channels, self.clip.rate,  # noqa: E731
                                       crf=self.settings.crf)
            times, _ = self._repeat(self._pipeline(writer))
        return {"e2e_fps_encode": measured([n / s for s in times], "frames/s",
                                           note=f"libx264 crf {self.settings.crf} preset medium, AAC audio")}

    def stream(self) -> Figures:
        s, realtime = self.settings, self.settings.realtime
        run = lambda audio: stream_run(self.a, self.r, self.t, self.check, audio, s.chunk_s, realtime)  # noqa: E731
        short = tiled(self.clip.mono, self.a.info().latency_s + 1.0)  # enough audio for the first frames
        for _ in range(self.plan.warmup):
            run(short)
        firsts = [run(short).first_frame_latency() * 1e3 for _ in range(s.repeats)]
        trace = run(tiled(self.clip.mono, s.stream_seconds))
        return {"stream_first_frame_latency_ms": measured(firsts, "ms"), **self._steady(trace)}

    def _steady(self, trace: StreamTrace) -> Figures:
        s = self.settings
        pacing = "pushed at the audio's real pace" if s.realtime else "each pushed once the previous one's frames were out"
        note = f"{s.stream_seconds:g} s of audio in {s.chunk_s * 1e3:g} ms chunks, {pacing}"
        if (flush := trace.flush_latency()) is not None:
            note += f"; the end-of-stream flush of {trace.flush[2]} frames took {flush * 1e3:.0f} ms (not included)"
        if trace.gate_timeouts:
            note += f"; {trace.gate_timeouts} chunks waited over 30 s and were pushed anyway"
        latencies = [x * 1e3 for x in trace.chunk_latencies()]
        out = {
            "stream_steady_latency_ms": (measured(latencies, "ms", tails=True, note=note) if latencies
                                         else missing("stream_steady_latency_ms", "the stream made all its frames in one chunk")),
            "stream_pts_drift_ms": single(trace.pts_drift() * 1e3, "ms"),
            "stream_frames_exact": single(trace.frames_exact(), "bool",
                                          note=f"{len(trace.exits)} frames out, {trace.expected_frames} expected"),
            "stream_dropped_frames": single(trace.dropped, "frames"),
        }
        if s.realtime:
            out["stream_rtf"] = missing("stream_rtf", "paced in real time (--realtime): see stream_lag_drift_ms")
            out["stream_lag_drift_ms"] = single(trace.lag_drift() * 1e3, "ms", note=note)
        else:
            out["stream_rtf"] = single(trace.wall_per_audio_s(), "s/s", note=note)
            out["stream_lag_drift_ms"] = missing("stream_lag_drift_ms", "needs --realtime (audio pushed at its real pace)")
        return out


def _size_warnings(plan: CellPlan, r: FlameRenderer, t: TorsoCompositor) -> list[str]:
    out = []
    for contract, name, size in (("avatar", plan.avatar, r.info().size), ("torso", plan.torso, t.info().size)):
        if tuple(size) != tuple(plan.size):
            out.append(f"--{contract} {name} makes {size[0]}x{size[1]} images, not the cell's {plan.size[0]}x{plan.size[1]} "
                       "(its config has no size field)")
    return out


def _info(plan: CellPlan, settings: Settings, a: AudioToFlame, r: FlameRenderer, t: TorsoCompositor, check: StageCheck,
          clip: ClipAudio) -> dict[str, Any]:
    ai, ri, ti = a.info(), r.info(), t.info()
    return {"motion_space": ai.motion_space, "fps": ai.fps, "sample_rate": ai.sample_rate, "audio_latency_s": ai.latency_s,
            "render_size": list(ri.size), "output_size": list(ti.size), "pose_only": check.pose_only,
            "renderer_latency_frames": ri.latency_frames, "compositor_latency_frames": ti.latency_frames,
            "frames": clip.mono.num_frames(ai.fps), "warmup": plan.warmup, "repeats": settings.repeats,
            "torch_threads": torch.get_num_threads()}


def measure_cell(plan: CellPlan, settings: Settings, say: Say | None = None) -> Cell:
    """Build the cell's plugins and measure every figure; never raises for a plugin's fault.
    ``say`` gets a line as the set-up and each measurement starts and ends."""
    after_imports = rss_mb()
    plugins: dict[str, Any] = {}
    say = say or (lambda line: None)
    say("set-up: building the plugins, loading the clip ...")
    t0 = time.monotonic()
    try:
        registry = Registry.discover()
        names = (plan.audio, plan.avatar, plan.torso)
        for contract, name in zip(CONTRACTS, names):
            spec = registry.spec(contract, name)
            plugins[contract] = build_plugin(spec, build_config(spec.config, contract, plan.values.get(contract, {})), contract, name)
        a, r, t = plugins["audio"], plugins["avatar"], plugins["torso"]
        check = check_stages(a, r, t, names, suggest=registry.providers)
        clip = load_clip(plan, a.info().sample_rate)
    except BeingError as exc:
        _close(plugins)
        say(f"set-up: the cell cannot run: {_shorten(exc.one_line())} ({time.monotonic() - t0:.0f} s)")
        return _not_run(plan, "skipped", exc.one_line())
    except Exception as exc:  # noqa: BLE001 - reported in the cell
        _close(plugins)
        say(f"set-up failed: {_shorten(one_line(exc))} ({time.monotonic() - t0:.0f} s)")
        return _not_run(plan, "failed", f"set-up failed: {one_line(exc)}")
    say(f"set-up done: {clip.mono.num_frames(a.info().fps)} frames of motion from {clip.mono.duration:.1f} s of audio "
        f"({time.monotonic() - t0:.0f} s)")
    try:
        m = _Measure(plan, settings, a, r, t, check, clip, say)
        figures = _measure_all(m, plan, settings, after_imports)
        info, warnings = _info(plan, settings, a, r, t, check, clip), check.warnings + _size_warnings(plan, r, t)
        configs = {c: p.config.model_dump(mode="json") for c, p in plugins.items()}
    finally:
        problem = _close(plugins)
    if problem:
        warnings.append(f"closing the plugins failed: {problem}")
    return Cell(id=plan.id, tuned=plan.tuned, audio=plan.audio, avatar=plan.avatar, torso=plan.torso, size=plan.size, device=plan.device,
                clip=plan.clip.model_copy(update={"duration_s": clip.mono.duration}), status="ok", config=configs,
                info=info, warnings=warnings, figures=figures)


def _measure_all(m: _Measure, plan: CellPlan, settings: Settings, after_imports: float | None) -> Figures:
    cuda = m.device.type == "cuda"
    figures: Figures = {}
    s, chunk = settings, m.chunk_frames
    figures |= m.step("motion RTF", ("motion_rtf",), m.motion_rtf)
    figures |= m.step("render fps", ("render_fps",), m.render, f"{m.runs()}, packets of {chunk} motion frames")
    figures |= m.step("composite fps", ("composite_fps",), m.composite)
    figures |= m.step("e2e fps", ("e2e_fps_no_encode",), m.e2e, f"{m.runs()} of run_pipeline, no encoding")
    figures |= m.step("e2e+H.264 fps", ("e2e_fps_encode",), m.e2e_encode, f"{m.runs()} of run_pipeline into an MP4")
    if cuda:
        figures["peak_gpu_mb"] = m.peak_gpu(figures["e2e_fps_no_encode"])
    figures |= m.step("streaming", tuple(n for n in FIGURES if n.startswith("stream_")), m.stream,
                      f"{plan.warmup} warm-up + {s.repeats} short streams, then {s.stream_seconds:g} s of audio")
    figures["peak_rss_mb"] = single(peak_rss_mb(), "MB", note=f"{after_imports:.0f} MB after imports" if after_imports else None)
    if not cuda:
        figures["peak_gpu_mb"] = missing("peak_gpu_mb", f"{plan.device} cell: no GPU memory")
    figures |= m.step("lip timing", ("bilabial_closure", "vowel_opening"), lambda: lip_figures(m.motion, plan.clip.segs),
                      "against the clip's .segs")
    why = "no --data given (a tracked dataset with held-out frames)" if settings.data is None else "not evaluated"
    return figures | all_missing(why, AVATAR_FIGURES)  # the runner evaluates each avatar once, in its own process

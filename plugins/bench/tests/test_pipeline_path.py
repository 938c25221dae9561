"""The stage figures are measured through the calls ``run_pipeline`` makes: fakes that record how
they were called, once by the pipeline and once by the bench's measurements, must record the same
calls (no speed is asserted). And the throughput plot's data: one group per combination, its
clips pooled."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Sequence

import pytest

from being_bench.figures import all_missing, measured, single
from being_bench.matrix import CellPlan
from being_bench.measure import _Measure, describe, load_clip
from being_bench.plots import THROUGHPUT, throughput_bars, write_plots
from being_bench.schema import FIGURES, BenchRun, Cell, Clip, Settings
from being_bench.stream import HostSink
from being_kernel.api import Audio, Frame, Motion, Stream, build_config, check_stages, run_pipeline
from being_kernel.testing import FAKE_SPECS, FakeAudioToFlame, FakeCompositor, FakeRenderer

CHUNK = 8
SIZE = [32, 32]


def _where() -> str:
    return "main thread" if threading.current_thread() is threading.main_thread() else "another thread"


class _RecordingStream(Stream):
    def __init__(self, inner: Stream, calls: list, size) -> None:  # noqa: ANN001 - size: chunk -> int
        self.inner, self.calls, self.size = inner, calls, size

    def push(self, chunk):  # noqa: ANN001, ANN201
        self.calls.append(("push", self.size(chunk), _where()))
        return self.inner.push(chunk)

    def finish(self):  # noqa: ANN201
        self.calls.append(("finish", _where()))
        return self.inner.finish()


class RecordingAudio(FakeAudioToFlame):
    calls: list

    def generate(self, audio: Audio) -> Motion:
        self.calls.append(("generate", len(audio.samples), _where()))
        return super().generate(audio)


class RecordingRenderer(FakeRenderer):
    calls: list

    def render(self, motion: Motion, start_index: int = 0) -> list[Frame]:
        self.calls.append(("render", motion.num_frames, _where()))
        return super().render(motion, start_index)

    def open_stream(self) -> Stream:
        self.calls.append(("open_stream",))
        return _RecordingStream(super().open_stream(), self.calls, lambda m: m.num_frames)


class RecordingCompositor(FakeCompositor):
    calls: list

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        self.calls.append(("composite", len(heads), _where()))
        return super().composite(heads)

    def open_stream(self) -> Stream:
        self.calls.append(("open_stream",))
        return _RecordingStream(super().open_stream(), self.calls, len)


def _plugins() -> tuple[RecordingAudio, RecordingRenderer, RecordingCompositor]:
    out = []
    for cls, contract, values in ((RecordingAudio, "audio", {}), (RecordingRenderer, "avatar", {"size": SIZE}),
                                  (RecordingCompositor, "torso", {"size": SIZE})):
        plugin = cls(build_config(FAKE_SPECS[contract].config, contract, values))
        plugin.calls = []
        out.append(plugin)
    return tuple(out)


def test_stage_figures_call_the_plugins_as_run_pipeline_does() -> None:
    plan = CellPlan(audio="fake", avatar="fake", torso="fake", size=tuple(SIZE), device="cpu",
                    clip=Clip(name="demo", path=None, duration_s=1.0), warmup=1)  # 25 frames: packets 8, 8, 8, 1
    settings = Settings(repeats=2, warmup=1, chunk_frames=CHUNK, chunk_s=0.04, stream_seconds=0.5, realtime=False,
                        crf=18, data=None, sets=[])
    a, r, t = _plugins()
    check = check_stages(a, r, t)
    clip = load_clip(plan, a.info().sample_rate)

    run_pipeline(a, r, t, clip.mono, HostSink(), mode="offline", check=check, chunk_frames=CHUNK)
    pipeline = {name: list(p.calls) for name, p in (("audio", a), ("avatar", r), ("torso", t))}
    assert pipeline["avatar"][0] == ("open_stream",)
    assert [c[1] for c in pipeline["avatar"] if c[0] == "push"] == [8, 8, 8, 1]
    assert [c[1] for c in pipeline["torso"] if c[0] == "push"] == [1] * 25
    assert all(c[-1] == "another thread" for p in pipeline.values() for c in p if len(c) > 1)

    for p in (a, r, t):
        p.calls.clear()
    said: list[str] = []
    m = _Measure(plan, settings, a, r, t, check, clip, said.append)
    figures = m.motion_rtf() | m.render() | m.composite()
    runs = plan.warmup + settings.repeats
    assert a.calls == pipeline["audio"] * runs
    assert r.calls == pipeline["avatar"] * runs
    assert t.calls == pipeline["torso"] * runs
    for name in ("motion_rtf", "render_fps", "composite_fps"):
        assert figures[name].value is not None and figures[name].n == settings.repeats, name
    assert f"packets of {CHUNK} motion frames" in figures["render_fps"].note


def test_a_stage_error_on_its_thread_reaches_the_figure() -> None:
    plan = CellPlan(audio="fake", avatar="fake", torso="fake", size=tuple(SIZE), device="cpu",
                    clip=Clip(name="demo", path=None, duration_s=0.5), warmup=0)
    settings = Settings(repeats=1, warmup=0, chunk_frames=CHUNK, chunk_s=0.04, stream_seconds=0.5, realtime=False,
                        crf=18, data=None, sets=[])
    a, r, t = _plugins()

    def broken(motion: Motion, start_index: int = 0) -> list[Frame]:
        raise RuntimeError("the renderer broke")

    r.render = broken
    said: list[str] = []
    m = _Measure(plan, settings, a, r, t, check_stages(a, r, t), load_clip(plan, a.info().sample_rate), said.append)
    m.step("motion RTF", ("motion_rtf",), m.motion_rtf)
    figures = m.step("render fps", ("render_fps",), m.render)
    assert figures["render_fps"].reason == "failed: RuntimeError: the renderer broke"
    assert said[-2] == "render fps: 0 warm-up + 1 timed runs ..."
    assert said[-1].startswith("render fps: failed: RuntimeError: the renderer broke (")


def test_describe_gives_values_as_the_tables_and_the_reason_when_none() -> None:
    figures = {"render_fps": measured([9.0, 10.0, 11.0], "frames/s"), "peak_rss_mb": single(1500.0, "MB")}
    assert describe(figures) == "render fps 10.0 ±0.50; peak RSS MB 1500"
    assert describe(all_missing("no motion", ("render_fps", "composite_fps"))) == "render fps, composite fps: no motion"


def _cell(audio: str, size: tuple[int, int], clip: str, values: dict[str, list[float]], fps: float = 25.0) -> Cell:
    figures = all_missing("not in this test")
    figures |= {name: measured(samples, "frames/s") for name, samples in values.items()}
    return Cell(id=f"{audio}/{size}/{clip}", audio=audio, avatar="splatting", torso="static", size=size, device="cpu",
                clip=Clip(name=clip, path=None, duration_s=1.0), status="ok", info={"fps": fps}, figures=figures)


def _run(cells: list[Cell]) -> BenchRun:
    settings = Settings(repeats=2, warmup=1, chunk_frames=8, chunk_s=0.04, stream_seconds=1.0, realtime=False, crf=18,
                        data=None, sets=[])
    return BenchRun(created="now", command=["being", "bench"], being_version="0", machine={}, settings=settings,
                    cells=cells)


def test_throughput_plot_compares_combinations_with_their_clips_pooled(tmp_path: Path) -> None:
    cells = [
        _cell("viseme", (512, 512), "a", {"render_fps": [4.0, 6.0], "e2e_fps_no_encode": [3.0, 3.0]}),
        _cell("viseme", (256, 256), "a", {"render_fps": [10.0, 12.0], "e2e_fps_no_encode": [8.0, 9.0]}),
        _cell("viseme", (256, 256), "b", {"render_fps": [20.0, 22.0], "e2e_fps_no_encode": [7.0, 8.0]}),
        _cell("fake", (256, 256), "a", {"render_fps": [30.0, 30.0]}, fps=30.0),
    ]
    skipped = cells[0].model_copy(update={"status": "skipped", "reason": "no CUDA", "size": (1024, 1024)})
    bars = throughput_bars(_run(cells + [skipped]))
    assert [g for g, _, _ in bars] == [("fake", "splatting", "static", (256, 256), "cpu"),
                                       ("viseme", "splatting", "static", (256, 256), "cpu"),
                                       ("viseme", "splatting", "static", (512, 512), "cpu")]  # no bar for a skipped cell
    (fake, fake_fps, fake_bars), (small, small_fps, small_bars), (_, _, big_bars) = bars
    assert (fake_fps, small_fps) == (30.0, 25.0)  # the real-time line: each combination's frame rate
    assert set(small_bars) == set(THROUGHPUT)
    # the median of the clips' medians (11 and 21); whiskers from the quartiles of all four timed runs
    assert small_bars["render_fps"] == pytest.approx((16.0, 11.5, 20.5))
    assert small_bars["e2e_fps_no_encode"] == pytest.approx((8.0, 7.75, 8.25))
    assert big_bars["render_fps"] == pytest.approx((5.0, 4.5, 5.5))
    assert fake_bars["e2e_fps_no_encode"] is None and small_bars["composite_fps"] is None  # not measured: no bar
    if importlib.util.find_spec("matplotlib"):
        paths, skipped_why = write_plots(_run(cells), tmp_path)
        assert skipped_why is None and [p.name for p in paths] == ["throughput.png", "latency.png"]
        assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert set(FIGURES) >= set(THROUGHPUT)


def test_packets_follow_the_renderers_batch_in_the_pipeline_and_the_bench() -> None:
    """Without --chunk-frames, run_pipeline and the bench both cut packets of the renderer's stated batch."""
    import dataclasses

    plan = CellPlan(audio="fake", avatar="fake", torso="fake", size=tuple(SIZE), device="cpu",
                    clip=Clip(name="demo", path=None, duration_s=1.0), warmup=0)  # 25 frames
    settings = Settings(repeats=1, warmup=0, chunk_frames=None, chunk_s=0.04, stream_seconds=0.5, realtime=False,
                        crf=18, data=None, sets=[])
    a, r, t = _plugins()
    info = r.info()
    r.info = lambda: dataclasses.replace(info, batch_frames=10)  # a renderer that draws 10 frames per call
    check = check_stages(a, r, t)
    clip = load_clip(plan, a.info().sample_rate)
    run_pipeline(a, r, t, clip.mono, HostSink(), mode="offline", check=check)
    assert [c[1] for c in r.calls if c[0] == "push"] == [10, 10, 5]
    r.calls.clear()
    m = _Measure(plan, settings, a, r, t, check, clip, lambda line: None)
    m.motion_rtf()
    figures = m.render()
    assert [c[1] for c in r.calls if c[0] == "push"] == [10, 10, 5]
    assert "packets of 10 motion frames" in figures["render_fps"].note

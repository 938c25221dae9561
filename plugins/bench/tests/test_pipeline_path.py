"""The stage figures are measured through the calls ``run_pipeline`` makes: fakes that record how
they were called, once by the pipeline and once by the bench's measurements, must record the same
calls (no speed is asserted)."""

from __future__ import annotations

import threading
from typing import Sequence

from being_bench.figures import all_missing, measured, single
from being_bench.matrix import CellPlan
from being_bench.measure import _Measure, describe, load_clip
from being_bench.schema import Clip, Settings
from being_bench.stream import HostSink
from being_kernel.api import Audio, Frame, Motion, Stream, build_config, check_stages, run_pipeline
from being_kernel.testing import FAKE_SPECS
from being_kernel.testing.fakes import FakeAudioToFlame, FakeCompositor, FakeRenderer

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

"""``being bench``: a tiny matrix through the CLI, checked against the JSON schema, and the pieces
(statistics, timer, planning, stream trace, lip figures) against independent oracles. No speed
value is asserted anywhere: these are benchmarks, and this is a test of the harness."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from being_bench.matrix import CellPlan, plan_cells
from being_bench.quality import lip_figures
from being_bench.report import format_figure
from being_bench.runner import run_job
from being_bench.schema import FIGURES, BenchRun, Cell, Clip, Figure, Settings
from being_bench.stream import StreamTrace
from being_bench.timing import Stats, Timer
from being_kernel import BenchSettings
from being_kernel.api import DEMO_HEAD, FLAME_2020, Motion, PluginRecord, Registry
from being_kernel.head import build_demo_head
from being_kernel.media import demo_speech
from being_kernel.testing import FAKE_SPECS

DEMO_CLIP = Clip(name="demo_speech", path=None, duration_s=1.0)
#: The lip figures' reason for the fake audio model's motion space, which has no head model.
NO_FAKE_HEAD = ("no head model for motion space being-fake (lip timing is measured in the spaces being-demo-head, "
                "flame2020, flame2023)")
TIMED = ("motion_rtf", "render_fps", "composite_fps", "e2e_fps_no_encode", "e2e_fps_encode",
         "stream_first_frame_latency_ms")
#: The progress lines of a cell's measurements, in order: what each says as it starts, and a
#: figure its end line gives.
STEPS = (("set-up", None), ("motion RTF", "motion_rtf"), ("render fps", "render_fps"),
         ("composite fps", "composite_fps"), ("e2e fps", "e2e_fps_no_encode"), ("e2e+H.264 fps", "e2e_fps_encode"),
         ("streaming", "stream_first_frame_latency_ms"), ("lip timing", None))


def run_being(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed ``being`` CLI in a subprocess, with no BEING_* variable but those of ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")} | (env or {})
    cmd = [sys.executable, "-m", "being_kernel.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)


def _clip(folder: Path, seconds: float = 1.0) -> Path:
    """Demo speech with a .segs beside it: a p in the middle, vowels around it."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = demo_speech(seconds)
    path = folder / "speech.wav"
    sf.write(path, audio.samples, audio.sample_rate)
    path.with_suffix(".segs").write_text("#\n0.30 100 pau\n0.45 100 aa\n0.55 100 p\n0.70 100 iy\n1.00 100 pau\n")
    return path


def test_tiny_matrix_through_the_cli(tmp_path: Path) -> None:
    clip, out = _clip(tmp_path / "clips"), tmp_path / "out"
    r = run_being("bench", "--audio", "fake,viseme,nope", "--avatar", "fake", "--torso", "static", "--size", "64",
                  "--device", "cpu", "--clip", str(clip), "--set", "avatar.accepts_pose_only=false",
                  "--repeats", "2", "--warmup", "0", "--stream-seconds", "0.5", "--out", str(out), timeout=240)
    assert r.returncode == 0, r.stderr
    run = BenchRun.model_validate_json((out / "bench.json").read_text())  # the schema, with its validators
    assert (run.format, run.format_version) == ("being-bench", 1)
    cells = {c.audio: c for c in run.cells}
    assert set(cells) == {"fake", "viseme", "nope"} and len(run.cells) == 3
    for cell in run.cells:  # every figure: a value, or why not
        assert set(cell.figures) == set(FIGURES)
        for name, f in cell.figures.items():
            assert (f.value is not None) != bool(f.reason), (cell.id, name)

    ok = cells["fake"]
    assert ok.status == "ok" and ok.clip.segs and ok.clip.duration_s == pytest.approx(1.0)
    for name in TIMED:
        f = ok.figures[name]
        assert f.value is not None and f.value > 0 and f.n == 2 and len(f.samples) == 2, name
    assert ok.figures["stream_frames_exact"].value is True
    assert ok.figures["stream_dropped_frames"].value == 0
    assert ok.figures["stream_lag_drift_ms"].reason.startswith("needs --realtime")
    assert ok.figures["peak_gpu_mb"].value is None and ok.figures["peak_rss_mb"].value > 0
    assert ok.figures["bilabial_closure"].reason == NO_FAKE_HEAD
    assert ok.figures["avatar_psnr"].reason.startswith("no --data given")
    assert ok.config["avatar"]["size"] == [64, 64] and ok.config["torso"]["size"] == [64, 64]

    mismatch, missing = cells["viseme"], cells["nope"]
    assert mismatch.status == "skipped"
    assert "motion space mismatch" in mismatch.reason or "not installed" in mismatch.reason or "no such" in mismatch.reason
    assert missing.status == "skipped" and "--audio nope: no such plugin" in missing.reason
    assert all(f.reason == missing.reason for f in missing.figures.values())

    md = (out / "bench.md").read_text()
    for cell in run.cells:
        row = f"| {cell.audio} + {cell.avatar} + {cell.torso} | 64×64 | cpu | speech |"
        assert md.count(row) == 3, cell.id  # one row in each table: speed, streaming, quality
    assert missing.reason in md
    if importlib.util.find_spec("matplotlib"):
        assert run.plots == ["throughput.png", "latency.png"]
        assert all((out / p).read_bytes().startswith(b"\x89PNG") for p in run.plots)
    else:
        assert run.plots == [] and "matplotlib" in run.plots_skipped
    assert json.loads((out / "bench.json").read_text())["settings"]["repeats"] == 2

    # progress on stderr while the cell runs: a line as each measurement starts and one as it ends,
    # between the cell's first and last line; the cells that never started have only their last
    lines = r.stderr.splitlines()
    first, last = lines.index(f"  [1/3] {ok.id}: started (log: {out / 'logs' / 'cell000.log'})"), \
        next(i for i, line in enumerate(lines) if line.startswith(f"  [1/3] {ok.id}: ok ("))
    steps = [line.removeprefix("  [1/3]   ") for line in lines[first + 1:last]]
    assert all(line.startswith("  [1/3]   ") for line in lines[first + 1:last])
    assert len(steps) == 2 * len(STEPS), steps
    for (title, figure), start, end in zip(STEPS, steps[::2], steps[1::2]):
        assert start.startswith(f"{title}: ") and start.endswith(" ..."), start
        if figure is not None:
            assert end.startswith(f"{FIGURES[figure].label} "), end
            assert end.endswith(" s)") and " (" in end, end
    assert steps[5].startswith(f"render fps {format_figure(ok.figures['render_fps'], {})} (")  # the value in bench.json
    mismatch_lines = [line for line in lines if line.startswith("  [2/3]   ")]  # started, stopped in its set-up
    assert len(mismatch_lines) == 2 and mismatch_lines[1].startswith("  [2/3]   set-up: the cell cannot run: ")
    assert not any(line.startswith("  [3/3]   ") for line in lines)  # never started: its plugin is not installed
    log = (out / "logs" / "cell000.log").read_text()
    assert "[being-bench] render fps: " in log  # the cell's log keeps them too


def test_run_job_reports_a_worker_that_failed_or_was_stopped(tmp_path: Path) -> None:
    result, why = run_job({"kind": "nope"}, tmp_path / "failed", 120)
    assert result is None and why.startswith("its process exited with code 1: ValueError: unknown bench job kind 'nope'")
    assert "Traceback" in (tmp_path / "failed.log").read_text()  # the log keeps the worker's whole output
    plan = CellPlan(audio="fake", avatar="fake", torso="fake", size=(32, 32), device="cpu", clip=DEMO_CLIP,
                    values={"avatar": {"size": [32, 32], "delay_s": 10.0}, "torso": {"size": [32, 32]}})
    settings = Settings(repeats=1, warmup=0, chunk_frames=8, chunk_s=0.04, stream_seconds=0.5, realtime=False, crf=18,
                        data=None, sets=[])
    job = {"kind": "cell", "plan": plan.model_dump(mode="json"), "settings": settings.model_dump(mode="json")}
    notes: list[str] = []
    result, why = run_job(job, tmp_path / "stopped", 8, notes.append)  # rendering 25 frames takes 250 s
    assert result is None and why == f"stopped after 8 s (--timeout); log: {tmp_path / 'stopped.log'}"
    assert all(not line.startswith("[being-bench]") for line in notes)  # handed on without the mark


def test_stats_against_known_quartiles() -> None:
    s = Stats.of([10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0])
    # 1..10 with linear interpolation: position (n-1)p -> 2.25 -> 3.25, 4.5 -> 5.5, 6.75 -> 7.75
    assert (s.n, s.median, s.q1, s.q3, s.iqr, s.min, s.max) == (10, 5.5, 3.25, 7.75, 4.5, 1.0, 10.0)
    assert s.p90 == pytest.approx(9.1) and s.p99 == pytest.approx(9.91)
    assert Stats.of([4.0]).iqr == 0.0
    with pytest.raises(ValueError):
        Stats.of([])


def test_timer_warms_up_then_repeats_on_cpu() -> None:
    calls = []
    timer = Timer("cpu")
    times, last = timer.repeat(lambda: calls.append(len(calls)) or len(calls), warmup=2, repeats=3)
    assert not timer.uses_events and len(calls) == 5 and len(times) == 3 and last == 5
    assert all(t >= 0 for t in times)
    with pytest.raises(ValueError):
        timer.repeat(lambda: None, warmup=0, repeats=0)


@pytest.mark.gpu
def test_timer_uses_cuda_events_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = []

    class Spy(torch.cuda.Event):
        def record(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            recorded.append(self)
            return super().record(*args, **kwargs)

    monkeypatch.setattr(torch.cuda, "Event", Spy)
    timer = Timer("cuda")
    x = torch.randn(2048, 2048, device="cuda")
    seconds, _ = timer.time(lambda: x @ x)
    assert timer.uses_events and len(recorded) == 2 and seconds > 0


def _registry() -> Registry:
    """Registry of the testing-kit fakes, the avatar with bench settings."""
    avatar = dataclasses.replace(FAKE_SPECS["avatar"], bench=BenchSettings(
        sizes=((96, 64),), warmup=3, config={"delay_s": 0.5, "n_expression": 1}, device_config={"cuda": {"delay_s": 0.25}}))
    return Registry([PluginRecord("fake", c, "being-kernel", "0", "x:y", "ok", spec=s)
                     for c, s in (("audio", FAKE_SPECS["audio"]), ("avatar", avatar), ("torso", FAKE_SPECS["torso"]))])


def test_plan_applies_bench_settings_user_values_and_axes() -> None:
    clips = [DEMO_CLIP]
    names = {"audio": ["fake", "nope"], "avatar": ["all"], "torso": ["fake"]}
    plans = plan_cells(_registry(), names, [], ["cpu", "cuda"], clips, {"avatar": {"delay_s": 0.1}}, None, cuda_devices=0)
    assert [p.id.split("/")[1] for p in plans] == ["cpu", "cpu", "cuda", "cpu", "cuda"]
    cpu_defaults, cpu, cuda, missing_cpu, _ = plans
    assert cpu.skip is None and cpu.size == (96, 64) and cpu.warmup == 3  # the avatar's bench sizes and warm-up
    assert cpu.values["avatar"] == {"delay_s": 0.1, "n_expression": 1, "size": [96, 64]}  # --set over bench config
    # the bench settings change the avatar's config: the same cell with being run's defaults comes first
    assert cpu_defaults.tuned is None and cpu.tuned == "avatar.delay_s=0.5, avatar.n_expression=1"
    assert cpu_defaults.values["avatar"] == {"delay_s": 0.1, "size": [96, 64]} and cpu.id == cpu_defaults.id + "/tuned"
    assert cpu.values["torso"] == {"size": [96, 64]}
    assert cuda.skip == "CUDA is not available on this machine"
    assert missing_cpu.skip.startswith("--audio nope: no such plugin")
    sized = plan_cells(_registry(), {"audio": ["fake"], "avatar": ["fake"], "torso": ["fake"]}, [(32, 32)], ["cuda"],
                       clips, {}, 0, cuda_devices=1)
    assert sized[1].size == (32, 32) and sized[1].warmup == 0 and sized[1].values["avatar"]["delay_s"] == 0.25
    assert "delay_s" not in sized[0].values["avatar"] and sized[0].tuned is None


def test_plugin_scoped_values_reach_that_plugin_only() -> None:
    reg = _registry()
    second = dataclasses.replace(reg.spec("avatar", "fake"))
    reg = Registry([*(r for r in reg.records), PluginRecord("other", "avatar", "x", "0", "x:y", "ok", spec=second)])
    names = {"audio": ["fake"], "avatar": ["fake", "other"], "torso": ["fake"]}
    user = {"avatar": {"delay_s": 0.1, "other": {"delay_s": 0.3}}}
    fake, other = (p for p in plan_cells(reg, names, [], ["cpu"], [DEMO_CLIP], user, None, cuda_devices=0) if p.tuned)
    assert fake.values["avatar"]["delay_s"] == 0.1 and "other" not in fake.values["avatar"]
    assert other.values["avatar"]["delay_s"] == 0.3 and "other" not in other.values["avatar"]


def test_schema_refuses_a_figure_without_value_or_reason_and_a_cell_without_all_figures() -> None:
    with pytest.raises(ValueError):
        Figure(value=None, unit="ms")
    with pytest.raises(ValueError):
        Figure(value=1.0, unit="ms", reason="both")
    plan = CellPlan(audio="a", avatar="b", torso="c", size=(8, 8), device="cpu", clip=DEMO_CLIP)
    figures = {n: Figure(value=1.0, unit=d.unit) for n, d in FIGURES.items()}
    Cell(id=plan.id, audio="a", avatar="b", torso="c", size=(8, 8), device="cpu", clip=plan.clip, status="ok", figures=figures)
    del figures["render_fps"]
    with pytest.raises(ValueError, match="render_fps"):
        Cell(id=plan.id, audio="a", avatar="b", torso="c", size=(8, 8), device="cpu", clip=plan.clip, status="ok",
             figures=figures)


def test_stream_trace_figures() -> None:
    fps = 25.0
    trace = StreamTrace(fps=fps, audio_s=0.2, expected_frames=5)
    # pushes at 0, 0.04, ... each making one frame final, except the first two (lookahead)
    trace.pushes = [(0.00, 0, 0), (0.04, 0, 0), (0.08, 0, 2), (0.12, 2, 1), (0.16, 3, 1), (0.20, 4, 1)]
    trace.exits = [0.10, 0.11, 0.14, 0.19, 0.23]
    trace.pts = [(k, k / fps) for k in range(5)]
    assert trace.first_frame_latency() == pytest.approx(0.10)
    assert trace.chunk_latencies() == pytest.approx([0.02, 0.03, 0.03])  # the push that made frame 0 is not steady
    assert trace.flush_latency() is None
    trace.pushes.pop()  # the last frame made final by the end-of-stream flush instead: not steady state
    trace.flush = (0.20, 4, 1)
    assert trace.chunk_latencies() == pytest.approx([0.02, 0.03]) and trace.flush_latency() == pytest.approx(0.03)
    assert trace.frames_exact() and trace.pts_drift() == pytest.approx(0.0)
    assert trace.wall_per_audio_s() == pytest.approx(0.23 / 0.2)
    # lag of frame k: exit - (k + 1) / fps -> 0.06, 0.03, 0.02, 0.03, 0.03; tenths are single frames
    assert trace.lag_drift() == pytest.approx(0.03 - 0.06)
    trace.pts[2] = (2, 0.5)
    assert not trace.frames_exact()


def test_lip_figures_on_the_demo_head(tmp_path: Path) -> None:
    segs = tmp_path / "x.segs"
    segs.write_text("0.2 100 pau\n0.4 100 m\n0.6 100 aa\n0.8 100 b\n")
    n = build_demo_head().n_expression
    shut = Motion.zeros(25, n, space=DEMO_HEAD)
    figures = lip_figures(shut, str(segs))
    assert figures["bilabial_closure"].value == 1.0 and figures["bilabial_closure"].note == "2/2 p/b/m"
    assert figures["vowel_opening"].value == 0.0  # the control: a shut mouth opens no vowel
    agape = Motion.zeros(25, n, space=DEMO_HEAD)
    agape.jaw[:, 0] = 0.3
    figures = lip_figures(agape, str(segs))
    assert figures["bilabial_closure"].value == 0.0 and figures["vowel_opening"].value == 1.0
    assert lip_figures(Motion.zeros(25, 0, space="being-fake"), str(segs))["vowel_opening"].reason == NO_FAKE_HEAD
    assert lip_figures(shut, None)["bilabial_closure"].reason == "the clip has no .segs phone timing"
    assert np.isfinite([f.value for f in lip_figures(shut, str(segs)).values()]).all()


def write_flame_stand_in(folder: Path) -> Path:
    """``folder/generic_model.pkl`` in the official FLAME layout, made from the demo head with its
    mouth cavity, teeth and tongue taken out: a FLAME-like mesh whose mouth is a hole (its lower lip
    skinned to the jaw) and that names no region, so its lip seam can only come from the topology."""
    head = build_demo_head()
    faces = head.faces[~np.isin(head.faces, head.regions["mouth_interior"]).any(axis=1)]
    v = head.num_vertices
    arrays = {"v_template": head.v_template, "f": faces.astype(np.uint32),
              "shapedirs": np.concatenate([np.zeros((v, 3, 300), np.float32), head.exprdirs], axis=2),
              "posedirs": head.posedirs, "J_regressor": head.j_regressor, "weights": head.lbs_weights,
              "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64)}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "generic_model.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=4))
    return path


@pytest.fixture
def no_flame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment without FLAME: no $BEING_FLAME_DIR, an empty user cache."""
    monkeypatch.delenv("BEING_FLAME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def _user_flame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    """The stand-in FLAME 2020 file where $BEING_FLAME_DIR says; the environment that finds it."""
    write_flame_stand_in(tmp_path / "flame")
    monkeypatch.setenv("BEING_FLAME_DIR", str(tmp_path / "flame"))
    return env | {"BEING_FLAME_DIR": str(tmp_path / "flame")}


def test_flame_lip_figures_say_what_to_download_when_flame_is_missing(tmp_path: Path, no_flame) -> None:
    segs = tmp_path / "x.segs"
    segs.write_text("0.2 100 pau\n0.4 100 m\n0.6 100 aa\n")
    reason = lip_figures(Motion.zeros(25, 100, space=FLAME_2020), str(segs))["bilabial_closure"].reason
    assert reason.startswith("no head model for motion space flame2020: FLAME 2020 model (generic_model.pkl)")
    assert "https://flame.is.tue.mpg.de" in reason  # where to get it


def test_flame_lip_figures_from_the_users_flame_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_flame) -> None:
    _user_flame(tmp_path, monkeypatch, no_flame)
    segs = tmp_path / "x.segs"
    segs.write_text("0.2 100 pau\n0.4 100 m\n0.6 100 aa\n0.8 100 b\n")
    shut = Motion.zeros(25, 0, space=FLAME_2020)
    figures = lip_figures(shut, str(segs))
    assert figures["bilabial_closure"].note == "2/2 p/b/m" and figures["vowel_opening"].note == "0/1 vowels"
    agape = Motion.zeros(25, 0, space=FLAME_2020)
    agape.jaw[:, 0] = 0.3
    figures = lip_figures(agape, str(segs))
    assert figures["bilabial_closure"].note == "0/2 p/b/m" and figures["vowel_opening"].note == "1/1 vowels"
    wide = lip_figures(Motion.zeros(25, 400, space=FLAME_2020), str(segs))["bilabial_closure"].reason
    assert wide.startswith("head model 'generic_model' of motion space flame2020:") and "400" in wide


def test_flame_lip_figures_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_flame) -> None:
    """The fake audio model, claiming FLAME 2020 motion, opens the jaw with loudness: a clip that is
    silent on its p and loud on its vowels closes the one and opens the others, measured in the
    cell's own process on the FLAME file found through $BEING_FLAME_DIR; the clip's folder comes
    from $BEING_BENCH_CLIPS."""
    env = _user_flame(tmp_path, monkeypatch, no_flame)
    rate = 16000
    t = np.arange(rate) / rate
    loud = ((t >= 0.30) & (t < 0.45)) | ((t >= 0.55) & (t < 0.70))
    clip = tmp_path / "clips" / "tone.wav"
    clip.parent.mkdir()
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 220 * t) * loud).astype(np.float32), rate)
    clip.with_suffix(".segs").write_text("#\n0.30 100 pau\n0.45 100 aa\n0.55 100 p\n0.70 100 iy\n1.00 100 pau\n")
    out = tmp_path / "out"
    r = run_being("bench", "--audio", "fake", "--avatar", "fake", "--torso", "fake", "--size", "64", "--device", "cpu",
                  "--set", f"audio.motion_space={FLAME_2020}", "--repeats", "1", "--warmup", "0", "--stream-seconds",
                  "0.5", "--quiet", "--out", str(out), env=env | {"BEING_BENCH_CLIPS": str(clip.parent)}, timeout=240)
    assert r.returncode == 0, r.stderr
    (progress,) = [line for line in r.stderr.splitlines() if line.startswith("  [")]  # --quiet: one line per cell
    assert progress.startswith("  [1/1] fake+fake+fake@64x64/cpu/tone: ok (")
    (cell,) = BenchRun.model_validate_json((out / "bench.json").read_text()).cells
    assert cell.status == "ok" and cell.info["motion_space"] == FLAME_2020 and cell.clip.name == "tone"
    assert cell.figures["bilabial_closure"].note == "1/1 p/b/m"
    assert cell.figures["vowel_opening"].note == "2/2 vowels"

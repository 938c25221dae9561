"""``being batch``: job files checked before any work, renders and fits on a local Ray instance
(fake and real plugins), a retry that succeeds, failures that do not stop the others, a rerun that
skips finished tasks, and SIGTERM mid-batch leaving no partial file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import soundfile as sf
import torch

from being_kernel.batch.jobfile import read_jobs
from being_kernel.batch.plan import plan
from being_kernel.discovery import Registry
from being_kernel.errors import ConfigError, InputError
from being_kernel.media import demo_speech

from conftest import make_dist, run_being

ray = pytest.importorskip("ray", reason="being batch needs Ray: pip install 'being-kernel[batch]'")

FLAKY = """
import dataclasses, os
from being_kernel.testing.fakes import FakeRenderer
from being_kernel.testing.specs import AVATAR

_failed = set()

class FlakyRenderer(FakeRenderer):
    # the first clip each process renders fails, as a transient fault (a GPU hiccup) would
    def open_stream(self):
        if os.getpid() not in _failed:
            _failed.add(os.getpid())
            raise RuntimeError("flaky: the first clip of a process fails")
        return super().open_stream()

SPEC = dataclasses.replace(AVATAR, factory="flaky_avatar:FlakyRenderer")
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three speech clips of known length (1.6, 2.0 and 1.2 s) and one corrupt file."""
    root = tmp_path_factory.mktemp("clips")
    speech = demo_speech()
    for name, seconds in (("one", 1.6), ("two", 2.0), ("three", 1.2)):
        sf.write(root / f"{name}.wav", speech.samples[: round(seconds * speech.sample_rate)], speech.sample_rate)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    return root


@pytest.fixture
def flaky_site(tmp_path: Path) -> Path:
    return make_dist(tmp_path / "flaky-site", "being-avatar-flaky", {"being.avatar": {"flaky": "flaky_avatar:SPEC"}},
                     {"flaky_avatar.py": FLAKY})


def _video(path: Path) -> tuple[int, float]:
    """(video frames, audio seconds) of an MP4, decoded."""
    with av.open(str(path)) as f:
        frames = sum(1 for _ in f.decode(video=0))
    with av.open(str(path)) as f:
        samples = sum(fr.samples for fr in f.decode(audio=0))
        rate = f.streams.audio[0].rate
    return frames, samples / rate


def _partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".partial" in p.name or p.name.endswith(".tmp")]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- the job file, checked before any work (no Ray) -----------------------------------------------

@pytest.mark.parametrize("body, message", [
    ('[[render]]\nname = "a"\ninput = "x.wav"\ncfr = 3\n', "render job 'a': cfr: unknown field"),
    ('[[render]]\nname = "a"\ninput = "x.wav"\ncrf = 60\n', "render job 'a': crf: Input should be less than or equal to 51"),
    ('[[render]]\nname = "a"\ninput = "x.wav"\n[[fit]]\nname = "a"\ndata = "d"\n', "two jobs are named 'a'"),
    ('[[fit]]\nname = "f"\ndata = "d"\navatar = "splatting"\ntorso = "fake"\n', "fit job 'f': give one of avatar, torso"),
    ('[[render]]\nname = "bad name"\ninput = "x.wav"\n', "render job 'bad name': name: use letters"),
    ('[[render]]\ninput = "x.wav"\n', "render job #1: name: Field required"),
    ('[batch]\nretries = -1\n[[render]]\nname = "a"\ninput = "x"\n', "batch.retries"),
    ('[render]\nname = "a"\n', "render: Input should be a valid list"),
    ('', "no jobs"),
    ('[[render]\n', "is not valid"),
])
def test_job_file_errors_name_the_job_and_field(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        read_jobs(_write(tmp_path / "jobs.toml", body))
    assert message in str(info.value)


def test_yaml_job_files_read_like_toml(tmp_path: Path, clips: Path) -> None:
    jobs = read_jobs(_write(tmp_path / "jobs.yaml", f"render:\n  - name: y\n    input: {clips / 'one.wav'}\n"
                                                      "    audio: fake\n    avatar: [fake, flash]\n"))
    assert jobs.render[0].avatar == ["fake", "flash"] and jobs.batch.retries == 1


def test_plan_expands_every_combination_with_stable_ids(tmp_path: Path, clips: Path) -> None:
    jobs = read_jobs(_write(tmp_path / "jobs.toml", f"""
[[render]]
name = "grid"
input = ["{clips / 'one.wav'}", "{clips / 'two.wav'}"]
audio = "fake"
avatar = "fake"
torso = ["fake", "static"]
set = ["torso.size=[64,64]"]
[render.variants.small]
avatar = {{ size = [32, 32] }}
[render.variants.large]
avatar = {{ size = [64, 64] }}
"""))
    tasks = plan(jobs, tmp_path, Registry.discover())
    assert len(tasks) == 2 * 2 * 2
    assert {t.id for t in tasks} == {f"render/grid/fake+fake+{t}+{v}/{c}" for t in ("fake", "static")
                                     for v in ("small", "large") for c in ("one", "two")}
    small = next(t for t in tasks if t.id == "render/grid/fake+fake+static+small/one")
    assert small.out == "render/grid/fake+fake+static+small/one.mp4"
    assert small.spec["values"]["avatar"] == {"size": [32, 32]} and small.spec["values"]["torso"] == {"size": [64, 64]}
    # the same file planned again gives the same keys; a changed value changes only its tasks' keys
    again = plan(jobs, tmp_path, Registry.discover())
    assert [t.key for t in again] == [t.key for t in tasks]
    jobs.render[0].variants["large"]["avatar"]["size"] = [128, 128]
    changed = {t.id for t, u in zip(tasks, plan(jobs, tmp_path, Registry.discover())) if t.key != u.key}
    assert changed == {t.id for t in tasks if "+large/" in t.id}


@pytest.mark.parametrize("body, error, message", [
    ('[[render]]\nname = "a"\ninput = "missing.wav"\n', InputError, "render job 'a': input"),
    ('[[render]]\nname = "a"\ninput = "CLIPS"\navatar = "nosuch"\n', Exception, "render job 'a': --avatar nosuch"),
    ('[[render]]\nname = "a"\ninput = "CLIPS"\naudio = "fake"\navatar = "fake"\nset = ["torso.sise=3"]\n',
     ConfigError, "render job 'a': torso.sise: unknown field"),
    ('[[render]]\nname = "a"\ninput = "CLIPS"\n[render.variants.v]\navatar = { nope = 1 }\n', ConfigError,
     "render job 'a' (variant 'v'): avatar.nope: unknown field"),
    ('[[render]]\nname = "a"\ninput = ["CLIPS/one.wav", "CLIPS2/one.wav"]\n', InputError, "would write the same video"),
    ('[[fit]]\nname = "f"\ndata = "CLIPS"\ntorso = "static"\n', ConfigError, "fit job 'f': --torso static cannot be trained"),
    ('[[fit]]\nname = "f"\ndata = "CLIPS"\ntorso = "fake"\nset = ["fit.stepz=3"]\n', ConfigError, "fit job 'f': fit.stepz"),
])
def test_plan_refuses_what_cannot_run(tmp_path: Path, clips: Path, body: str, error: type, message: str) -> None:
    other = tmp_path / "clips2"
    other.mkdir()
    (other / "one.wav").write_bytes((clips / "one.wav").read_bytes())
    jobs = read_jobs(_write(tmp_path / "jobs.toml", body.replace("CLIPS2", str(other)).replace("CLIPS", str(clips))))
    with pytest.raises(error) as info:
        plan(jobs, tmp_path, Registry.discover())
    assert message in str(info.value)


@pytest.mark.parametrize("cpus, gpus, setting, expected", [(16, 1, None, 8), (128, 8, None, 8), (2, 4, None, 1),
                                                           (16, 1, 3, 3)])
def test_render_workers_per_gpu(cpus: int, gpus: int, setting: int | None, expected: int) -> None:
    from being_kernel.batch.jobfile import Settings
    from being_kernel.batch.runner import BatchRunner

    class Cluster:  # what the runner asks of Ray to size its workers
        @staticmethod
        def cluster_resources() -> dict:
            return {"CPU": cpus, "GPU": gpus}

    runner = BatchRunner(Cluster, [], Path("."), None, Settings(workers_per_gpu=setting), print)
    assert runner._per_gpu() == expected


# ---- running on a local Ray instance --------------------------------------------------------------

def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["tasks"]


def test_batch_retries_reports_failures_and_a_rerun_skips_what_is_done(tmp_path: Path, clips: Path,
                                                                        flaky_site: Path) -> None:
    jobs = _write(tmp_path / "jobs.toml", f"""
[batch]
retries = 2

[[render]]
name = "talks"
input = "{clips}"
audio = "fake"
avatar = "flaky"
torso = "static"
set = ["torso.size=[64,64]", "avatar.size=[64,64]"]

[[render]]
name = "broken"
input = "{clips / 'one.wav'}"
audio = "fake"
avatar = "fake"
torso = "fake"
set = ["audio.fail_after_frames=5", "torso.size=[64,64]", "avatar.size=[64,64]"]
""")
    out = tmp_path / "out"
    proc = run_being("batch", str(jobs), "--out", str(out), "--cpus", "2", extra_path=[flaky_site])
    assert proc.returncode == 1, proc.stderr
    tasks = _manifest(out)
    base = "render/talks/fake+flaky+static"
    # the three clips are made, each with the right length, by one worker that loaded its plugins once;
    # the worker's first clip failed (the flaky avatar) and its retry worked
    for name, seconds in (("one", 1.6), ("two", 2.0), ("three", 1.2)):
        rec = tasks[f"{base}/{name}"]
        assert rec["state"] == "done", rec
        frames, audio_s = _video(out / rec["out"])
        assert frames == round(seconds * 25) and abs(audio_s - seconds) < 0.05
    assert sorted(tasks[f"{base}/{n}"]["attempts"] for n in ("one", "two", "three")) == [1, 1, 2]
    # one load per plugin triple (talks, broken), not one per clip or attempt
    assert "3 clips rendered by 1 workers with 2 plugin loads" in proc.stdout
    # bad input is reported at once, not retried; a failing plugin is retried, then reported
    corrupt = tasks[f"{base}/corrupt"]
    assert corrupt["state"] == "failed" and corrupt["attempts"] == 1 and "cannot read audio" in corrupt["error"]
    broken = tasks["render/broken/fake+fake+fake/one"]
    assert broken["state"] == "failed" and broken["attempts"] == 3, broken
    assert "failed: render/broken/fake+fake+fake/one (attempts: 3)" in proc.stdout
    assert "2 of 5 tasks failed" in proc.stderr
    assert not _partials(out) and not (out / base / "corrupt.mp4").exists()

    # a rerun skips the finished tasks (their files untouched) and tries the failed ones again; it
    # removes what a killed worker left (a process that is gone: a pid that has exited)
    done = {p: p.stat().st_mtime_ns for p in (out / base).glob("*.mp4")}
    stale = out / base / f".corrupt.mp4.{_dead_pid()}.partial.mp4"
    stale.write_bytes(b"half a video")
    again = run_being("batch", str(jobs), "--out", str(out), "--cpus", "2", extra_path=[flaky_site])
    assert again.returncode == 1
    assert "5 tasks (5 render); 3 done before, 2 to run" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / base).glob("*.mp4")} == done
    assert _manifest(out)[f"{base}/one"] == tasks[f"{base}/one"]
    assert not stale.exists()
    # a deleted output is made again
    (out / base / "two.mp4").unlink()
    dry = run_being("batch", str(jobs), "--out", str(out), "--dry-run", extra_path=[flaky_site])
    assert dry.returncode == 0 and f"to do  {base}/two" in dry.stdout and f"done   {base}/one" in dry.stdout


def test_batch_fits_renders_with_real_plugins_and_benches(tmp_path: Path, clips: Path) -> None:
    from being_kernel.datasets import load_tracked_video

    from test_fit_contracts import _full_frame

    data = _full_frame(tmp_path)
    jobs = _write(tmp_path / "jobs.yaml", f"""
fit:
  - name: plate
    data: {data}
    torso: fake
    config: {{steps: 400, ssim_weight: 0, lpips: "off", batch_frames: 6, device: cpu}}
render:
  - name: real
    input: [{clips / 'one.wav'}, {clips / 'three.wav'}]
    audio: viseme
    avatar: splatting
    torso: static
    set: ["torso.size=[64,64]", "avatar.size=[64,64]"]
bench:
  - name: fakes
    args: [--audio, fake, --avatar, fake, --torso, static, --size, "64", --device, cpu, --repeats, "1",
           --stream-seconds, "1"]
""")
    out = tmp_path / "out"
    proc = run_being("batch", str(jobs), "--out", str(out), "--cpus", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tasks = _manifest(out)
    assert all(rec["state"] == "done" and rec["attempts"] == 1 for rec in tasks.values()), tasks
    # the fit learned what `being fit` learns: the median colour of the training frames
    learned = torch.tensor(json.loads((out / "fit/plate/torso.json").read_text())["torso"]["color"])
    video = load_tracked_video(data)
    pixels = torch.stack([video.load_image(i) for i in video.split()[0]]).reshape(-1, 3)
    torch.testing.assert_close(learned, pixels.median(dim=0).values, atol=0.02, rtol=0)
    assert (out / "logs/fit/plate.log").read_text().strip()
    cells = json.loads((out / "bench/fakes/bench.json").read_text())["cells"]
    assert [(c["id"], c["status"]) for c in cells] == [("fake+fake+static@64x64/cpu/demo_speech", "ok")]
    for name, seconds in (("one", 1.6), ("three", 1.2)):
        frames, audio_s = _video(out / f"render/real/viseme+splatting+static/{name}.mp4")
        assert frames == round(seconds * 25) and abs(audio_s - seconds) < 0.05
    assert not _partials(out)


def test_sigterm_stops_the_batch_cleanly_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    speech = demo_speech()
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(12):
        sf.write(folder / f"clip{k:02d}.wav", speech.samples[: 2 * speech.sample_rate], speech.sample_rate)
    jobs = _write(tmp_path / "jobs.toml", f'[[render]]\nname = "many"\ninput = "{folder}"\naudio = "fake"\n'
                                          'avatar = "fake"\ntorso = "fake"\nset = ["avatar.delay_s=0.01"]\n')
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    child = subprocess.Popen([sys.executable, "-c", "from being_kernel.cli.main import main; main()", "batch",
                              str(jobs), "--out", str(out), "--cpus", "2", "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "manifest.json").exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert "interrupted:" in err and "run the same command again" in err
    tasks = _manifest(out)
    done = {k for k, rec in tasks.items() if rec["state"] == "done"}
    assert 0 < len(done) < 12
    made = {f"render/many/fake+fake+fake/{p.stem}" for p in (out / "render/many/fake+fake+fake").glob("*.mp4")}
    assert made == done  # every finished video is recorded, nothing else is there
    assert not _partials(out)

    proc = run_being("batch", str(jobs), "--out", str(out), "--cpus", "2")
    assert proc.returncode == 0, proc.stderr
    assert f"{len(done)} done before, {12 - len(done)} to run" in proc.stderr
    assert len(list((out / "render/many/fake+fake+fake").glob("*.mp4"))) == 12 and not _partials(out)


def test_out_folder_and_manifest_errors(tmp_path: Path, clips: Path) -> None:
    jobs = _write(tmp_path / "jobs.toml", f'[[render]]\nname = "a"\ninput = "{clips / "one.wav"}"\n'
                                          'audio = "fake"\navatar = "fake"\ntorso = "fake"\n')
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("precious")
    proc = run_being("batch", str(jobs), "--out", str(busy))
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--overwrite" in proc.stderr
    assert (busy / "thesis.tex").read_text() == "precious"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"format": "being-batch-manifest", "version": 99, "tasks": {}}')
    proc = run_being("batch", str(jobs), "--out", str(bad))
    assert proc.returncode == 2 and "newer being" in proc.stderr
    (bad / "manifest.json").write_text("{not json")
    proc = run_being("batch", str(jobs), "--out", str(bad))
    assert proc.returncode == 2 and "not a being batch manifest" in proc.stderr


def test_without_ray_the_command_says_how_to_get_it(tmp_path: Path, clips: Path) -> None:
    site = tmp_path / "no-ray"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['ray'] = None  # as if not installed\n")
    jobs = _write(tmp_path / "jobs.toml", f'[[render]]\nname = "a"\ninput = "{clips / "one.wav"}"\n')
    proc = run_being("batch", str(jobs), "--out", str(tmp_path / "o"), extra_path=[site])
    assert proc.returncode == 1 and "needs Ray" in proc.stderr and "being-kernel[batch]" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_batch_joins_an_existing_cluster(tmp_path: Path, clips: Path) -> None:
    import socket

    with socket.socket() as s:  # a free port for the cluster's head
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = str(Path(sys.executable).parent / "ray")
    # a head on this machine only, without Ray's token authentication (which needs a shared token file)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    head = subprocess.run([ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                           "--num-cpus", "1", "--include-dashboard=false", "--disable-usage-stats"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert head.returncode == 0, head.stderr
    try:
        jobs = _write(tmp_path / "jobs.toml", f'[[render]]\nname = "a"\ninput = "{clips / "one.wav"}"\n'
                                              'audio = "fake"\navatar = "fake"\ntorso = "fake"\n')
        refused = run_being("batch", str(jobs), "--out", str(tmp_path / "o"), "--address", f"127.0.0.1:{port}",
                            "--gpus", "1", env={"RAY_AUTH_MODE": "disabled"})
        assert refused.returncode == 2 and "--gpus and --cpus size a local Ray instance" in refused.stderr
        proc = run_being("batch", str(jobs), "--out", str(tmp_path / "o"), "--address", f"127.0.0.1:{port}",
                         env={"RAY_AUTH_MODE": "disabled"})
        assert proc.returncode == 0, proc.stderr
        assert f"ray: cluster 127.0.0.1:{port}, 1 CPUs, 0 GPUs" in proc.stderr
        frames, _ = _video(tmp_path / "o/render/a/fake+fake+fake/one.mp4")
        assert frames == 40
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_plugins_that_cannot_load_fail_their_clips_at_once(tmp_path: Path, clips: Path) -> None:
    # flash has no built-in avatar: without avatar.path its plugins cannot be built, for any clip
    jobs = _write(tmp_path / "jobs.toml", f'[[render]]\nname = "untrained"\ninput = ["{clips / "one.wav"}", '
                                          f'"{clips / "two.wav"}", "{clips / "three.wav"}"]\navatar = "flash"\n'
                                          'set = ["torso.size=[64,64]"]\n')
    out = tmp_path / "out"
    proc = run_being("batch", str(jobs), "--out", str(out), "--cpus", "2")
    assert proc.returncode == 1
    records = _manifest(out).values()
    assert all(r["state"] == "failed" and "needs a trained avatar" in r["error"] for r in records)
    assert sum(r["attempts"] for r in records) < 3  # not every clip tried to build them
    assert proc.stderr.count("being: failed:") == 1  # the error is said once
    assert "failed: 3 tasks (render/untrained/viseme+flash+static/one, " in proc.stdout
    assert "3 of 3 tasks failed" in proc.stderr


CRASHY = """
import dataclasses, os
from pathlib import Path
from being_kernel.testing.fakes import FakeRenderer
from being_kernel.testing.specs import AVATAR

class CrashyRenderer(FakeRenderer):
    # the first clip ever rendered kills its process, as a segfault or the OOM killer would
    def open_stream(self):
        marker = Path(os.environ["CRASH_MARKER"])
        if not marker.exists():
            marker.write_text("crashed once")
            os._exit(1)
        return super().open_stream()

SPEC = dataclasses.replace(AVATAR, factory="crashy_avatar:CrashyRenderer")
"""


def test_a_dead_render_worker_is_replaced_and_its_clip_retried(tmp_path: Path, clips: Path) -> None:
    site = make_dist(tmp_path / "crashy-site", "being-avatar-crashy", {"being.avatar": {"crashy": "crashy_avatar:SPEC"}},
                     {"crashy_avatar.py": CRASHY})
    jobs = _write(tmp_path / "jobs.toml", f'[[render]]\nname = "c"\ninput = ["{clips / "one.wav"}", '
                                          f'"{clips / "two.wav"}"]\naudio = "fake"\navatar = "crashy"\ntorso = "fake"\n'
                                          'set = ["avatar.size=[64,64]", "torso.size=[64,64]"]\n')
    out = tmp_path / "out"
    proc = run_being("batch", str(jobs), "--out", str(out), "--cpus", "2", extra_path=[site],
                     env={"CRASH_MARKER": str(tmp_path / "crashed")})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "crashed").exists()  # a worker did die
    records = _manifest(out)
    assert all(r["state"] == "done" for r in records.values())
    # the clip it was making, and the one queued behind it, ran again on the replacement
    assert sum(r["attempts"] for r in records.values()) > 2
    assert "2 clips rendered by 2 workers" in proc.stdout
    for name, seconds in (("one", 1.6), ("two", 2.0)):
        assert _video(out / f"render/c/fake+crashy+fake/{name}.mp4")[0] == round(seconds * 25)
    assert not _partials(out)


def test_an_empty_variant_is_the_jobs_own_config(tmp_path: Path, clips: Path) -> None:
    jobs = read_jobs(_write(tmp_path / "jobs.toml", f'[[render]]\nname = "v"\ninput = "{clips / "one.wav"}"\n'
                                                      'audio = "fake"\navatar = "fake"\ntorso = "fake"\n'
                                                      'set = ["torso.size=[64,64]"]\n[render.variants.plain]\n'
                                                      '[render.variants.big]\ntorso = { size = [128, 128] }\n'))
    tasks = {t.id: t for t in plan(jobs, tmp_path, Registry.discover())}
    assert set(tasks) == {"render/v/fake+fake+fake+plain/one", "render/v/fake+fake+fake+big/one"}
    assert tasks["render/v/fake+fake+fake+plain/one"].spec["values"]["torso"] == {"size": [64, 64]}
    assert tasks["render/v/fake+fake+fake+big/one"].spec["values"]["torso"] == {"size": [128, 128]}

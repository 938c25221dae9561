"""The ``being`` CLI as a user runs it: in a subprocess, through the bus, into real MP4 files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from conftest import make_dist, run_being

RUN = ["run", "--audio", "fake", "--avatar", "fake", "--torso", "static", "--set", "torso.size=[128,128]"]


def _tone(seconds: float, rate: int) -> np.ndarray:
    """A speech-rate amplitude-modulated two-tone signal, the analytic oracle for audio checks."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1100 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)))


def _decode(path: Path) -> tuple[int, float, float, np.ndarray, int, float, float]:
    """(video frames, video duration s, video start s, audio [C, N], audio rate, audio start s,
    audio duration s as the container declares it: decoders pad the last AAC frame, players trim it)."""
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        frames = [f for f in c.decode(v)]
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray() for f in c.decode(c.streams.audio[0])]
        a = c.streams.audio[0]
        a_start = float(a.start_time * a.time_base) if a.start_time is not None else 0.0
        rate = a.codec_context.sample_rate
        a_duration = float(a.duration * a.time_base)
    v_start = float(frames[0].pts * frames[0].time_base)
    duration = float(frames[-1].pts * frames[-1].time_base) - v_start + 1 / 25
    return len(frames), duration, v_start, np.concatenate(chunks, axis=1), rate, a_start, a_duration


def _no_output_left(out: Path) -> None:
    assert not out.exists(), f"{out} must not exist"
    leftovers = [p.name for p in out.parent.iterdir() if out.stem in p.name]
    assert leftovers == [], f"partial files left: {leftovers}"


def test_version_lists_plugin_versions() -> None:
    r = run_being("--version")
    assert r.returncode == 0 and r.stdout.startswith("being 0.1.0 (kernel API 2)")
    assert "being-torso-static 0.1.0" in r.stdout


def test_plugins_lists_static_and_install_hints_for_missing_methods(planned_site) -> None:
    r = run_being("plugins", extra_path=[planned_site])
    assert r.returncode == 0, r.stderr
    assert any(line.split()[:2] == ["static", "being-torso-static"] for line in r.stdout.splitlines())
    line = next(line for line in r.stdout.splitlines() if line.split()[:1] == ["nextgen"])
    assert "planned" in line and "pip install" not in line and "not released yet" in line  # nothing to install


def test_plugins_json_carries_config_schemas() -> None:
    r = run_being("plugins", "--json")
    data = json.loads(r.stdout)
    static = next(p for p in data["plugins"] if p["name"] == "static")
    assert static["contract"] == "torso" and static["status"] == "ok"
    assert "size" in static["config_schema"]["properties"]
    assert static["config_schema"].get("additionalProperties") is False  # extra="forbid"
    installed = {p["name"] for p in data["plugins"]}
    missing = {m["name"] for m in data["not_installed"]}
    assert missing.isdisjoint(installed)
    assert missing | installed >= {"artalk", "emote", "viseme", "splatting", "flash", "static", "warp", "restorer"}


def test_broken_plugin_is_one_line_and_the_rest_keeps_working(broken_plugin, tmp_path) -> None:
    r = run_being("plugins", extra_path=[broken_plugin])
    assert r.returncode == 0
    lines = [line for line in r.stdout.splitlines() if "broken" in line]
    assert len(lines) == 1 and "BROKEN: ImportError: needs libfoo.so" in lines[0] and "pip uninstall being-avatar-broken" in lines[0]
    out = tmp_path / "ok.mp4"
    r = run_being(*RUN, "--out", str(out), extra_path=[broken_plugin])
    assert r.returncode == 0, r.stderr
    assert out.exists()


def _write(path: Path, rate: int, channels: int, subtype: str, seconds: float = 1.37) -> np.ndarray:
    mono = _tone(seconds, rate)
    data = np.stack([mono, 0.5 * mono][:channels], axis=1) if channels > 1 else mono
    sf.write(path, data, rate, subtype=subtype)
    return data.T.reshape(channels, -1)


@pytest.mark.parametrize("rate, channels, subtype", [
    (8000, 1, "PCM_16"), (44100, 1, "PCM_16"), (48000, 1, "PCM_16"),
    (44100, 2, "PCM_16"), (16000, 1, "PCM_24"), (22050, 1, "FLOAT"),
])
def test_run_writes_frame_exact_mp4_with_the_input_audio(tmp_path, rate, channels, subtype) -> None:
    wav, out = tmp_path / "in.wav", tmp_path / "talk.mp4"
    original = _write(wav, rate, channels, subtype)
    r = run_being(*RUN, "--input", str(wav), "--out", str(out))
    assert r.returncode == 0, r.stderr
    n_frames, v_dur, v_start, audio, a_rate, a_start, a_dur = _decode(out)
    duration = original.shape[1] / rate
    assert n_frames == round(duration * 25)
    assert a_dur == pytest.approx(duration, abs=1e-6)
    assert abs(v_dur - a_dur) <= 1 / 25 + 1e-6
    assert v_start == 0.0 and abs(a_start) < 1e-3
    assert a_rate == rate and audio.shape[0] == channels
    # the decoded AAC against the analytic input, at lag 0, skipping the codec's edges
    n = min(audio.shape[1], original.shape[1])
    core = slice(int(0.05 * rate), n - int(0.05 * rate))
    for ch in range(channels):
        got, want = audio[ch, core], original[ch, core]
        assert np.corrcoef(got, want)[0, 1] > 0.98
        lags = range(-20, 21)
        best = max(lags, key=lambda k: float(np.dot(audio[ch, core.start + k:core.stop + k], want)))
        assert abs(best) <= 1, f"audio shifted by {best} samples"
        assert 0.85 < np.std(got) / np.std(want) < 1.15


def _bytes(name: str, data: bytes):
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name
    return make


def _empty_wav(d: Path) -> Path:
    sf.write(d / "e.wav", np.zeros(0), 16000)
    return d / "e.wav"


BAD_INPUT = {
    "missing file": (lambda d: d / "none.wav", [], "does not exist"),
    "zero-byte file": (_bytes("z.wav", b""), [], "empty"),
    "zero-length audio": (_empty_wav, [], "no audio samples"),
    "corrupt file": (_bytes("c.wav", b"RIFF\x00\x01garbage" * 50), [], "not decodable"),
    "unknown plugin": (None, ["--audio", "nonesuch"], "no such plugin"),
    "known but not released": (None, ["--torso", "nextgen"], "planned but not released yet"),
    "bad --set field": (None, ["--set", "torso.sh_degree=3"], "torso.sh_degree: unknown field"),
    "bad --set value": (None, ["--set", "torso.size=big"], "torso.size"),
    "motion-space mismatch": (None, ["--set", "audio.motion_space=flame2020", "--set", "audio.n_expression=100",
                                     "--set", "avatar.accepts_pose_only=false"], "motion space mismatch"),
    "stage fails mid-run": (None, ["--set", "audio.fail_after_frames=10", "--mode", "live"], "stage 'audio' failed"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path, case, planned_site) -> None:
    make_input, extra, message = BAD_INPUT[case]
    wav = make_input(tmp_path) if make_input else tmp_path / "ok.wav"
    if make_input is None:
        _write(wav, 16000, 1, "PCM_16")
    out = tmp_path / "talk.mp4"
    r = run_being(*RUN, *extra, "--input", str(wav), "--out", str(out), extra_path=[planned_site])
    assert r.returncode != 0
    errors = [line for line in r.stderr.splitlines() if line.startswith("being: error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    _no_output_left(out)


def test_unwritable_output_directory(tmp_path) -> None:
    wav = tmp_path / "ok.wav"
    _write(wav, 16000, 1, "PCM_16")
    for out, message in [(tmp_path / "no" / "dir" / "t.mp4", "does not exist"), (tmp_path / "t.avi", "must end in .mp4")]:
        r = run_being(*RUN, "--input", str(wav), "--out", str(out))
        assert r.returncode != 0 and message in r.stderr
        assert not out.exists()
    if os.geteuid() != 0:  # root writes through permission bits; a read-only mount would be needed
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        r = run_being(*RUN, "--input", str(wav), "--out", str(ro / "t.mp4"))
        assert r.returncode != 0 and "not writable" in r.stderr


def test_debug_shows_the_traceback(tmp_path) -> None:
    r = run_being("--debug", *RUN, "--input", str(tmp_path / "none.wav"), "--out", str(tmp_path / "t.mp4"))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_ctrl_c_mid_run_leaves_nothing(tmp_path) -> None:
    wav, out = tmp_path / "long.wav", tmp_path / "talk.mp4"
    _write(wav, 16000, 1, "PCM_16", seconds=30.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    proc = subprocess.Popen([sys.executable, "-c", "from being_kernel.cli.main import main; main()", *RUN,
                             "--mode", "live", "--realtime", "--input", str(wav), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # as a terminal would: a runner in the background may have SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial.mp4") for p in tmp_path.iterdir()):  # wait until it is writing
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    _no_output_left(out)


def test_broken_hook_plugin_is_reported_and_the_cli_keeps_working(tmp_path) -> None:
    hooks = make_dist(tmp_path / "hooks", "being-hooks-broken", {"being.hooks": {"oops": "oops_hooks"}},
                      {"oops_hooks.py": "raise RuntimeError('hook plugin exploded')\n"})
    r = run_being("plugins", extra_path=[hooks])
    assert r.returncode == 0
    assert "being: warning: hooks plugin 'oops'" in r.stderr and "hook plugin exploded" in r.stderr
    assert "BROKEN: RuntimeError: hook plugin exploded" in r.stdout
    assert any(line.split()[:1] == ["static"] for line in r.stdout.splitlines())


SIGNALLED_COMMAND = """
import os, signal, time
from being_kernel.hooks import hookimpl

@hookimpl
def being_cli_commands(app):
    @app.command("stop-me")
    def stop_me(signum: int) -> None:
        if signum == signal.SIGINT:  # Python's Ctrl-C handler, also where a background runner ignores SIGINT
            signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signum)  # as a signal arriving while a command still imports, before its own handling
        time.sleep(30)
"""


@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_that_leaves_a_command_is_reported_with_its_code(tmp_path, signum, code, word) -> None:
    hooks = make_dist(tmp_path / "hooks", "being-hooks-stop", {"being.hooks": {"stop": "stop_hooks"}},
                      {"stop_hooks.py": SIGNALLED_COMMAND})
    r = run_being("stop-me", str(int(signum)), extra_path=[hooks], timeout=60)
    assert r.returncode == code and r.stderr.splitlines()[-1] == f"being: error: {word}", r.stderr

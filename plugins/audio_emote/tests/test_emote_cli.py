"""``being run --audio emote`` as a user runs it: in a subprocess, into a real MP4."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av


def _being(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEING_", "XDG_"))}
    env.update({"XDG_CACHE_HOME": str(home / "cache"), "OMP_NUM_THREADS": "1"})  # never a real cache here
    cmd = [sys.executable, "-m", "being_kernel.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_run_drives_the_avatar_with_an_emotion(tiny_assets: Path, tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    r = _being("run", "--audio", "emote", "--set", f"audio.weights={tiny_assets / 'EMOTE_v2'}",
               "--set", f"audio.pose_weights={tiny_assets}", "--set", "audio.emotion=happy", "--set", "audio.device=cpu",
               "--avatar", "fake", "--torso", "fake", "--out", str(out), home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _frames(out) == 100  # the built-in 4 s demo clip at 25 fps


def test_run_without_weights_fails_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    r = _being("run", "--audio", "emote", "--avatar", "fake", "--torso", "fake", "--out", str(out), home=tmp_path)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("being: error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    for needed in ("SadTalker pose weights not found", "audio.pose=none"):  # the small file is looked for first
        assert needed in errors[0], needed
    r = _being("run", "--audio", "emote", "--set", "audio.pose=none", "--avatar", "fake", "--torso", "fake",
               "--out", str(out), home=tmp_path)
    errors = [line for line in r.stderr.splitlines() if line.startswith("being: error:")]
    assert r.returncode == 2 and len(errors) == 1
    for needed in ("EMOTE weights not found", "https://emote.is.tue.mpg.de", "--set audio.weights=DIR", "BEING_EMOTE_DIR"):
        assert needed in errors[0], needed
    assert not out.exists() and not list(tmp_path.glob("*.mp4"))


def test_a_bad_setting_is_named(tmp_path: Path) -> None:
    r = _being("run", "--audio", "emote", "--set", "audio.emotion=bored", "--avatar", "fake", "--torso", "fake",
               "--out", str(tmp_path / "t.mp4"), home=tmp_path)
    assert r.returncode == 2 and "audio.emotion" in r.stderr and "unknown emotion" in r.stderr

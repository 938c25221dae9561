"""``being run --audio artalk`` as a user runs it: in a subprocess, into a real MP4."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av



def _being(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEING_", "HF_", "HUGGINGFACE_"))}
    env.update({"HF_HUB_CACHE": str(cache), "OMP_NUM_THREADS": "1"})  # never a real cache on this machine
    cmd = [sys.executable, "-m", "being_kernel.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_run_drives_the_avatar(tiny_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "talk.mp4"
    r = _being("run", "--audio", "artalk", "--set", f"audio.weights={tiny_dir}", "--set", "audio.style=natural_0",
               "--set", "audio.device=cpu", "--avatar", "fake", "--torso", "fake", "--out", str(out),
               cache=tmp_path / "empty-cache")
    assert r.returncode == 0, r.stderr
    assert _frames(out) == 100  # the built-in 4 s demo clip at 25 fps


def test_run_without_weights_fails_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    r = _being("run", "--audio", "artalk", "--avatar", "fake", "--torso", "fake", "--out", str(out),
               cache=tmp_path / "empty-cache")
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("being: error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr
    for needed in ("ARTalk weights not found", "xg-chu/ARTalk", "ARTalk_wav2vec.pt", "config.json",
                   "--set audio.weights=DIR", "BEING_ARTALK_DIR"):
        assert needed in errors[0], needed
    assert not out.exists() and not list(tmp_path.glob("*.mp4"))

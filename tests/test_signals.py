"""Stopping ``being run`` with a signal at any moment: Ctrl-C exits 130, SIGTERM 143, and nothing is
left in the output directory (neither the final name nor a hidden partial file); partial files a
killed run left behind are removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _speechlike(path: Path, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * 16000)) / 16000
    x = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(len(t)))
    sf.write(path, x.astype(np.float32), 16000)
    return path


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    return subprocess.Popen([sys.executable, "-m", "being_kernel.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _speechlike(tmp_path_factory.mktemp("clip") / "long.wav", 40.0)


@pytest.mark.parametrize(("signum", "code", "after_s"), [(signal.SIGINT, 130, 1.5), (signal.SIGINT, 130, 4.0),
                                                         (signal.SIGINT, 130, 6.5), (signal.SIGTERM, 143, 4.0)])
def test_a_signal_at_any_moment_exits_cleanly_and_leaves_nothing(long_clip: Path, tmp_path: Path, signum: int,
                                                                 code: int, after_s: float) -> None:
    # the moments fall in start-up, motion generation (pocketsphinx) and rendering on a 2-core machine
    proc = _start("run", "--input", str(long_clip), "--out", "talk.mp4", cwd=tmp_path)
    time.sleep(after_s)
    if proc.poll() is not None:
        pytest.fail(f"the run ended before the signal: {proc.communicate()}")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err  # never SIGABRT (134) from native threads at exit
    assert "terminate called" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the run left files behind"


def test_a_run_removes_the_partial_files_a_killed_run_left(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".talk.mp4.{int(dead.stdout)}.partial.mp4"
    stale.write_bytes(b"half an mp4")
    mine = tmp_path / f".talk.mp4.{os.getpid()}.partial.mp4"  # a live process's: kept
    mine.write_bytes(b"still being written")
    proc = _start("run", "--audio", "fake", "--avatar", "fake", "--torso", "static", "--set", "torso.size=[64,64]",
                  "--set", "avatar.size=[64,64]", "--out", "talk.mp4", cwd=tmp_path)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not stale.exists() and mine.exists() and (tmp_path / "talk.mp4").is_file()

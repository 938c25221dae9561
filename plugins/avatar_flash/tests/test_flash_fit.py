"""FlashAvatar training end to end on a small synthetic dataset (CPU): ``being fit --avatar flash``
improves the held-out frames, the summary names the eval command, and ``being run`` drives the
fitted avatar into an H.264 file with the audio's duration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from being_kernel.datasets import make_synthetic

SETS = {"steps": 160, "uv_size": 48, "sh_degree": 1, "sh_interval": 80, "preview_every": 1000,
        "checkpoint_every": 1000, "device": "cpu", "backend": "cpu", "lpips": "off"}


def _being(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    return subprocess.run([sys.executable, "-m", "being_kernel.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("flashfit")
    data = make_synthetic(root / "synth", size=64, frames=36, test_frames=6, progress=False)
    proc = _being("fit", "--avatar", "flash", "--data", str(data), "--out", str(root / "avatar"),
                  *[f"--set=fit.{k}={v}" for k, v in SETS.items()], cwd=root)
    return root / "avatar", data, proc


def test_fit_improves_held_out_frames(fitted: tuple[Path, Path, subprocess.CompletedProcess]) -> None:
    avatar, data, proc = fitted
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((avatar.with_name("avatar.fit") / "summary.json").read_text())
    assert summary["steps"] == SETS["steps"] and summary["method"] == "flash"
    assert summary["test_psnr"] > summary["initial_test_psnr"] + 3.0, summary
    assert f"being eval {avatar} --avatar flash --data {data}" in proc.stdout


def test_being_run_drives_the_fitted_avatar(fitted: tuple[Path, Path, subprocess.CompletedProcess]) -> None:
    avatar, _, proc = fitted
    assert proc.returncode == 0, proc.stderr
    out = avatar.parent / "talk.mp4"
    run = _being("run", "--audio", "fake", "--avatar", "flash", f"--set=avatar.path={avatar}", "--set=avatar.device=cpu",
                 "--set=avatar.size=[64,64]", "--out", str(out), cwd=avatar.parent)
    assert run.returncode == 0, run.stderr
    with av.open(str(out)) as f:
        video = f.streams.video[0]
        assert video.codec_context.name == "h264" and f.streams.audio
        frames = sum(1 for _ in f.decode(video=0))
    assert frames == 100  # the built-in demo clip: 4 s at 25 fps


def test_quiet_fit_prints_no_progress(fitted: tuple[Path, Path, subprocess.CompletedProcess]) -> None:
    avatar, data, _ = fitted
    sets = {**SETS, "steps": 2, "uv_size": 16}
    proc = _being("fit", "--avatar", "flash", "--data", str(data), "--out", str(avatar.parent / "quiet"), "-q",
                  *[f"--set=fit.{k}={v}" for k, v in sets.items()], cwd=avatar.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "reading frames" not in proc.stderr and "being fit" not in proc.stderr, proc.stderr
    assert (avatar.parent / "quiet" / "avatar.json").is_file()

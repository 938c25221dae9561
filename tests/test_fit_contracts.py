"""``being fit`` for any contract: the harness trains the fake torso (dataset kind "full-frame")
to an analytic optimum, refuses data of the wrong kind with what would fit, and the trainer
conformance suite holds for it too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from being_kernel.datasets import load_tracked_video
from being_kernel.datasets.synthetic import make_synthetic
from being_kernel.testing import trainer_conformance_suite


def _being(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    return subprocess.run([sys.executable, "-c", "from being_kernel.cli.main import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=600)


def _full_frame(root: Path) -> Path:
    data = make_synthetic(root / "synth", size=32, frames=8, test_frames=2, progress=False)
    sidecar = data / "being_dataset.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "full_frame": True}))
    return data


@pytest.fixture(scope="module")
def full_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _full_frame(tmp_path_factory.mktemp("ff"))


TestFakeTorsoTrainer = trainer_conformance_suite("torso", "fake", {"steps": 8, "batch_frames": 2, "device": "cpu",
                                                                   "lpips": "off"}, dataset=_full_frame)


def test_being_fit_torso_learns_the_median_colour(full_frame: Path, tmp_path: Path) -> None:
    out = tmp_path / "plate"
    proc = _being("fit", "--torso", "fake", "--data", str(full_frame), "--out", str(out), "--set", "fit.steps=400",
                  "--set", "fit.ssim_weight=0", "--set", "fit.lpips=off", "--set", "fit.batch_frames=6",
                  "--set", "fit.device=cpu")
    assert proc.returncode == 0, proc.stderr
    assert "--torso fake, 400 steps" in proc.stdout
    learned = torch.tensor(json.loads((out / "torso.json").read_text())["torso"]["color"])
    video = load_tracked_video(full_frame)
    pixels = torch.stack([video.load_image(i) for i in video.split()[0]]).reshape(-1, 3)
    # the L1 minimiser over all training pixels is their per-channel median
    torch.testing.assert_close(learned, pixels.median(dim=0).values, atol=0.02, rtol=0)


def test_being_fit_refuses_data_of_the_wrong_kind(tmp_path: Path) -> None:
    heads = make_synthetic(tmp_path / "heads", size=32, frames=4, test_frames=1, progress=False)
    proc = _being("fit", "--torso", "fake", "--data", str(heads), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "trains on full frames" in proc.stderr and "full_frame" in proc.stderr
    proc = _being("fit", "--torso", "static", "--data", str(heads), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "cannot be trained" in proc.stderr and "--torso fake" in proc.stderr
    proc = _being("fit", "--torso", "fake", "--avatar", "splatting", "--data", str(heads), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "one of --avatar, --torso or --audio" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_being_plugins_shows_who_is_trainable_and_on_what() -> None:
    text = _being("plugins").stdout
    assert "[being fit --avatar splatting: tracked-video]" in text and "[being fit --torso fake: full-frame]" in text
    listing = json.loads(_being("plugins", "--json").stdout)
    by_name = {(r["contract"], r["name"]): r for r in listing["plugins"]}
    assert by_name[("torso", "fake")]["trainer"]["dataset"] == "full-frame"
    assert "steps" in by_name[("avatar", "splatting")]["trainer"]["config_schema"]["properties"]
    assert by_name[("torso", "static")]["trainer"] is None


def test_a_time_budget_ends_training_and_says_so(full_frame: Path, tmp_path: Path) -> None:
    proc = _being("fit", "--torso", "fake", "--data", str(full_frame), "--out", str(tmp_path / "plate"),
                  "--set", "fit.steps=100000000", "--set", "fit.max_minutes=0.01", "--set", "fit.device=cpu",
                  "--set", "fit.lpips=off")
    assert proc.returncode == 0, proc.stderr
    from being_kernel.train import FitSummary

    summary = FitSummary.from_json((tmp_path / "plate.fit" / "summary.json").read_text())
    assert summary.stopped_by == "time" and 0 < summary.steps < 100000000
    assert summary.train_seconds >= 0.6 and "stopped by the time budget" in proc.stdout


def test_audio_models_get_a_tracked_video_with_its_sound(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    from being_kernel.errors import InputError
    from being_kernel.train.data import load_fit_data

    data = make_synthetic(tmp_path / "talk", size=32, frames=4, test_frames=1, progress=False)
    with pytest.raises(InputError, match="no audio track"):
        load_fit_data("audio-motion", data)
    sf.write(data / "audio.wav", (0.1 * np.sin(np.arange(16000) / 10)).astype(np.float32), 16000)
    video = load_fit_data("audio-motion", data)
    assert video.audio_path == data / "audio.wav" and video.load_audio().sample_rate == 16000
    assert load_fit_data("tracked-video", data).full_frame is False

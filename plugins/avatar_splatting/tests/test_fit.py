"""SplattingAvatar training end to end on a small synthetic dataset (CPU): the trainer conformance
suite (atomic output, exact resume, typed summary, PSNR agreeing with being eval), ``being fit``
improves the held-out frames, ``being eval`` reports and ``being run`` drives the fitted avatar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch

from being_avatar_splatting.spec import SPEC, SplattingFitConfig
from being_kernel import ConfigError
from being_kernel.datasets import load_tracked_video, make_synthetic
from being_kernel.testing import trainer_conformance_suite
from being_kernel.train import FitSummary, run_fit

SMALL = dict(batch_frames=2, init_gaussians=2500, max_gaussians=6000, densify_from=60, densify_interval=60,
             sh_degree=1, sh_interval=60, preview_every=1000, checkpoint_every=1000, device="cpu", backend="cpu",
             lpips="off")


# The harness's checks on this trainer: atomic output, SIGINT + resume equals a straight run (with a
# densification round before and after the interrupt, so optimizer surgery is resumed too), the
# typed summary, and training PSNR against being eval.
TestTrainerConformance = trainer_conformance_suite(
    "avatar", "splatting", {**SMALL, "steps": 24, "init_gaussians": 500, "densify_from": 0, "densify_interval": 10,
                            "walk_interval": 3}, interrupt_at=15, plugin_config={"backend": "cpu"})


def _fit(video, out: Path, config: SplattingFitConfig) -> FitSummary:  # noqa: ANN001 - a TrackedVideo
    return run_fit(SPEC.trainer, video, out, config, work=out.with_name(out.name + ".fit"), contract="avatar",
                   method_name="splatting", log=lambda m: None)


def _being(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    return subprocess.run([sys.executable, "-m", "being_kernel.cli", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("data") / "synth", size=64, frames=36, test_frames=6, progress=False)


@pytest.fixture(scope="module")
def fitted(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("fit")
    sets = [f"--set=fit.{k}={v}" for k, v in {**SMALL, "steps": 240}.items()]
    proc = _being("fit", "--data", str(synth), "--out", str(root / "avatar"), *sets, cwd=root)
    return root / "avatar", root / "avatar.fit", proc


def test_fit_improves_held_out_frames(fitted: tuple[Path, Path, subprocess.CompletedProcess]) -> None:
    avatar, work, proc = fitted
    assert proc.returncode == 0, proc.stderr
    summary = FitSummary.from_json((work / "summary.json").read_text())
    assert summary.steps == 240 and summary.test_frames == 6 and summary.stopped_by == "steps"
    # the placed, projection-coloured Gaussians start some dB below; training must clearly gain
    assert summary.test_psnr > summary.initial_test_psnr + 3.0, summary
    assert summary.stat("gaussians") > SMALL["init_gaussians"]  # densification ran
    assert f"held-out PSNR {summary.test_psnr:.2f} dB" in proc.stdout  # being fit prints the typed summary
    assert (work / "previews" / "final.png").is_file()
    assert {p.name for p in avatar.iterdir()} == {"avatar.json", "gaussians.safetensors"}


def test_being_eval_writes_report_and_side_by_side_video(fitted, synth: Path, tmp_path: Path) -> None:  # noqa: ANN001
    avatar, _, _ = fitted
    proc = _being("eval", str(avatar), "--data", str(synth), "--out", str(tmp_path / "ev"), "--device", "cpu",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["frames"] == list(range(30, 36)) and len(report["per_frame"]) == 6
    assert report["psnr"] > 20 and 0 < report["ssim"] <= 1
    assert report["lpips"] is None and report["lpips_reason"]  # no LPIPS weights on the test machine
    with av.open(str(tmp_path / "ev" / "comparison.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (64, 128, 3)


def test_being_run_drives_the_fitted_avatar(fitted, tmp_path: Path) -> None:  # noqa: ANN001
    avatar, _, _ = fitted
    out = tmp_path / "talk.mp4"
    proc = _being("run", "--audio", "fake", "--avatar", "splatting", "--torso", "static", "--set",
                  f"avatar.path={avatar}", "--set", "avatar.size=[128,128]", "--set", "torso.size=[128,128]",
                  "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    centre = frame[32:96, 40:88].astype(float)
    assert centre.std() > 10  # a face, not an empty background


def test_fit_refuses_bad_requests(synth: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep me")
    proc = _being("fit", "--data", str(synth), "--out", str(tmp_path / "taken"), cwd=tmp_path)
    assert proc.returncode == 2 and "already exists" in proc.stderr and (tmp_path / "taken" / "x").exists()
    proc = _being("fit", "--avatar", "fake", "--data", str(synth), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2 and "cannot be trained" in proc.stderr and "splatting" in proc.stderr
    proc = _being("fit", "--data", str(synth), "--out", str(tmp_path / "o"), "--set", "fit.stepz=3", cwd=tmp_path)
    assert proc.returncode == 2 and "fit.stepz: unknown field" in proc.stderr
    proc = _being("fit", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2 and "nowhere" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_lpips_term_joins_the_loss_when_its_weights_are_on_disk(synth: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from being_kernel.testing import write_alex_weights

    video = load_tracked_video(synth)
    base = {**SMALL, "steps": 3, "init_gaussians": 300, "densify_from": 1000, "lpips_from": 0.0}
    monkeypatch.setenv("BEING_LPIPS_DIR", str(write_alex_weights(tmp_path / "lpips")))
    with_lpips = _fit(video, tmp_path / "a", SplattingFitConfig(**{**base, "lpips": "on"}))
    without = _fit(video, tmp_path / "b", SplattingFitConfig(**{**base, "lpips": "off"}))
    assert with_lpips.steps == without.steps == 3
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "gaussians.safetensors")), load_file(str(tmp_path / "b" / "gaussians.safetensors"))
    assert not torch.equal(a["color"], b["color"])  # the LPIPS gradient changed the colours

    monkeypatch.setenv("BEING_LPIPS_DIR", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="fit.lpips=on"):
        _fit(video, tmp_path / "c", SplattingFitConfig(**{**base, "lpips": "on"}))
    assert not (tmp_path / "c.fit").exists() and not (tmp_path / "c").exists()  # a refused start leaves nothing

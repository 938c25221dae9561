"""The warped torso: its geometry against analytic values, training and the compositor on a small
full-frame synthetic set, and its errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from being_kernel import ConfigError, InputError
from being_kernel.api import Frame, Placement, head_poses
from being_kernel.head import axis_angle_to_matrix
from being_torso_warp.anchors import Anchors, apply_homography, fit_homography
from being_torso_warp.compositor import WarpTorso
from being_torso_warp.field import encode
from being_torso_warp.pose import TorsoCamera, chordal_mean
from being_torso_warp.spec import WarpConfig
from being_torso_warp.testing import random_torso

BEING = [sys.executable, "-m", "being_kernel.cli"]


def _being(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*BEING, *args], capture_output=True, text=True, cwd=cwd, timeout=900)


# -- geometry against analytic values ---------------------------------------------------------------


def test_homography_is_recovered_exactly_and_zero_weights_drop_points() -> None:
    H = torch.tensor([[1.1, 0.05, 0.02], [-0.03, 0.95, 0.04], [0.1, -0.2, 1.0]], dtype=torch.float64)
    src = torch.rand(1, 30, 2, dtype=torch.float64)
    dst = apply_homography(H[None], src)
    noisy = dst.clone()
    noisy[0, :5] += 0.3  # outliers, weighted 0
    w = torch.ones(1, 30, dtype=torch.float64)
    w[0, :5] = 0
    for target, weights in ((dst, None), (noisy, w)):
        got = fit_homography(src, target, weights)[0]
        torch.testing.assert_close(got, H, atol=1e-8, rtol=0)


def test_positional_encoding_values() -> None:
    x = torch.tensor([[0.25, -1.0]])
    out = encode(x, 2)
    want = torch.tensor([[0.25, -1.0, math.sin(0.25), math.sin(-1.0), math.cos(0.25), math.cos(-1.0),
                          math.sin(0.5), math.sin(-2.0), math.cos(0.5), math.cos(-2.0)]])
    torch.testing.assert_close(out, want)


def test_anchor_skinning_is_rigid_at_weight_one_and_still_at_zero() -> None:
    R_ref = axis_angle_to_matrix(torch.tensor([[0.1, -0.2, 0.05]]))[0]
    cam = TorsoCamera(torch.tensor([[100.0, 0, 32], [0, 100, 32], [0, 0, 1]]), (64, 64), R_ref,
                      torch.tensor([0.0, 0.1, 1.0]), torch.zeros(3))
    rest = torch.randn(5, 3) * 0.1 + torch.tensor([0.0, 0.2, 1.0])
    turn = axis_angle_to_matrix(torch.tensor([[0.0, 0.4, 0.0]]))[0]
    R_hc, c = (turn @ R_ref)[None], torch.tensor([[0.01, 0.1, 1.02]])
    rigid = (turn @ (rest - cam.c_ref).T).T + c[0]
    for w, want in ((1.0, rigid), (0.0, rest)):
        a = Anchors(rest, torch.zeros(5, 2), torch.full((5,), w), torch.ones(5))
        a.weight_logit.data.fill_(50.0 if w else -50.0)
        torch.testing.assert_close(a.posed(R_hc, c, cam)[0], want, atol=1e-5, rtol=0)
    assert float(cam.code(R_ref[None], cam.c_ref[None]).abs().max()) < 1e-6  # the reference is pose 0


def test_chordal_mean_of_symmetric_rotations_is_their_centre() -> None:
    centre = axis_angle_to_matrix(torch.tensor([[0.3, 0.1, -0.2]]))[0].double()
    offsets = axis_angle_to_matrix(torch.tensor([[0.2, 0, 0], [-0.2, 0, 0], [0, 0.3, 0], [0, -0.3, 0]])).double()
    torch.testing.assert_close(chordal_mean(centre @ offsets), centre, atol=1e-6, rtol=0)


# -- the full-frame synthetic set --------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ff") / "synth"
    proc = _being("make-dataset", "synthetic", "--full-frame", "--out", str(out), "--size", "64", "--frames", "72",
                  "--test-frames", "12", "--supersample", "2", "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def trained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("torso") / "torso"
    proc = _being("fit", "--torso", "warp", "--data", str(dataset), "--out", str(out), "--device", "cpu",
                  "--set", "fit.steps=300", "--set", "fit.lpips=off", "--set", "fit.hidden=32",
                  "--set", "fit.features=8", "--set", "fit.distill_steps=40", "--set", "fit.anchors=12", "-q")
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out.parent / "torso.fit" / "summary.json").read_text())


# -- training and compositing ----------------------------------------------------------------------


def test_training_improves_the_held_out_frames(trained: tuple[Path, dict]) -> None:
    out, summary = trained
    assert {p.name for p in out.iterdir()} == {"torso.json", "torso.safetensors", "background.png"}
    assert summary["test_psnr"] > summary["initial_test_psnr"] + 0.3


def test_compositor_reproduces_the_trained_model_on_in_frame_heads(dataset: Path, trained: tuple[Path, dict]) -> None:
    """`being eval`'s heads (the frames' own, through the tracked cameras) go through the compositor's
    in-frame path; its full mode must give the harness's own rendering of those frames."""
    from being_kernel.datasets import load_full_frames, load_tracked_video
    from being_kernel.evaluation import true_heads
    from being_kernel.head import FlameModel
    from being_torso_warp.fit import WarpFit
    from being_torso_warp.spec import WarpFitConfig

    out, _ = trained
    video = load_tracked_video(dataset)
    fit = WarpFit(video, WarpFitConfig(hidden=32, features=8, anchors=12), torch.device("cpu"), torch.Generator())
    from being_torso_warp.asset import load_torso

    model, _ = load_torso(str(out))
    fit._build(model.anchors)
    state = {k: v for k, v in model.state_dict().items() if k not in ("plate", "baked") and not k.startswith("fast_")}
    fit.model.load_state_dict({**state, "plate": fit.model.plate, "baked": torch.zeros(0)}, strict=True)
    idx = torch.tensor([3, 40, 66])
    want, _ = fit.render_eval(idx, torch.zeros(3, 3))
    layers = load_full_frames(video, frames=idx.tolist())
    motion, cams = video.motion.select(idx), video.cameras[idx]
    joints = FlameModel(video.head())(motion, None).joints
    pix, depth = cams.project(joints)
    heads = true_heads(layers.image(idx), layers.head_mask(idx), idx, motion, cams, pix[:, 0], depth[:, 0])
    got = WarpTorso(WarpConfig(path=str(out), mode="full", device="cpu")).composite(heads)
    torch.testing.assert_close(torch.stack([f.image for f in got]), want, atol=2e-4, rtol=0)


def test_being_eval_gives_the_harness_held_out_figure(dataset: Path, trained: tuple[Path, dict]) -> None:
    """`being eval --torso warp` (the compositor on the frames' own heads) and the harness's held-out
    PSNR of the same model are one measurement; the fast mode is scored too."""
    from being_kernel.evaluation import evaluate_compositor

    out, summary = trained
    full = evaluate_compositor("warp", {"path": str(out), "mode": "full"}, dataset, "cpu")
    fast = evaluate_compositor("warp", {"path": str(out), "mode": "fast"}, dataset, "cpu")
    assert abs(full.psnr - summary["test_psnr"]) < 0.01
    assert math.isfinite(full.band_psnr) and math.isfinite(fast.psnr) and fast.psnr > 20


def _disk_head(size: int, radius: float, anchor: tuple[float, float], ppm: float, index: int = 0) -> Frame:
    """An opaque white disk RGBA head of ``size``² centred on its anchor, at pose zero, no camera."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    inside = (((xs - anchor[0]) ** 2 + (ys - anchor[1]) ** 2) < radius ** 2).float()[..., None]
    motion = _still_motion(1)
    return Frame(torch.cat([inside.expand(-1, -1, 3), inside], -1), index, index / 25,
                 placement=Placement(anchor, ppm), head=head_poses(motion, None)[0])


def _still_motion(n: int):  # noqa: ANN202
    from being_kernel.api import DEMO_HEAD, Motion

    z = torch.zeros(n, 3)
    return Motion(torch.zeros(n, 0), z, z, z, torch.zeros(n, 6), torch.zeros(n, 2), z, fps=25.0, space=DEMO_HEAD)


def test_portrait_heads_are_moved_and_scaled_onto_the_neck(tmp_path: Path) -> None:
    torso = random_torso(tmp_path / "t", size=64)
    comp = WarpTorso(WarpConfig(path=str(torso), device="cpu"))
    cam = comp.model.camera
    target = cam.project(cam.c_ref[None])[0] * 64
    for ppm, radius in ((150.0, 16.0), (500.0, 40.0)):  # about the same size, and shrunk to a third
        scale = float(cam.px_per_metre(cam.c_ref[None])[0]) / ppm
        white = _disk_head(128, radius, (64.0, 50.0), ppm)
        black = Frame(white.image * torch.tensor([0.0, 0, 0, 1]), 0, 0.0, placement=white.placement, head=white.head)
        white_out, black_out = (f.image for f in comp.composite([white, black]))
        alpha = (white_out - black_out).mean(-1)  # the placed head's coverage, the torso cancels out
        ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
        centre = torch.stack([(alpha * xs).sum(), (alpha * ys).sum()]) / alpha.sum()
        torch.testing.assert_close(centre, target, atol=0.05, rtol=0)
        assert abs(math.sqrt(float(alpha.sum()) / math.pi) - radius * scale) < 0.1


def test_stream_equals_batch_and_resized_output(tmp_path: Path) -> None:
    torso = random_torso(tmp_path / "t", size=64)
    heads = [_disk_head(64, 10.0, (32.0, 30.0), 400.0, i) for i in range(5)]
    for mode in ("full", "fast"):
        comp = WarpTorso(WarpConfig(path=str(torso), mode=mode, device="cpu", batch_frames=2))
        batch = comp.composite(heads)
        stream = comp.open_stream()
        frames = stream.push(heads[:3]) + stream.push(heads[3:]) + stream.finish()
        assert [f.index for f in frames] == list(range(5))
        for a, b in zip(batch, frames):
            assert torch.equal(a.image, b.image)
    big = WarpTorso(WarpConfig(path=str(torso), size=(128, 128), device="cpu"))
    assert big.info().size == (128, 128) and big.composite(heads[:1])[0].image.shape == (128, 128, 3)


# -- errors -----------------------------------------------------------------------------------------


def test_missing_and_mismatched_torsos_get_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="torso.path") as err:
        WarpTorso(WarpConfig())
    assert "being fit --torso warp" in err.value.hint
    with pytest.raises(InputError, match="not a warp torso"):
        WarpTorso(WarpConfig(path=str(tmp_path)))
    torso = random_torso(tmp_path / "t", size=64)
    with pytest.raises(ConfigError, match="aspect ratio"):
        WarpTorso(WarpConfig(path=str(torso), size=(128, 64)))
    meta = json.loads((torso / "torso.json").read_text())
    (torso / "torso.json").write_text(json.dumps({**meta, "features": meta["features"] + 1}))
    with pytest.raises(InputError, match="does not match torso.json"):
        WarpTorso(WarpConfig(path=str(torso)))
    (torso / "torso.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(InputError, match="newer") as err:
        WarpTorso(WarpConfig(path=str(torso)))
    assert "upgrade being-torso-warp" in err.value.hint


def test_being_run_with_a_torso_and_without_one(tmp_path: Path) -> None:
    torso = random_torso(tmp_path / "t", size=64)
    out = tmp_path / "talk.mp4"
    proc = _being("run", "--audio", "fake", "--avatar", "splatting", "--torso", "warp", "--set", f"torso.path={torso}",
                  "--set", "avatar.size=[64,64]", "--device", "cpu", "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    import av

    with av.open(str(out)) as f:
        video = f.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 64, 64)
        assert len(f.streams.audio) == 1
    proc = _being("run", "--audio", "fake", "--torso", "warp", "--out", str(tmp_path / "no.mp4"), "-q")
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode != 0 and "being fit --torso warp" in proc.stderr and len(lines) <= 2
    assert not (tmp_path / "no.mp4").exists()


@pytest.mark.gpu
def test_cuda_matches_cpu(tmp_path: Path) -> None:
    torso = random_torso(tmp_path / "t", size=64)
    heads = [_disk_head(64, 10.0, (32.0, 30.0), 400.0, i) for i in range(3)]
    for mode, half, tol in (("fast", False, 1e-3), ("full", False, 1e-3), ("full", True, 0.1)):
        cpu = WarpTorso(WarpConfig(path=str(torso), mode=mode, device="cpu")).composite(heads)
        gpu = WarpTorso(WarpConfig(path=str(torso), mode=mode, device="cuda", half=half)).composite(heads)
        diff = max(float((a.image - b.image.cpu()).abs().max()) for a, b in zip(cpu, gpu))
        assert diff < tol, (mode, half, diff)


def test_random_torso_fixture_is_a_valid_asset(tmp_path: Path) -> None:
    torso = random_torso(tmp_path / "t", size=32)
    comp = WarpTorso(WarpConfig(path=str(torso), device="cpu"))
    assert np.isfinite(comp.composite([_disk_head(32, 5.0, (16.0, 16.0), 300.0)])[0].image.numpy()).all()


def test_coverage_reports_the_placed_head_and_the_torso_inside_its_box(tmp_path: Path) -> None:
    torso = random_torso(tmp_path / "t", size=64)
    comp = WarpTorso(WarpConfig(path=str(torso), device="cpu"))
    white = _disk_head(64, 10.0, (32.0, 30.0), 400.0)
    black = Frame(white.image * torch.tensor([0.0, 0, 0, 1]), 1, 0.04, placement=white.placement, head=white.head)
    frames, coverage = comp.composite_with_coverage([white, black])
    assert coverage.shape == (2, 64, 64, 2)
    torch.testing.assert_close(coverage[0, ..., 0], (frames[0].image - frames[1].image).mean(-1), atol=1e-5, rtol=0)
    x0, y0, x1, y1 = comp.model.box
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[y0:y1, x0:x1] = False
    assert float(coverage[..., 1][:, outside].abs().max()) == 0.0  # the torso is drawn only in its box
    assert float(coverage[0, y0:y1, x0:x1, 1].max()) > 0.0
    torch.testing.assert_close(coverage[0, ..., 1], coverage[1, ..., 1])  # the same pose, the same torso

"""The seam restorer: its band and crops against brute-force oracles, the compositor's guarantees
(untouched outside the band, stream = batch, an untrained restorer is its base), training on a
small full-frame synthetic set, and its errors."""

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
from being_kernel.api import Frame, Placement
from being_torso_restorer.compositor import RestorerTorso
from being_torso_restorer.network import RestorerNet
from being_torso_restorer.restore import Layout, band_weight, crops, restore
from being_torso_restorer.spec import RestorerConfig
from being_torso_restorer.testing import random_restorer

BEING = [sys.executable, "-m", "being_kernel.cli"]


def _being(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BEING, *args], capture_output=True, text=True, timeout=900)


def _coverage(B: int, H: int, W: int, centres: list[tuple[float, float]], r: float, neck_row: int) -> torch.Tensor:
    """[B, H, W, 2]: an opaque disk head of radius r at each centre, and a torso below ``neck_row``."""
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    out = torch.zeros(B, H, W, 2)
    for b, (cx, cy) in enumerate(centres):
        out[b, ..., 0] = (((xs - cx) ** 2 + (ys - cy) ** 2) < r * r).float()
        out[b, neck_row:, :, 1] = 1
    return out


def _brute_band(mask_a: np.ndarray, mask_b: np.ndarray, ra: int, rb: int) -> np.ndarray:
    """Pixels within Chebyshev distance ``ra`` of mask a and ``rb`` of mask b, by looking at every pixel's windows."""
    H, W = mask_a.shape
    win = lambda y, x, r: (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))  # noqa: E731
    out = np.zeros((H, W), bool)
    for y in range(H):
        for x in range(W):
            out[y, x] = mask_a[win(y, x, ra)].any() and mask_b[win(y, x, rb)].any()
    return out


# -- band, crops and the network ----------------------------------------------------------------------


def test_band_is_where_grown_head_and_torso_meet() -> None:
    cov = _coverage(2, 40, 48, [(24.0, 14.0), (15.0, 20.0)], 9.0, 24)
    weight = band_weight(cov, (5, 2))
    for b in range(2):
        want = _brute_band(cov[b, ..., 0].numpy() > 0.5, cov[b, ..., 1].numpy() > 0.5, 5, 2)
        assert np.array_equal(weight[b, ..., 0].numpy() > 0, want)
    assert float(weight.max()) == 1.0 and float(weight.min()) == 0.0


def test_crops_hold_the_whole_band_and_paste_back_in_place() -> None:
    cov = _coverage(2, 64, 64, [(32.0, 20.0), (12.0, 40.0)], 10.0, 34)
    image = torch.rand(2, 64, 64, 3)
    c = crops(image, cov, Layout((4, 2), (32, 24)))
    assert c.image.shape == (2, 24, 32, 3)
    inside = band_weight(cov, (4, 2))[..., 0] > 0
    for b in range(2):  # every band pixel lies in its frame's crop
        ys, xs = torch.nonzero(inside[b], as_tuple=True)
        assert int(ys.min()) >= int(c.ys[b, 0]) and int(ys.max()) <= int(c.ys[b, -1])
        assert int(xs.min()) >= int(c.xs[b, 0]) and int(xs.max()) <= int(c.xs[b, -1])
        torch.testing.assert_close(c.image[b], image[b, int(c.ys[b, 0]):int(c.ys[b, -1]) + 1,
                                                     int(c.xs[b, 0]):int(c.xs[b, -1]) + 1], rtol=0, atol=0)
    assert int(c.xs[1, 0]) == 0  # a band near the left edge: the crop stays inside the frame
    assert torch.equal(c.paste(image, c.image), image)


def test_an_untrained_network_returns_the_composite_and_a_trained_one_changes_only_the_band() -> None:
    cov = _coverage(3, 48, 48, [(24.0, 16.0)] * 3, 9.0, 26)
    image = torch.rand(3, 48, 48, 3)
    assert torch.equal(restore(RestorerNet(8, 3), image, cov, Layout((3, 2), (32, 24))), image)  # zero-initialised last layer
    net = RestorerNet(8, 3)
    torch.nn.init.normal_(net.out.weight, std=0.5)
    inside = band_weight(cov, (3, 2))[..., 0] > 0
    for scale in (1.0, 0.5):  # at the frame's resolution, and at half of it
        out = restore(net, image, cov, Layout((3, 2), (32, 24), scale))
        assert torch.equal(out[~inside], image[~inside])  # bit for bit outside the band
        assert float((out[inside] - image[inside]).abs().max()) > 1e-3


def test_odd_frame_sizes_pad_to_the_networks_multiple() -> None:
    cov = _coverage(1, 30, 26, [(13.0, 10.0)], 7.0, 16)
    net = RestorerNet(8, 3)
    torch.nn.init.normal_(net.out.weight, std=0.5)
    out = restore(net, torch.rand(1, 30, 26, 3), cov, Layout((3, 2), (64, 64), 0.5))  # the crop is clipped to the frame
    assert out.shape == (1, 30, 26, 3) and torch.isfinite(out).all()


# -- the compositor ---------------------------------------------------------------------------------


def _disk_head(size: int, radius: float, anchor: tuple[float, float], ppm: float, index: int = 0) -> Frame:
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    inside = (((xs - anchor[0]) ** 2 + (ys - (anchor[1] - radius * 0.8)) ** 2) < radius ** 2).float()[..., None]
    colour = torch.tensor([0.9, 0.7, 0.6]) * (1 - 0.01 * index)
    return Frame(torch.cat([inside * colour, inside], -1), index, index / 25, placement=Placement(anchor, ppm))


def test_restorer_changes_its_base_only_in_the_band_and_streams_exactly(tmp_path: Path) -> None:
    path = random_restorer(tmp_path / "r", size=64)
    comp = RestorerTorso(RestorerConfig(path=str(path), device="cpu", batch_frames=3))
    heads = [_disk_head(64, 12.0, (32.0, 35.0), 256.0, i) for i in range(5)]
    base_frames, coverage = comp.base.composite_with_coverage(heads)
    batch = comp.composite(heads)
    inside = band_weight(coverage, comp.meta["band"])[..., 0] > 0
    assert int(inside.sum()) > 50
    for f, b, band in zip(batch, base_frames, inside):
        assert torch.equal(f.image[~band], b.image[~band])
        assert float((f.image[band] - b.image[band]).abs().max()) > 1e-3
    stream = comp.open_stream()
    frames = stream.push(heads[:1]) + stream.push(heads[1:4]) + stream.push(heads[4:]) + stream.finish()
    assert [f.index for f in frames] == list(range(5))
    for a, b in zip(batch, frames):
        assert torch.equal(a.image, b.image)


def test_missing_and_mismatched_restorers_get_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="torso.path") as err:
        RestorerTorso(RestorerConfig())
    assert "being fit --torso restorer" in err.value.hint
    with pytest.raises(InputError, match="not a restorer"):
        RestorerTorso(RestorerConfig(path=str(tmp_path)))
    path = random_restorer(tmp_path / "r", size=64)
    with pytest.raises(ConfigError, match="trained at 64x64"):
        RestorerTorso(RestorerConfig(path=str(path), size=(128, 128)))
    meta = json.loads((path / "restorer.json").read_text())
    (path / "restorer.json").write_text(json.dumps({**meta, "width": meta["width"] * 2}))
    with pytest.raises(InputError, match="does not match the restorer.json.s model"):
        RestorerTorso(RestorerConfig(path=str(path)))
    (path / "restorer.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(InputError, match="newer") as err:
        RestorerTorso(RestorerConfig(path=str(path)))
    assert "upgrade being-torso-restorer" in err.value.hint
    (path / "restorer.json").write_text(json.dumps(meta))
    (path / "restorer.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(InputError, match="unreadable"):
        RestorerTorso(RestorerConfig(path=str(path)))


def test_being_run_with_a_restorer_and_without_one(tmp_path: Path) -> None:
    path = random_restorer(tmp_path / "r", size=64)
    out = tmp_path / "talk.mp4"
    proc = _being("run", "--audio", "fake", "--avatar", "splatting", "--torso", "restorer", "--set", f"torso.path={path}",
                  "--set", "avatar.size=[64,64]", "--device", "cpu", "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    import av

    with av.open(str(out)) as f:
        video = f.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 64, 64)
        assert len(f.streams.audio) == 1
    proc = _being("run", "--audio", "fake", "--torso", "restorer", "--out", str(tmp_path / "no.mp4"), "-q")
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode != 0 and "being fit --torso restorer" in proc.stderr and len(lines) <= 2
    assert not (tmp_path / "no.mp4").exists()


# -- training ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from being_kernel.datasets import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("ff") / "synth", size=64, frames=48, test_frames=8, supersample=2,
                          full_frame=True, progress=False)


def test_perturbation_moves_the_head_by_its_shift(dataset: Path) -> None:
    """A head shifted by (dx, dy) with no other change (and not cut by the frame): its alpha's centroid moves by exactly that."""
    from being_kernel.datasets import load_tracked_video
    from being_torso_restorer.fit import RestorerFit
    from being_torso_restorer.spec import RestorerFitConfig

    fit = RestorerFit(load_tracked_video(dataset), RestorerFitConfig(shift_px=2.0 * 512 / 64, scale_jitter=0,
                                                                     colour_jitter=0, rotation_deg=0),
                      torch.device("cpu"), torch.Generator().manual_seed(3))
    head = fit.heads(torch.tensor([5]), perturb=False)[0]
    g = fit.generator.get_state()
    moved = fit._perturbed(head)
    fit.generator.set_state(g)
    shift = (torch.rand(2, generator=fit.generator) * 2 - 1) * 2.0
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")

    def centroid(a: torch.Tensor) -> torch.Tensor:
        return torch.stack([(a * xs).sum(), (a * ys).sum()]) / a.sum()

    torch.testing.assert_close(centroid(moved.image[..., 3]) - centroid(head.image[..., 3]), shift, atol=0.05, rtol=0)
    assert moved.placement == head.placement  # the anchor stays: the head is misplaced on its neck


def test_training_improves_the_band_on_held_out_frames(dataset: Path, tmp_path: Path) -> None:
    from being_kernel.evaluation import evaluate_compositor

    out = tmp_path / "restorer"
    proc = _being("fit", "--torso", "restorer", "--data", str(dataset), "--out", str(out), "--device", "cpu",
                  "--set", "fit.steps=400", "--set", "fit.lpips=off", "--set", "fit.width=16", "-q")
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"restorer.json", "restorer.safetensors", "base"}
    summary = json.loads((out.parent / "restorer.fit" / "summary.json").read_text())
    static = evaluate_compositor("static", {"scene": str(dataset / "scene")}, dataset, "cpu")
    restored = evaluate_compositor("restorer", {"path": str(out)}, dataset, "cpu")
    assert abs(summary["initial_test_psnr"] - static.psnr) < 0.01  # untrained, the restorer is its base
    assert abs(summary["test_psnr"] - restored.psnr) < 0.01  # the harness and being eval: one measurement
    assert restored.band_psnr > static.band_psnr + 0.5


def test_fit_without_a_base_path_or_with_an_avatar_that_cannot_render_views_says_what_to_set(
        dataset: Path, tmp_path: Path) -> None:
    for sets, words in ((["fit.base=warp"], ["fit.base_path", "being fit --torso warp"]),
                        (["fit.avatar=fake"], ["fit.avatar=fake cannot render through the dataset's cameras"])):
        proc = _being("fit", "--torso", "restorer", "--data", str(dataset), "--out", str(tmp_path / "r"), "--device", "cpu",
                      *[a for s in sets for a in ("--set", s)], "-q")
        assert proc.returncode != 0 and all(w in proc.stderr for w in words), proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "r").exists()


@pytest.mark.gpu
def test_cuda_matches_cpu(tmp_path: Path) -> None:
    path = random_restorer(tmp_path / "r", size=64)
    heads = [_disk_head(64, 12.0, (32.0, 35.0), 256.0, i) for i in range(3)]
    cpu = RestorerTorso(RestorerConfig(path=str(path), device="cpu")).composite(heads)
    for half, tol in ((False, 1e-4), (True, 2e-2)):
        gpu = RestorerTorso(RestorerConfig(path=str(path), device="cuda", half=half)).composite(heads)
        diff = max(float((a.image - b.image.cpu()).abs().max()) for a, b in zip(cpu, gpu))
        assert diff < tol, (half, diff)
    assert math.isfinite(diff)

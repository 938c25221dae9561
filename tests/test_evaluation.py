"""Evaluation of compositors on full frames: the neck band's geometry, scores against an
independently computed oracle, and ``being eval --torso`` end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from being_kernel.contracts import FramewiseStream, TorsoCompositor, TorsoCompositorInfo
from being_kernel.datasets import load_tracked_video
from being_kernel.datasets.synthetic import make_synthetic
from being_kernel.evaluation import compositor as comp_eval
from being_kernel.evaluation import evaluate_compositor, neck_band
from being_kernel.types import Frame


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("data") / "synth", size=64, frames=10, test_frames=3, progress=False)


def test_neck_band_is_the_ring_across_the_outline_below_the_jaw() -> None:
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    disc = (((yy - 32) ** 2 + (xx - 32) ** 2) <= 20.0 ** 2).float()[None, ..., None]
    band = neck_band(disc, None, 3, below_y=torch.tensor([32.0]))[0, ..., 0]
    r = ((yy - 32) ** 2 + (xx - 32) ** 2).sqrt()
    assert band[yy < 32].sum() == 0  # nothing above the jaw row
    assert bool((band[(yy >= 32) & ((r - 20).abs() <= 1.5)] == 1).all())  # the outline itself is in
    assert band[(r < 15) | (r > 25)].sum() == 0  # far inside or outside is not
    torso = torch.zeros_like(disc)
    torso[0, 50:, :, 0] = 1
    seam = neck_band(disc, torso, 3)[0, ..., 0]
    assert seam.sum() > 0 and seam[:44].sum() == 0  # with a torso mask: only where both masks meet


class _InPlace(TorsoCompositor):
    """Lays each head where it is in its image over grey: the oracle below predicts every pixel."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(None)
        self.size, self.poses = size, []

    def info(self) -> TorsoCompositorInfo:
        return TorsoCompositorInfo(size=self.size)

    def composite(self, heads):  # noqa: ANN001, ANN201
        self.poses += [h.head for h in heads]
        return [Frame(h.image[..., :3] + (1 - h.image[..., 3:]) * 0.5, h.index, h.pts) for h in heads]

    def open_stream(self) -> FramewiseStream:
        return FramewiseStream(self.composite)


def test_scores_match_an_independent_computation(synth: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = load_tracked_video(synth)
    plugin = _InPlace((64, 64))
    monkeypatch.setattr(comp_eval, "build_named", lambda *a, **k: plugin)
    report = evaluate_compositor("inplace", {}, synth, "cpu", band_px=3)
    assert report.frames == [7, 8, 9] and report.heads == "ground truth"
    for row in report.per_frame:
        i = row["index"]
        img, mask = video.load_image(i), video.load_mask(i)
        expect = img * mask + 0.5 * (1 - mask)
        mse = float(((expect - img) ** 2).mean())
        assert row["psnr"] == pytest.approx(10 * math.log10(1 / mse), abs=1e-3)
    # every head carried its tracked pose and camera
    assert [float(p.jaw[0]) for p in plugin.poses] == pytest.approx([float(video.motion.jaw[i, 0]) for i in (7, 8, 9)])
    assert all(p.camera is not None and torch.equal(p.camera.K, video.cameras[i].K) for p, i in zip(plugin.poses, (7, 8, 9)))
    # the frames are black around the head, so grey is wrong everywhere outside it; the band is half inside
    assert math.isfinite(report.band_psnr) and report.band_psnr > report.psnr


def test_being_eval_torso_static_writes_a_report(synth: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    proc = subprocess.run([sys.executable, "-c", "from being_kernel.cli.main import main; main()", "eval", "--torso",
                           "static", "--data", str(synth), "--out", str(tmp_path / "ev"), "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["torso"] == "static" and report["frames"] == [7, 8, 9] and report["image_size"] == [64, 64]
    assert 0 < report["band_psnr"] < 60 and 0 < report["psnr"] < 60
    assert "neck band (8 px)" in proc.stdout and (tmp_path / "ev" / "comparison.mp4").is_file()
    proc = subprocess.run([sys.executable, "-c", "from being_kernel.cli.main import main; main()", "eval", "--data",
                           str(synth)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2 and "--torso NAME" in proc.stderr


def test_separable_dilation_equals_the_square_max_pool() -> None:
    """The two 1-D pools against one (2r+1)^2 max pool, on random masks with edges and corners."""
    import torch.nn.functional as F

    from being_kernel.evaluation import dilate

    g = torch.Generator().manual_seed(0)
    mask = torch.rand(3, 37, 29, generator=g) > 0.97
    for r in (0, 1, 4, 11):
        want = F.max_pool2d(mask.float()[:, None], 2 * r + 1, stride=1, padding=r)[:, 0] > 0.5 if r else mask
        assert torch.equal(dilate(mask, r), want)

"""Training from one view (a photo's one-frame dataset): the least-squares colour solve against
the render's linearity, the priors against a known palette change, and ``being fit`` on a
one-frame dataset (its defaults, the scene carried into the avatar)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from being_avatar_splatting.train.scene import load_scene
from being_avatar_splatting.train.single_view import (CARVED_LOGIT, INTERIOR, _groups, _palette, build_prior,
                                                      demo_params, mirror_index, solve_colors)
from being_kernel.datasets import SCENE_DIR, load_tracked_video, make_synthetic, write_scene
from being_kernel.media import read_image, write_png
from being_kernel.render import rasterize

#: the synthetic person's palette against the demo head's: warmer, darker in blue
SHIFT = torch.tensor([1.15, 0.9, 0.7])


@pytest.fixture(scope="module")
def one_view(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-frame synthetic dataset of the demo head whose image is recoloured by SHIFT."""
    root = make_synthetic(tmp_path_factory.mktemp("data") / "one", size=96, frames=2, test_frames=1, progress=False)
    for extra in root.glob("*/00001.*"):  # keep frame 0 only: a photo's dataset
        extra.unlink()
    sidecar = json.loads((root / "being_dataset.json").read_text())
    (root / "being_dataset.json").write_text(json.dumps({**sidecar, "test_frames": 0}))
    path = root / "input" / "00000.png"
    image = torch.from_numpy(read_image(path)).float() / 255
    write_png(path, ((image * SHIFT).clamp(0, 1) * 255).round().byte().numpy())
    return root


def test_mirror_index_pairs_mirror_images() -> None:
    gen = torch.Generator().manual_seed(0)
    half = torch.rand(200, 3, generator=gen) + torch.tensor([0.1, 0.0, 0.0])  # x > 0
    points = torch.cat([half, half * torch.tensor([-1.0, 1.0, 1.0])])
    twin = mirror_index(points)
    assert torch.equal(twin, torch.cat([torch.arange(200, 400), torch.arange(200)]))


def test_palette_recovers_a_per_channel_affine_map() -> None:
    gen = torch.Generator().manual_seed(1)
    source = torch.rand(500, 3, generator=gen) * 0.5 + 0.2
    gain, bias = _palette(source, source * SHIFT + 0.05, torch.ones(500))
    torch.testing.assert_close(gain, SHIFT, atol=1e-4, rtol=0)
    torch.testing.assert_close(bias, torch.full((3,), 0.05), atol=1e-4, rtol=0)


def _scene(root: Path):  # noqa: ANN202
    video = load_tracked_video(root)
    s = load_scene(video, torch.device("cpu"))
    idx = s.train[:1]
    return video, s, idx, s.frames.views(idx), s.frames.image(idx), s.frames.mask(idx)


def test_solve_colors_fits_a_render_of_known_colours(one_view: Path) -> None:
    """The render is linear in the colours: with the target rendered from the same Gaussians with
    random colours, the solve must give it back (and far better than its starting point)."""
    _, s, idx, cams, _, _ = _scene(one_view)
    g = demo_params(0, torch.device("cpu"))
    mg = g.mesh_gaussians(s.faces, s.rest_area)
    with torch.no_grad():
        means, quats, scales = mg.pose(s.vertices[idx])
        truth = torch.rand(len(g), 3, generator=torch.Generator().manual_seed(2))
        target = rasterize(means, quats, scales, g.opacity, truth, cams, backend="cpu")
    mask = (target.alpha > 0.99).float()

    def err(colors: torch.Tensor) -> float:
        with torch.no_grad():
            img = rasterize(means, quats, scales, g.opacity, colors, cams, backend="cpu").rgb
        return float((((img - target.rgb) ** 2) * mask).sum() / (3 * mask.sum()))

    start = err(torch.sigmoid(g.params["sh_dc"][:, 0] * 0))  # grey: what zero iterations keep
    colors, covered, outside = solve_colors(g, mg, s.vertices[idx], cams, target.rgb, mask, "cpu", iterations=30)
    assert err(colors) < start / 50
    assert (covered >= 0).all() and (outside >= -1e-6).all()
    assert float(covered.sum()) == pytest.approx(float((target.alpha * mask).sum()), rel=1e-3)


def test_priors_move_unseen_colours_into_the_photo_palette(one_view: Path) -> None:
    video, s, idx, cams, image, mask = _scene(one_view)
    head = video.head()
    g = demo_params(0, torch.device("cpu"))
    demo = (0.28209479177387814 * g.params["sh_dc"][:, 0].detach() + 0.5).clamp(0, 1)
    prior = build_prior(g, head, g.mesh_gaussians(s.faces, s.rest_area), s.rest_vertices[None], s.vertices[idx], cams,
                        image, mask, "cpu", demo_colors=True, iterations=10)
    truth = (demo * SHIFT).clamp(0, 1)  # what the recoloured person would be everywhere
    group = _groups(head, g.face_ids)
    hidden = (prior.seen < 0.05) & (group == 0)
    assert int(hidden.sum()) > 1000  # the back of the head, the inside of the lips, ...
    before = (demo[hidden] - truth[hidden]).abs().mean()
    after = (prior.color[hidden] - truth[hidden]).abs().mean()
    assert after < 0.5 * before
    interior = (group == 2) & (prior.seen < 0.05)
    assert int(interior.sum()) > 100
    # teeth and tongue keep the demo's colours (but for the little of them the view shows)
    torch.testing.assert_close(prior.color[interior], demo[interior], atol=0.01, rtol=0)
    carved = prior.opacity_logit <= CARVED_LOGIT
    # the mask is the head's own silhouette here: carving takes only a thin rim of edge Gaussians
    print("carved", int(carved.sum()), "of", len(carved))
    assert 0 < int(carved.sum()) < 0.03 * len(carved)
    seen = (prior.seen > 0.5) & ~carved
    assert int(seen.sum()) > 50  # at 96 x 96 few Gaussians cover more than a pixel
    assert (prior.color[seen] - truth[seen]).abs().mean() < 0.5 * (demo[seen] - truth[seen]).abs().mean()
    assert set(INTERIOR) <= set(head.regions)


def test_fit_on_a_photo_dataset_uses_its_defaults_and_carries_its_scene(one_view: Path, tmp_path: Path) -> None:
    write_scene(one_view / SCENE_DIR, np.full((64, 48, 3), 90, np.uint8), np.zeros((64, 48, 4), np.uint8), (24.0, 50.0),
                300.0, source="test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    out = tmp_path / "avatar"
    proc = subprocess.run([sys.executable, "-m", "being_kernel.cli", "fit", "--data", str(one_view), "--out", str(out),
                           "--set", "fit.steps=12", "--set", "fit.lpips=off", "--set", "fit.color_solve_iterations=3",
                           "--device", "cpu"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "batch_frames=1, sh_degree=0, densify_until=0.0" in proc.stdout and "steps=150" not in proc.stdout
    summary = json.loads((tmp_path / "avatar.fit" / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["train_frames"] == 1 and summary["test_frames"] == 0
    assert (out / SCENE_DIR / "scene.json").is_file() and (out / SCENE_DIR / "torso.png").is_file()
    assert json.loads((out / "avatar.json").read_text())["head_model"] == "demo"

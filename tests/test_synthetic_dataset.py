"""The synthetic benchmark dataset: made by the CLI at 64 x 64, read back as metrical-tracker
output, re-rendered from what was read, and checked for the held-out expression combinations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from being_kernel.datasets import load_tracked_video
from being_kernel.datasets.synthetic import ACTIVE, EXPRESSION_GROUPS, make_synthetic, synthetic_motion
from being_kernel.errors import InputError
from being_kernel.head.demo_head import DEMO_EXPRESSIONS, build_demo_head
from being_kernel.head.flame import FlameModel
from being_kernel.cameras import Cameras
from being_kernel.render.mesh import render_mesh
from conftest import run_being

SIZE, FRAMES, TEST = 64, 24, 4
# renders this small gain nothing from threads, and on a busy machine waiting threads slow them down many times
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "ds"
    r = run_being("make-dataset", "synthetic", "--out", str(out), "--size", str(SIZE), "--frames", str(FRAMES),
                  "--test-frames", str(TEST), "--device", "cpu", env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    assert f"wrote {FRAMES} frames ({SIZE}x{SIZE}, {TEST} held out) to {out}" in r.stdout
    return out


def test_layout_is_metrical_tracker_output(dataset: Path) -> None:
    names = sorted(p.name for p in dataset.iterdir())
    assert names == ["alpha", "being_dataset.json", "checkpoint", "input"]
    assert sorted(p.name for p in (dataset / "checkpoint").iterdir()) == [f"{k:05d}.frame" for k in range(FRAMES)]
    frame = torch.load(dataset / "checkpoint" / "00003.frame", weights_only=False)
    shapes = {"exp": (1, 100), "shape": (1, 300), "tex": (1, 140), "sh": (1, 9, 3), "eyes": (1, 12), "eyelids": (1, 2),
              "jaw": (1, 6)}
    assert {k: v.shape for k, v in frame["flame"].items()} == shapes
    assert all(v.dtype == np.float32 for v in frame["flame"].values())
    assert {k: v.shape for k, v in frame["opencv"].items()} == {"R": (1, 3, 3), "t": (1, 3), "K": (1, 3, 3)}
    assert {k: v.shape for k, v in frame["camera"].items()} == {"R": (1, 6), "t": (1, 3), "fl": (1, 1), "pp": (1, 2)}
    assert frame["img_size"].tolist() == [SIZE, SIZE] and frame["img_size"].dtype == np.int64
    assert frame["frame_id"] == "00003" and isinstance(frame["global_step"], int)
    assert not frame["flame"]["exp"][0, 25:].any() and not frame["flame"]["shape"].any()
    # the PyTorch3D camera is the OpenCV one (pytorch3d's opencv_from_cameras_projection, undone)
    c, cv = frame["camera"], frame["opencv"]
    r6 = c["R"][0].astype(np.float64)
    b1 = r6[:3] / np.linalg.norm(r6[:3])
    b2 = r6[3:] - b1 @ r6[3:] * b1
    b2 /= np.linalg.norm(b2)
    r_p3d = np.stack([b1, b2, np.cross(b1, b2)])
    flip = np.diag([-1.0, -1.0, 1.0])
    assert np.allclose(flip @ r_p3d.T, cv["R"][0], atol=1e-6) and np.allclose(flip @ c["t"][0], cv["t"][0], atol=1e-6)
    K = cv["K"][0]
    assert math.isclose(c["fl"][0, 0] * SIZE / 2, K[0, 0], rel_tol=1e-6)
    assert np.allclose(SIZE / 2 - c["pp"][0] * SIZE / 2, K[:2, 2], atol=1e-4)
    meta = json.loads((dataset / "being_dataset.json").read_text())
    assert (meta["format"], meta["format_version"], meta["head_model"], meta["test_frames"]) == ("being-dataset", 1,
                                                                                                "demo", TEST)


def test_loads_back_and_rerenders_to_the_stored_images(dataset: Path) -> None:
    video = load_tracked_video(dataset)
    assert (video.format, video.head_model, len(video), video.test_frames, video.fps) == ("metrical", "demo", FRAMES,
                                                                                         TEST, 25.0)
    assert video.split() == (list(range(FRAMES - TEST)), list(range(FRAMES - TEST, FRAMES)))
    assert video.motion.global_rot.abs().max() == 0  # the head pose is in the camera, as in the tracker
    assert (video.cameras.R[1:] - video.cameras.R[:-1]).abs().amax((1, 2)).min() > 0  # it moves every frame
    head = build_demo_head()
    supersample = json.loads((dataset / "being_dataset.json").read_text())["generator"]["supersample"]
    with torch.no_grad():
        vertices = FlameModel(head)(video.motion, video.shape).vertices
    for k in (2, FRAMES - 1):
        image, mask = video.load_image(k), video.load_mask(k)
        assert image.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE, 1)
        assert 0 <= mask.min() and mask.max() <= 1 and 0.15 < mask.mean() < 0.8
        assert (mask == 0).any() and (mask == 1).any() and ((mask > 0) & (mask < 1)).any()  # antialiased edges
        cam = Cameras(video.cameras.R[k:k + 1], video.cameras.t[k:k + 1], video.cameras.K[k:k + 1], SIZE, SIZE)
        ref = render_mesh(vertices[k], torch.from_numpy(head.faces), cam, uv_coords=torch.from_numpy(head.uv_coords),
                          uv_faces=torch.from_numpy(head.uv_faces), texture=torch.from_numpy(head.texture),
                          background=(1.0, 1.0, 1.0), supersample=supersample)
        assert (ref.rgb[0] - image).abs().max() <= 0.5 / 255 + 1e-6
        assert (ref.alpha[0] - mask).abs().max() <= 0.5 / 255 + 1e-6
        assert image[mask[..., 0] == 0].min() == 1.0  # white background


def _active(expression: np.ndarray) -> list[frozenset[int]]:
    return [frozenset(np.flatnonzero(row > ACTIVE).tolist()) for row in expression]


def test_held_out_frames_use_unseen_expression_combinations(dataset: Path) -> None:
    video = load_tracked_video(dataset)
    active = _active(video.motion.expression.numpy())
    train, test = video.split()
    training_sets = {active[i] for i in train}
    assert any(training_sets)
    for i in test:
        assert len(active[i]) >= 2
        assert not any(active[i] <= s for s in training_sets), f"frame {i}: {sorted(active[i])} seen in training"


def test_motion_sequence_is_varied_and_holds_out_combinations() -> None:
    names = list(build_demo_head().expression_names)
    m = synthetic_motion(660, 60, 0, names)
    angles = np.degrees(np.linalg.norm(m.head_rot, axis=1))
    assert 20 < angles.max() < 35
    assert m.jaw[:, 0].min() >= 0 and 0.25 < m.jaw[:, 0].max() <= 0.3 + 1e-9
    assert np.abs(m.eyes).max() > 0.1 and np.array_equal(m.eyes[:, :3], m.eyes[:, 3:])
    blinks = np.flatnonzero(np.diff((m.eyelids[:, 0] > 0.9).astype(int)) == 1)
    assert len(blinks) >= 5  # about one every 1.5..4 s over 26 s
    expr, group = m.expression, {}
    for g, members in enumerate(EXPRESSION_GROUPS):
        group.update({DEMO_EXPRESSIONS[n]: g for n in members})
    assert set(group) == set(range(25)) - {DEMO_EXPRESSIONS["eye_blink_L"], DEMO_EXPRESSIONS["eye_blink_R"]}
    active = _active(expr)
    assert all(len({group[b] for b in s}) <= 1 for s in active[:600])  # training: one group at a time
    assert all(len({group[b] for b in s}) >= 2 for s in active[600:])  # test: two groups in every frame
    assert set().union(*active[:600]) == set(group)  # every basis is trained
    assert expr.min() >= 0 and expr.max() <= 1
    assert np.array_equal(synthetic_motion(660, 60, 0, names).expression, expr)  # seeded
    assert not np.array_equal(synthetic_motion(660, 60, 1, names).expression, expr)


def test_cli_refuses_to_overwrite(dataset: Path) -> None:
    before = sorted(p.stat().st_mtime_ns for p in (dataset / "checkpoint").iterdir())
    r = run_being("make-dataset", "synthetic", "--out", str(dataset), "--size", "16", "--frames", "3",
                  "--test-frames", "1", "--device", "cpu", env=ONE_THREAD)
    assert r.returncode == 2 and "exists and is not empty" in r.stderr and "--overwrite" in r.stderr
    assert sorted(p.stat().st_mtime_ns for p in (dataset / "checkpoint").iterdir()) == before


def test_overwrite_replaces_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(InputError, match="exists and is not empty"):
        make_synthetic(out, size=16, frames=3, test_frames=1, progress=False)
    make_synthetic(out, size=16, frames=3, test_frames=1, overwrite=True, progress=False)
    assert not (out / "old.txt").exists() and len(list((out / "input").iterdir())) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary directory left
    with pytest.raises(InputError, match="test_frames < frames"):
        make_synthetic(tmp_path / "other", size=16, frames=3, test_frames=3)

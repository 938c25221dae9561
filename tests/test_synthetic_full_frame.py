"""The full-frame synthetic dataset (`being make-dataset synthetic --full-frame`): its layout, the
held-out poses outside the training range, and a torso skinned to the head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from being_kernel.head import axis_angle_to_matrix


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ff") / "synth"
    proc = subprocess.run([sys.executable, "-m", "being_kernel.cli", "make-dataset", "synthetic", "--full-frame",
                           "--out", str(out), "--size", "64", "--frames", "40", "--test-frames", "10",
                           "--supersample", "2", "--device", "cpu", "-q"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def test_full_frame_dataset_layout_and_held_out_poses(dataset: Path) -> None:
    from being_kernel.datasets import load_full_frames, load_tracked_video
    from being_kernel.datasets.synthetic_torso import TRAIN_POSE_DEG, full_frame_camera

    video = load_tracked_video(dataset)
    assert video.full_frame and (dataset / "scene" / "scene.json").is_file()
    layers = load_full_frames(video)
    person = torch.stack([video.load_mask(i) for i in range(len(video))])
    # the head and the torso are disjoint parts of the person
    torch.testing.assert_close(layers.head.float() / 255 + layers.torso.float() / 255, person, atol=2 / 255, rtol=0)
    # head pose relative to the fixed camera: yaw about y, pitch about x (Ry Rx Rz)
    rel = full_frame_camera(64).R[0].T @ video.cameras.R
    yaw = torch.rad2deg(torch.atan2(rel[:, 0, 2], rel[:, 2, 2]))
    pitch = torch.rad2deg(torch.asin(-rel[:, 1, 2].clamp(-1, 1)))
    train, test = video.split()
    assert float(yaw[train].abs().max()) <= TRAIN_POSE_DEG[0] + 1e-3
    assert float(pitch[train].abs().max()) <= TRAIN_POSE_DEG[1] + 1e-3
    outside = (yaw[test].abs() > TRAIN_POSE_DEG[0]) | (pitch[test].abs() > TRAIN_POSE_DEG[1])
    assert bool(outside.all())


def test_the_torso_follows_the_head(dataset: Path) -> None:
    """The torso mesh is skinned to the head (the top ring rigid with it, the shoulders still), and in
    the frames of the most different head roll the torso's outline moves near the neck, not at the chest."""
    from being_kernel.datasets import load_full_frames, load_tracked_video
    from being_kernel.datasets.synthetic_torso import SKIN_BOTTOM, build_torso, pose_torso
    from being_kernel.head import build_demo_head

    torso = build_torso(build_demo_head(), 0)
    A = axis_angle_to_matrix(torch.tensor([[0.1, 0.4, -0.2]]))
    b = torch.tensor([[0.01, -0.02, 0.005]])
    posed = pose_torso(torso, A, b, torch.zeros(1))[0]
    x = torch.from_numpy(torso.vertices)
    top, still = torso.weights == 1.0, torso.vertices[:, 1] < SKIN_BOTTOM
    torch.testing.assert_close(posed[top], (x[top] @ A[0].T) + b[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(posed[still], x[still], atol=1e-7, rtol=0)

    video = load_tracked_video(dataset)
    layers = load_full_frames(video)
    roll = torch.atan2(video.cameras.R[:, 1, 0], video.cameras.R[:, 1, 1])
    i, j = int(roll.argmax()), int(roll.argmin())
    masks = layers.torso[[i, j], ..., 0].float() / 255
    rows = torch.nonzero((masks > 0.5).any(0).any(1))[:, 0]
    neck = slice(int(rows.min()), int(rows.min()) + 8)
    moved = (masks[0] - masks[1]).abs()
    assert float(moved[neck].sum()) > 0.5 and float(moved[-8:].sum()) < 0.1 * float(moved[neck].sum())

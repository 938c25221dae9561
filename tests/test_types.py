from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch

from being_kernel.cameras import Cameras
from being_kernel.types import HEAD_POSE_FIELDS, Audio, Frame, HeadPose, Motion, frames_for, head_poses


def test_frames_for_is_round_of_duration_times_fps() -> None:
    assert frames_for(16000, 16000, 25) == 25
    assert frames_for(16000 + 319, 16000, 25) == 25  # 1.0199 s -> 25.4975 -> 25
    assert frames_for(16000 + 321, 16000, 25) == 26  # 1.0200625 s -> 25.5016 -> 26
    # 10 hours at NTSC rate: float rounding would drift; the exact rule holds
    n = 10 * 3600 * 48000 + 7
    assert frames_for(n, 48000, 30000 / 1001) == round(Fraction(n, 48000) * Fraction(30000, 1001))


def test_audio_rejects_non_mono_or_wrong_dtype() -> None:
    with pytest.raises(ValueError):
        Audio(np.zeros((2, 10), np.float32), 16000)
    with pytest.raises(ValueError):
        Audio(np.zeros(10, np.float64), 16000)
    assert Audio(np.zeros(8000, np.float32), 16000).num_frames(25) == 12  # 12.5 rounds to even


def test_motion_shapes_are_checked_and_slicing_round_trips() -> None:
    m = Motion.zeros(10, 100)
    m.jaw[:, 0] = torch.arange(10.0)
    with pytest.raises(ValueError, match="Motion.jaw"):
        Motion(**{**m.tensors(), "jaw": torch.zeros(9, 3)})
    joined = Motion.cat([m.slice(0, 3), m.slice(3, 10)])
    assert torch.equal(joined.jaw, m.jaw)
    with pytest.raises(ValueError):
        Motion.cat([m, Motion.zeros(2, 50)])


def test_frame_checks_depth_shape() -> None:
    with pytest.raises(ValueError):
        Frame(torch.zeros(4, 5, 4), 0, 0.0, depth=torch.zeros(5, 4))
    assert Frame(torch.zeros(4, 5, 3), 0, 0.0).size == (5, 4)


def _cameras(n: int, width: int = 5, height: int = 4) -> Cameras:
    """n cameras, camera i at x = i."""
    t = torch.zeros(n, 3)
    t[:, 0] = torch.arange(float(n))
    return Cameras(torch.eye(3).repeat(n, 1, 1), t, torch.eye(3).repeat(n, 1, 1), width, height)


def test_head_poses_are_the_motion_frames_pose_with_their_camera() -> None:
    m = Motion.zeros(3, 10)
    for k, name in enumerate(HEAD_POSE_FIELDS):
        getattr(m, name).copy_(torch.arange(9.0).reshape(3, 3) + 10 * k)
    shared, per_frame = head_poses(m, _cameras(1)), head_poses(m, _cameras(3))
    for i in range(3):
        for name in HEAD_POSE_FIELDS:
            assert torch.equal(getattr(shared[i], name), getattr(m, name)[i])
        assert len(per_frame[i].camera) == 1 and float(per_frame[i].camera.t[0, 0]) == i
        assert float(shared[i].camera.t[0, 0]) == 0
    assert all(p.camera is None for p in head_poses(m, None))
    m.jaw.zero_()  # the poses are a copy: editing the motion afterwards does not reach the frames
    assert float(shared[2].jaw[2]) == 28.0
    with pytest.raises(ValueError, match="2 cameras for 3"):
        head_poses(m, _cameras(2))


def test_head_pose_checks_shapes_and_a_single_camera() -> None:
    z = torch.zeros(3)
    with pytest.raises(ValueError, match="HeadPose.neck"):
        HeadPose(z, torch.zeros(1, 3), z, z, None)
    with pytest.raises(ValueError, match="one camera"):
        HeadPose(z, z, z, z, _cameras(2))


def test_frame_carries_its_head_pose_with_a_camera_of_its_size() -> None:
    pose = head_poses(Motion.zeros(1, 0), _cameras(1, width=5, height=4))[0]
    f = Frame(torch.zeros(4, 5, 4), 0, 0.0, head=pose)
    assert replace(f, index=3).head is pose  # renumbering keeps it
    with pytest.raises(ValueError, match="camera is 5x4 but the image is 4x5"):
        Frame(torch.zeros(5, 4, 4), 0, 0.0, head=pose)

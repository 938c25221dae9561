from fractions import Fraction

import numpy as np
import pytest
import torch

from being_kernel.types import Audio, Frame, Motion, frames_for


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

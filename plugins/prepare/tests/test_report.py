"""Tests for being_prepare.report: rotations built with scipy, a triangle projected by hand, the
MP4 decoded with PyAV, the PNG and JSON read back."""

from __future__ import annotations

import json
import math

import av
import matplotlib.image
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from being_kernel.api import Cameras
from being_prepare.report import (detect_jumps, head_euler_deg, interpolate_frames, plot_tracking, write_overlay,
                                  write_quality)

FRONT = np.diag([1.0, -1.0, -1.0])


def _extrinsics(yaw_deg: np.ndarray, pitch_deg: float = 5.0, roll_deg: float = -3.0) -> np.ndarray:
    """[T, 3, 3] camera extrinsics of a head with these angles (degrees), as tracking stores them."""
    angles = np.stack([yaw_deg, np.full_like(yaw_deg, pitch_deg), np.full_like(yaw_deg, roll_deg)], 1)
    return FRONT @ Rotation.from_euler("YXZ", angles, degrees=True).as_matrix()


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees((Rotation.from_matrix(a) * Rotation.from_matrix(b).inv()).magnitude()))


def test_detect_jumps_finds_a_spike_and_an_outlier_not_a_fast_sweep() -> None:
    fps, n = 25.0, 50
    yaw = -30.0 + 40.0 / fps * np.arange(n)  # 40 deg/s: 1.6 deg per frame
    err = 1.5 + 0.3 * np.sin(np.arange(n))
    assert not detect_jumps(_extrinsics(yaw), err).any()

    spiky = yaw.copy()
    spiky[20] += 30.0
    spiky[0] += 30.0  # the first frame: its one neighbour decides
    err = err.copy()
    err[35] = 20.0
    err[10] = np.nan  # no face: reported separately, never a jump
    err[41] = 3.9  # above 3 x median but below min_px
    assert np.flatnonzero(detect_jumps(_extrinsics(spiky), err)).tolist() == [0, 20, 35]


def test_detect_jumps_skips_failed_frames_as_neighbours() -> None:
    R = _extrinsics(np.linspace(0.0, 10.0, 9))
    err = np.full(9, 1.0)
    R[4], err[4] = np.eye(3), np.nan  # a failed frame with an arbitrary pose (180 deg off)
    R[6] = _extrinsics(np.array([60.0]))[0]  # a real spike next to nothing odd
    assert np.flatnonzero(detect_jumps(R, err)).tolist() == [6]


def test_interpolate_frames_linear_and_slerp() -> None:
    n = 7
    bad = np.zeros(n, bool)
    bad[[0, 2, 3, 6]] = True  # an end, an inner run of two, the other end
    line = np.stack([np.arange(n) * 2.0 + 1.0, -np.arange(n) * 0.5], 1)  # [T, 2], exact under interpolation
    expr = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    R = np.tile(np.eye(3) * 3.0, (n, 1, 1))  # garbage at the bad frames must not leak through
    R[1] = np.eye(3)
    R[4] = Rotation.from_rotvec(np.array([1.0, 1.0, 0.0]) / math.sqrt(2) * math.radians(90.0)).as_matrix()
    R[5] = Rotation.from_rotvec([0.1, 0.2, 0.3]).as_matrix()
    out = interpolate_frames({"t": line.copy() * np.where(bad, 0.0, 1.0)[:, None], "expression": expr, "R": R}, bad)

    want = line.copy()
    want[0], want[6] = line[1], line[5]  # held at the ends
    np.testing.assert_allclose(out["t"], want, atol=1e-12)
    assert out["expression"].dtype == np.float32 and out["expression"][3, 1, 2] == pytest.approx(3.0)
    # frames 2 and 3 lie 1/3 and 2/3 of the way from frame 1 (identity) to frame 4 (90 deg about x+y)
    for k, frac in ((2, 1 / 3), (3, 2 / 3)):
        assert _angle_deg(out["R"][k], R[1]) == pytest.approx(90.0 * frac, abs=1e-6)
        assert _angle_deg(out["R"][k], R[4]) == pytest.approx(90.0 * (1 - frac), abs=1e-6)
        np.testing.assert_allclose(out["R"][k] @ out["R"][k].T, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(out["R"][[1, 4, 5]], R[[1, 4, 5]])
    np.testing.assert_allclose(out["R"][0], R[1], atol=1e-12)
    np.testing.assert_allclose(out["R"][6], R[5], atol=1e-12)
    with pytest.raises(ValueError):
        interpolate_frames({"t": line}, np.ones(n, bool))


def test_head_euler_deg_recovers_known_angles() -> None:
    angles = np.array([[25.0, -10.0, 5.0], [-40.0, 15.0, -20.0], [0.0, 0.0, 0.0], [5.0, 30.0, 12.0]])
    R = FRONT @ Rotation.from_euler("YXZ", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(head_euler_deg(R), angles, atol=1e-9)
    # the documented signs: positive yaw turns the face (head +z) towards image right (camera +x)
    face_dir = (FRONT @ Rotation.from_euler("YXZ", [20.0, 0.0, 0.0], degrees=True).as_matrix())[:, 2]
    assert face_dir[0] > 0.3


def test_plot_tracking_writes_a_png(tmp_path) -> None:
    n, fps = 60, 25.0
    t = np.arange(n) / fps
    failed, jumps = np.zeros(n, bool), np.zeros(n, bool)
    failed[10:14], jumps[30] = True, True
    err = 1.0 + 0.1 * t
    err[failed] = np.nan
    path = plot_tracking(tmp_path / "tracking.png", fps, euler_deg=np.stack([np.sin(t), t, -t], 1) * 10,
                         translation=np.stack([t, t, t + 0.5], 1) * 0.01, jaw=np.zeros((n, 3)) + 0.1 * t[:, None],
                         expression=np.random.default_rng(0).normal(size=(n, 50)), reprojection_px=err,
                         failed=failed, jumps=jumps)
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (900, 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["tracking.png"]  # no temporary file left


def _triangle_scene(width: int, height: int, n: int) -> tuple[torch.Tensor, torch.Tensor, Cameras, np.ndarray]:
    """A triangle at z = 0 facing a camera at z = 1; returns its vertices [n, 3, 3], faces, the n
    cameras and its corners in pixels [3, 2], projected here by hand."""
    tri = torch.tensor([[-0.2, -0.15, 0.0], [0.2, -0.15, 0.0], [0.0, 0.2, 0.0]])  # CCW seen from +z
    one = Cameras.look_at(torch.tensor([0.0, 0.0, 1.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]), 40.0,
                          width, height)
    cams = Cameras(one.R.repeat(n, 1, 1), one.t.repeat(n, 1), one.K.repeat(n, 1, 1), width, height)
    f = 0.5 * height / math.tan(math.radians(20.0))
    corners = np.array([[width / 2 + f * x, height / 2 - f * y] for x, y, _ in tri.tolist()])  # depth 1, y down
    return tri.expand(n, 3, 3).clone(), torch.tensor([[0, 1, 2]]), cams, corners


def _inside(corners: np.ndarray, px: np.ndarray, margin: float) -> np.ndarray:
    """Whether points px [N, 2] are inside the triangle by at least ``margin`` px (negative: outside by)."""
    dist = []
    for i in range(3):
        a, b = corners[i], corners[(i + 1) % 3]
        normal = np.array([b[1] - a[1], a[0] - b[0]]) / np.linalg.norm(b - a)
        side = (px - a) @ normal
        dist.append(side * np.sign((corners[(i + 2) % 3] - a) @ normal))
    return np.min(dist, axis=0) >= margin


def _decode(path) -> tuple[list[np.ndarray], int]:
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return frames, len(c.streams.audio)


def test_write_overlay_tints_the_mesh_and_keeps_the_rest(tmp_path) -> None:
    w, h, n = 64, 48, 3
    verts, faces, cams, corners = _triangle_scene(w, h, n)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [np.stack([40 + xx + k, 50 + yy, np.full_like(xx, 60)], 2).astype(np.uint8) for k in range(n)]
    audio = (0.1 * np.sin(np.arange(16000) * 0.05).astype(np.float32), 16000)
    path = write_overlay(tmp_path / "overlay.mp4", iter(frames), verts, faces, cams, 25.0, audio=audio)
    decoded, audio_streams = _decode(path)
    assert len(decoded) == n and audio_streams == 1
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)
    inside = _inside(corners, centres, 2.0).reshape(h, w)
    outside = ~_inside(corners, centres, -8.0).reshape(h, w)  # clear of the edges' ringing
    deep = _inside(corners, centres, 4.0).reshape(h, w)
    assert deep.sum() > 50 and outside.sum() > 1000
    for got, src in zip(decoded, frames):
        assert got.shape == (h, w, 3)
        diff = got.astype(int) - src.astype(int)
        # 45 % of a light blue (0.55, 0.75, 1) lit head-on: the headlight's cosine is 0.97-1 here
        want = 0.55 * src + 0.45 * 255 * np.array([0.55, 0.75, 1.0]) * (0.35 + 0.65 * 0.985)
        err = np.abs(got.astype(float) - want)[deep]  # deep inside: no chroma shared with the frame
        assert err.max() < 8 and err.mean() < 3.5
        assert (np.abs(diff).max(2)[inside] > 25).all()
        assert np.abs(diff[outside]).max() <= 8 and np.abs(diff[outside]).mean() < 2  # H.264 error only


def test_write_overlay_pads_odd_sizes_and_draws_landmarks(tmp_path) -> None:
    w, h, n = 65, 49, 2
    verts, faces, cams, _ = _triangle_scene(w, h, n)
    frames = [np.full((h, w, 3), 90, np.uint8) for _ in range(n)]
    # dots on whole 2 x 2 chroma blocks of yuv420p (pixels 6-7 and 56-57), so their colour survives
    marks = np.tile(np.array([[[7.0, 7.0], [np.nan, np.nan], [-1.0, -1.0]]]), (n, 1, 1))
    fitted = np.tile(np.array([[[57.0, 41.0]]]), (n, 1, 1))
    path = write_overlay(tmp_path / "odd.mp4", frames, verts, faces, cams, 25.0, landmarks=marks, fitted=fitted,
                         batch=1)
    decoded, audio_streams = _decode(path)
    assert len(decoded) == n and audio_streams == 0
    for got in decoded:
        assert got.shape == (h + 1, w + 1, 3)
        green, red = got[6:8, 6:8].astype(int), got[40:42, 56:58].astype(int)
        assert (green[..., 1] - green[..., 0] > 60).all() and (red[..., 0] - red[..., 1] > 60).all()
    with pytest.raises(RuntimeError):  # one frame short of the fit: nothing is written
        write_overlay(tmp_path / "short.mp4", frames[:1], verts, faces, cams, 25.0)
    assert not (tmp_path / "short.mp4").exists()


def test_write_quality_round_trips_with_nulls(tmp_path) -> None:
    err = np.array([1.0, np.nan, 2.0, 3.0, np.nan, 10.0])
    failed, jumps = np.isnan(err), np.zeros(6, bool)
    jumps[5] = True
    out = write_quality(tmp_path / "quality.json", fps=25.0, reprojection_px=err, failed=failed, jumps=jumps,
                        handled="interpolated", extra={"seconds": {"landmarks": 1.5}, "focal": np.float32(500.0)})
    data = json.loads((tmp_path / "quality.json").read_text())
    assert data["reprojection_px"] == [1.0, None, 2.0, 3.0, None, 10.0]
    assert data["reprojection_px_mean"] == pytest.approx(4.0) and data["reprojection_px_median"] == pytest.approx(2.5)
    assert data["reprojection_px_p95"] == pytest.approx(np.percentile([1.0, 2.0, 3.0, 10.0], 95))
    assert data["failed_frames"] == [1, 4] and data["jump_frames"] == [5] and data["handled"] == "interpolated"
    assert data["seconds"] == {"landmarks": 1.5} and data["focal"] == 500.0
    assert out["failed_frames"] == data["failed_frames"]
    with pytest.raises(ValueError):
        write_quality(tmp_path / "q2.json", fps=25.0, reprojection_px=err, failed=failed, jumps=jumps,
                      handled="ignored", extra={})

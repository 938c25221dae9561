"""The tracking pieces: smoothing, the crop, the landmark embeddings, face choice, and the fit
itself on exact synthetic landmarks (an analytic oracle: projected points of a known pose)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from being_kernel import InputError
from being_kernel.head import axis_angle_to_matrix, build_demo_head
from being_prepare.crop import Crop, choose_crop
from being_prepare.embedding import demo_embedding, load_embedding, save_embedding
from being_prepare.landmarks import CHIN, FOREHEAD, FaceFollower, build_track
from being_prepare.smoothing import fill_gaps, one_euro, smooth_track
from being_prepare.tracking import R_FRONT, Tracker, TrackingConfig


# ------------------------------------------------------------------ smoothing


def test_zero_lag_smoothing_follows_a_fast_ramp_and_removes_jitter() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(200) / 25.0
    truth = np.where(t < 4, 0.0, np.minimum((t - 4) * 2.0, 2.0))  # still, then 2 units/s, then still
    noisy = truth + rng.normal(0, 0.01, t.shape)
    causal = one_euro(noisy, 25.0, min_cutoff=1.0, beta=5.0)
    both = smooth_track(noisy, 25.0, min_cutoff=1.0, beta=5.0)
    ramp = (t > 4.3) & (t < 4.7)
    assert np.mean(causal[ramp] - truth[ramp]) < -0.01  # the causal pass lags behind the ramp ...
    assert abs(np.mean(both[ramp] - truth[ramp])) < 0.3 * abs(np.mean(causal[ramp] - truth[ramp]))  # ... not both
    still = t < 3.5
    assert np.std(both[still] - truth[still]) < 0.5 * np.std(noisy[still] - truth[still])


def test_fill_gaps_interpolates_and_holds_the_ends() -> None:
    x = np.array([np.nan, 1.0, np.nan, 3.0, np.nan])
    out = fill_gaps(x, np.isfinite(x))
    np.testing.assert_allclose(out, [1, 1, 2, 3, 3])
    with pytest.raises(ValueError):
        fill_gaps(x, np.zeros(5, bool))


# ------------------------------------------------------------------ crop


def test_crop_maps_points_and_pixels_consistently() -> None:
    rng = np.random.default_rng(1)
    src = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    crop = Crop(x0=30.0, y0=20.0, side=80.0, size=80)  # scale 1: a plain window
    np.testing.assert_array_equal(crop.apply(src), src[20:100, 30:110])
    np.testing.assert_allclose(crop.to_output(np.array([[30.0, 20.0], [110.0, 100.0]])), [[0, 0], [80, 80]])
    np.testing.assert_allclose(crop.principal_point(160, 120), [50.0, 40.0])
    half = Crop(x0=30.0, y0=20.0, side=80.0, size=40)
    assert half.apply(src).shape == (40, 40, 3) and half.scale == 0.5


def test_choose_crop_covers_the_face_track_and_stays_in_frame() -> None:
    pts = np.zeros((3, 478, 2))
    for i, cx in enumerate((200.0, 220.0, 240.0)):
        pts[i, :, 0], pts[i, :, 1] = cx, 150.0
        pts[i, FOREHEAD], pts[i, CHIN] = (cx, 100.0), (cx, 200.0)  # a 100-pixel face
    crop = choose_crop(pts, np.ones(3, bool), 640, 480, 512)
    assert crop.side == pytest.approx(100 * 2.4 + 40, abs=2)  # the range is taken between percentiles 2 and 98
    assert crop.x0 <= 200 - 50 and crop.x0 + crop.side >= 240 + 50
    edge = choose_crop(pts - np.array([190.0, 0]), np.ones(3, bool), 640, 480, 512)
    assert edge.x0 == 0.0  # shifted to stay inside the frame
    full = choose_crop(pts, np.ones(3, bool), 640, 480, 512, full_frame=True)
    assert full.side > crop.side


# ------------------------------------------------------------------ embeddings


def test_embedding_files_round_trip_and_bad_ones_are_refused(tmp_path) -> None:
    head = build_demo_head()
    emb = demo_embedding(head)
    assert len(emb.mediapipe) > 200 and set(emb.mediapipe) >= set(range(468, 478))  # irises are in
    path = save_embedding(emb, tmp_path / "e.npz")
    back = load_embedding(path, head)
    np.testing.assert_array_equal(back.face_idx, emb.face_idx)
    np.savez(tmp_path / "bad.npz", lmk_face_idx=np.array([len(head.faces)]), lmk_b_coords=np.ones((1, 3)) / 3,
             landmark_indices=np.array([0]))
    with pytest.raises(InputError, match="out of range"):
        load_embedding(tmp_path / "bad.npz", head)
    np.savez(tmp_path / "keys.npz", faces=np.zeros(3))
    with pytest.raises(InputError, match="missing array"):
        load_embedding(tmp_path / "keys.npz", head)
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(InputError):
        load_embedding(tmp_path / "obj.npy", head)


def test_demo_embedding_points_lie_on_the_surface() -> None:
    head = build_demo_head()
    emb = demo_embedding(head)
    assert np.all(emb.bary >= -1e-6) and np.allclose(emb.bary.sum(1), 1, atol=1e-5)
    verts = torch.from_numpy(head.v_template)[None]
    pts = emb.points(verts, head.faces)[0].numpy()
    corners = head.v_template[head.faces[emb.face_idx]]
    assert np.all(np.linalg.norm(pts - corners.mean(1), axis=1) < 0.02)


# ------------------------------------------------------------------ face choice


def _face(cx: float, size: float) -> np.ndarray:
    f = np.zeros((478, 2))
    f[:, 0], f[:, 1] = cx + np.linspace(-size / 2, size / 2, 478), 100.0 + np.linspace(-size / 2, size / 2, 478)
    f[FOREHEAD], f[CHIN] = (cx, 100 - size / 2), (cx, 100 + size / 2)
    return f


def test_the_largest_face_is_followed_and_face_n_picks_another() -> None:
    small, big = _face(50, 40), _face(300, 120)
    follow = FaceFollower()
    assert follow.choose([small, big]) is big and "2 faces" in follow.note
    assert follow.choose([_face(60, 40), _face(305, 120)])[FOREHEAD, 0] == 305  # stays with the same person
    other = FaceFollower(face=1)
    assert other.choose([small, big]) is small
    with pytest.raises(InputError, match="--face 2"):
        FaceFollower(face=2).choose([small, big])
    assert FaceFollower().choose([]) is None


def test_no_face_anywhere_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no face"):
        build_track([None, None], 25.0)


# ------------------------------------------------------------------ the fit on exact landmarks


def test_the_landmark_fit_recovers_a_known_pose_from_exact_landmarks() -> None:
    """Landmarks projected from the demo head at known poses (an analytic oracle, no detector):
    the fit finds the rotation within a degree and the focal length within a few percent."""
    head = build_demo_head()
    emb = demo_embedding(head)
    T, size, f = 12, 512, 900.0
    yaw = np.radians(np.linspace(-25, 25, T))
    pitch = np.radians(np.linspace(10, -10, T))
    rot = torch.from_numpy(np.stack([pitch, yaw, np.radians(np.linspace(-5, 5, T))], -1))
    R = torch.from_numpy(R_FRONT) @ axis_angle_to_matrix(rot)
    t = torch.tensor([0.01, 0.02, 0.55], dtype=torch.float64).expand(T, 3)
    pts = emb.points(torch.from_numpy(head.v_template).double()[None], head.faces)[0]  # [L, 3]
    cam = pts[None] @ R.transpose(1, 2) + t[:, None]
    pp = np.array([size / 2, size / 2])
    px = (cam[..., :2] / cam[..., 2:] * f).numpy() + pp
    landmarks = np.zeros((T, 478, 2))
    landmarks[:, emb.mediapipe] = px
    cfg = TrackingConfig(focal_init=700.0, focal_prior=0.0, focal_search=True)
    tracker = Tracker(head, emb, cfg, landmarks, np.ones(T, bool), pp, size)
    tracker.fit_landmarks()
    res = tracker.result()
    cos = (np.einsum("tij,tij->t", res.R, R.numpy()) - 1) / 2
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert angle.max() < 1.0, angle
    assert abs(res.K[0, 0] / f - 1) < 0.05, res.K[0, 0]
    assert np.nanmedian(res.reprojection_px) < 0.5


def test_a_head_model_with_a_shape_space_fits_its_shape() -> None:
    """The FLAME path: a FLAME-layout model with an identity space (the demo head given 10 smooth
    shape directions) fits a shape shared by the clip instead of a template deformation, and
    recovers the pose and most of the shape from exact landmarks of a known shaped head."""
    from dataclasses import replace

    demo = build_demo_head()
    rng = np.random.default_rng(4)
    v = demo.v_template.astype(np.float64)
    centres = v[rng.choice(len(v), 10, replace=False)]
    bumps = np.exp(-((v[:, None] - centres[None]) ** 2).sum(-1) / (2 * 0.03**2))  # [V, 10]
    dirs = rng.normal(0, 1, (10, 3))
    shapedirs = (0.004 * bumps[:, None, :] * dirs.T[None]).astype(np.float32)  # [V, 3, 10]: 4 mm per unit
    head = replace(demo, shapedirs=shapedirs, motion_space="test-shaped")
    emb = demo_embedding(demo)
    beta = torch.from_numpy(rng.normal(0, 1, 10))
    shaped = torch.from_numpy(v) + torch.einsum("vcs,s->vc", torch.from_numpy(shapedirs).double(), beta)
    T, size, f = 8, 512, 900.0
    rot = torch.from_numpy(np.stack([np.zeros(T), np.radians(np.linspace(-20, 20, T)), np.zeros(T)], -1))
    R = torch.from_numpy(R_FRONT) @ axis_angle_to_matrix(rot)
    t = torch.tensor([0.0, 0.01, 0.5], dtype=torch.float64)
    cam = emb.points(shaped[None], head.faces)[0][None] @ R.transpose(1, 2) + t
    pp = np.array([size / 2, size / 2])
    landmarks = np.zeros((T, 478, 2))
    landmarks[:, emb.mediapipe] = (cam[..., :2] / cam[..., 2:] * f).numpy() + pp
    tracker = Tracker(head, emb, TrackingConfig(focal=f, shape_prior=0.001), landmarks, np.ones(T, bool), pp, size)
    tracker.fit_landmarks()
    res = tracker.result()
    assert res.identity is None and res.shape.shape == (10,)
    angle = np.degrees(np.arccos(np.clip((np.einsum("tij,tij->t", res.R, R.numpy()) - 1) / 2, -1, 1)))
    assert angle.max() < 1.0, angle
    fitted = torch.from_numpy(v) + torch.einsum("vcs,s->vc", torch.from_numpy(shapedirs).double(),
                                                torch.from_numpy(res.shape))
    err, before = (fitted - shaped).norm(dim=-1).mean(), (torch.from_numpy(v) - shaped).norm(dim=-1).mean()
    assert err < 0.5 * before, (float(err), float(before))

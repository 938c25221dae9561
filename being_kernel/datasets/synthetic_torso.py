"""The full-frame synthetic dataset (``being make-dataset synthetic --full-frame``): the demo head on a
neck and shoulders that move with it, over a background, seen by one fixed camera.

The torso is a lofted mesh (a neck tube inside the head's open neck, shoulders, chest) in the demo
head's model space, with a procedural shirt texture (checks, a V collar, fabric noise) and skin
above the collar. Every vertex is skinned to the head's rigid motion by a weight that is 1 at the
top of the neck and falls to 0 at the shoulders (two-bone linear blend skinning), so the neck bends
and twists with the head while the shoulders stay; the chest breathes (4 s period, a few
millimetres), which no pose explains. Head poses: training frames within +-20 deg yaw, +-10 deg pitch,
+-6 deg roll; every held-out frame outside that box (an ellipse of 30 x 15 deg, see
``full_frame_pose``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..cameras import Cameras
from ..head.data import HeadModelData

#: The fixed camera: 0.80 m in front of the neck, 30 deg vertical field of view (head and shoulders).
CAMERA_EYE, CAMERA_TARGET, CAMERA_FOV = (0.0, -0.07, 0.80), (0.0, -0.07, 0.0), 30.0
TRAIN_POSE_DEG = (20.0, 10.0, 6.0)  # yaw, pitch, roll amplitudes of the training frames
TEST_POSE_DEG = (30.0, 15.0, 8.0)  # the held-out ellipse: yaw 30 cos, pitch 15 sin, roll 8 sin(slow)
TRANSLATION_M = 0.002
BREATH_PERIOD_S, BREATH_M = 4.0, 0.003

# torso rings, top to bottom: y, half width, half depth, centre z, superellipse exponent
_RINGS = np.array([
    (-0.125, 0.0470, 0.0490, -0.0125, 2.0),
    (-0.155, 0.0480, 0.0500, -0.0125, 2.0),
    (-0.168, 0.0560, 0.0560, -0.0140, 2.1),
    (-0.180, 0.0900, 0.0720, -0.0170, 2.4),
    (-0.193, 0.1400, 0.0880, -0.0190, 2.8),
    (-0.210, 0.1780, 0.1000, -0.0200, 3.1),
    (-0.240, 0.1900, 0.1050, -0.0200, 3.2),
    (-0.300, 0.1920, 0.1060, -0.0180, 3.2),
    (-0.420, 0.1850, 0.1030, -0.0150, 3.0),
])
TORSO_ROWS, TORSO_COLS = 72, 96
SKIN_TOP, SKIN_BOTTOM = -0.145, -0.190  # skinning weight 1 above, 0 below (smoothstep between)
COLLAR_Y, COLLAR_DIP = -0.172, 0.040  # skin above the collar line, which dips this much at the front


@dataclass(frozen=True)
class Torso:
    """The torso mesh in the head's model space: vertices [V, 3], faces [F, 3], uv [V, 2] (v up),
    texture [Ht, Wt, 3] float32, weights [V] (1: moves with the head, 0: still), chest [V] (how much
    breathing moves it)."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    weights: np.ndarray
    chest: np.ndarray


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def full_frame_camera(size: int) -> Cameras:
    """The fixed camera of the full-frame set, images ``size`` x ``size``."""
    return Cameras.look_at(torch.tensor(CAMERA_EYE), torch.tensor(CAMERA_TARGET), torch.tensor([0.0, 1.0, 0.0]),
                           CAMERA_FOV, size, size)


def neck_colour(head: HeadModelData) -> np.ndarray:
    """[3] the mean texture colour of the head's neck (faces entirely below the jaw), for the torso's skin."""
    low = (head.v_template[head.faces][..., 1] < -0.135).all(axis=1)
    uv = head.uv_coords[head.uv_faces[low]].reshape(-1, 2)
    h, w = head.texture.shape[:2]
    px = np.clip((uv[:, 0] * (w - 1)).round().astype(int), 0, w - 1)
    py = np.clip(((1.0 - uv[:, 1]) * (h - 1)).round().astype(int), 0, h - 1)
    return head.texture[py, px].reshape(-1, 3).mean(axis=0).astype(np.float32)


def _shirt_texture(rng: np.random.Generator, skin: np.ndarray, size: int = 512) -> np.ndarray:
    """[size, size, 3] float32: checks over a shirt colour with fabric noise, skin above the collar
    (texture rows: v from 1 at the top ring to 0 at the bottom; columns: the angle, front at u = 0.5)."""
    v = 1.0 - (np.arange(size) + 0.5) / size
    u = (np.arange(size) + 0.5) / size
    vv, uu = np.meshgrid(v, u, indexing="ij")
    y = _RINGS[0, 0] + (1.0 - (vv - 0.01) / 0.98) * (_RINGS[-1, 0] - _RINGS[0, 0])  # texture row -> model y
    phi = (uu - 0.01) / 0.98 * 2 * math.pi - math.pi
    hue = rng.uniform(0, 1)
    base = np.array([0.5 + 0.35 * math.cos(2 * math.pi * (hue + k / 3)) for k in range(3)], np.float32) * 0.7
    checks = 0.5 + 0.5 * np.sign(np.sin(phi * 14)) * np.sign(np.sin(y * 160))
    stripe = (np.abs(np.sin(phi * 14)) < 0.12) | (np.abs(np.sin(y * 160)) < 0.12)
    shirt = base[None, None] * (0.75 + 0.35 * checks[..., None])
    shirt = np.where(stripe[..., None], np.clip(base * 1.6 + 0.15, 0, 1)[None, None], shirt)
    shirt = shirt * (1.0 + 0.06 * rng.standard_normal(shirt.shape[:2])[..., None])
    collar = COLLAR_Y - COLLAR_DIP * np.clip(np.cos(phi), 0, 1) ** 6
    above = _smoothstep(collar - 0.002, collar + 0.002, y)[..., None]
    edge = np.exp(-(((y - collar) / 0.004) ** 2))[..., None] * 0.35  # a darker hem along the collar
    out = above * skin[None, None] + (1 - above) * shirt * (1 - edge)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def build_torso(head: HeadModelData, seed: int) -> Torso:
    """The torso mesh and its shirt for ``head`` (the demo head: its neck is open below y = -0.158)."""
    rng = np.random.default_rng(seed + 7919)
    ys = np.linspace(_RINGS[0, 0], _RINGS[-1, 0], TORSO_ROWS)
    params = np.stack([np.interp(-ys, -_RINGS[:, 0], _RINGS[:, k]) for k in range(1, 5)], -1)  # [R, 4]
    phi = np.linspace(-math.pi, math.pi, TORSO_COLS, endpoint=False)
    c, s = np.cos(phi), np.sin(phi)
    verts = []
    for j, y in enumerate(ys):
        a, b, zc, n = params[j]
        r = (np.abs(c) ** n + np.abs(s) ** n) ** (-1.0 / n)  # superellipse radius at each angle
        x, z = a * r * s, zc + b * r * c  # phi 0 = front (+z), +pi/2 = the subject's left (+x)
        verts.append(np.stack([x, np.full_like(x, y), z], -1))
    verts = np.concatenate(verts)
    # uv: one extra column closes the seam at the back (u 0 and 1), so duplicate it in uv space
    cols = TORSO_COLS + 1
    u = 0.01 + 0.98 * np.arange(cols) / TORSO_COLS
    v = 0.99 - 0.98 * np.arange(TORSO_ROWS) / (TORSO_ROWS - 1)
    uv_grid = np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)
    grid = np.concatenate([verts.reshape(TORSO_ROWS, TORSO_COLS, 3), verts.reshape(TORSO_ROWS, TORSO_COLS, 3)[:, :1]], 1)
    faces = []
    for j in range(TORSO_ROWS - 1):
        for i in range(TORSO_COLS):
            a0, a1 = j * cols + i, j * cols + i + 1
            b0, b1 = a0 + cols, a1 + cols
            faces += [(a0, b0, a1), (a1, b0, b1)]
    faces = np.array(faces, np.int64)
    vertices = grid.reshape(-1, 3)
    # wind the faces as the head's are (outward normals front-facing), whatever this loop's order
    if _outward(vertices, faces, np.array([0.0, -0.3, -0.015])) != _outward(
            head.v_template, head.faces[head.v_template[head.faces][:, :, 1].min(1) > 0.05], np.array([0.0, 0.03, -0.01])):
        faces = faces[:, ::-1].copy()
    y = vertices[:, 1]
    weights = _smoothstep(SKIN_BOTTOM, SKIN_TOP, y)
    chest = _smoothstep(-0.19, -0.25, y) * (vertices[:, 2] > -0.015)
    texture = _shirt_texture(rng, neck_colour(head))
    return Torso(vertices.astype(np.float32), faces, uv_grid.astype(np.float32), texture,
                 weights.astype(np.float32), chest.astype(np.float32))


def _outward(vertices: np.ndarray, faces: np.ndarray, centre: np.ndarray) -> bool:
    """Whether most faces' (v1 - v0) x (v2 - v0) normals point away from ``centre``."""
    p = vertices[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    return bool(((n * (p.mean(1) - centre)).sum(-1) > 0).mean() > 0.5)


def full_frame_pose(frames: int, test_frames: int, rng: np.random.Generator, smooth) -> tuple[np.ndarray, ...]:  # noqa: ANN001
    """(yaw, pitch, roll) [T] radians: training frames within TRAIN_POSE_DEG (``smooth`` curves in
    +-1), held-out frames on the ellipse yaw = 30 cos, pitch = 15 sin (deg; 2.4 s a turn), so every
    held-out frame has |yaw| > 20 or |pitch| > 10 (cos^2 + sin^2 = 1: one of them is at least 0.707)."""
    n_train = frames - test_frames
    yaw, pitch, roll = (math.radians(a) * smooth(rng, frames, 0.04, 0.25) for a in TRAIN_POSE_DEG)
    t = np.arange(test_frames) / 25.0
    angle = 2 * math.pi * t / 2.4 + rng.uniform(0, 2 * math.pi)
    yaw[n_train:] = math.radians(TEST_POSE_DEG[0]) * np.cos(angle)
    pitch[n_train:] = math.radians(TEST_POSE_DEG[1]) * np.sin(angle)
    roll[n_train:] = math.radians(TEST_POSE_DEG[2]) * np.sin(2 * math.pi * t / 5.0 + rng.uniform(0, 2 * math.pi))
    return yaw, pitch, roll


def background_plate(size: int, seed: int) -> np.ndarray:
    """[size, size, 3] float32: a vertical gradient between two colours with soft blobs and grain."""
    rng = np.random.default_rng(seed + 104729)
    top, bottom = rng.uniform(0.35, 0.85, 3), rng.uniform(0.2, 0.6, 3)
    y = (np.arange(size) + 0.5)[:, None, None] / size
    img = top * (1 - y) + bottom * y + np.zeros((size, size, 3))
    yy, xx = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size, indexing="ij")
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - 0.5 * blob) + 0.5 * blob * rng.uniform(0.2, 0.9, 3)
    img = img + 0.02 * rng.standard_normal((size, size, 1))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def pose_torso(torso: Torso, A: torch.Tensor, b: torch.Tensor, breath: torch.Tensor) -> torch.Tensor:
    """[B, V, 3] torso vertices: x -> w (A x + b) + (1 - w) x, the chest lifted and pushed out by
    ``breath`` [B] (in +-1) x BREATH_M. A [B, 3, 3], b [B, 3]: the head's rigid map of each frame."""
    x = torch.from_numpy(torso.vertices).to(A)
    w = torch.from_numpy(torso.weights).to(A)[None, :, None]
    chest = torch.from_numpy(torso.chest).to(A)[None, :, None]
    still = x[None] + BREATH_M * breath[:, None, None] * chest * torch.tensor([0.0, 1.0, 0.7]).to(A)
    moved = torch.einsum("bij,vj->bvi", A, x) + b[:, None]
    return w * moved + (1 - w) * still

"""A test video with known tracking: the demo head talking over a torso and a background, rendered
with the kernel's reference mesh renderer and encoded as H.264 with the demo speech muxed in.

It is what ``being prepare`` is checked against (tests, docs/benchmarks.md): the head moves by the
synthetic dataset's seeded motion (``being_kernel.datasets.synthetic.synthetic_motion``: yaw
±30°, pitch ±15°, roll ±8°, speech-like jaw, gaze, blinks, expressions) in front of a fixed
camera; the torso (a smooth shoulder surface under the neck) and the background stay still.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from being_kernel.api import Cameras
from being_kernel.datasets import synthetic_motion
from being_kernel.head import build_demo_head
from being_kernel.head import FlameModel
from being_kernel.media import demo_speech
from being_kernel.media import Mp4Writer
from being_kernel.render import render_mesh
from being_kernel.api import Motion

FPS = 25.0
DISTANCE_M = 0.5  # camera to head
FOV_Y_DEG = 60.0


@dataclass
class GroundTruth:
    """What the video shows, T frames: ``motion`` (global rotation and translation included),
    the fixed source camera (``camera``, one view, source pixels) and ``size`` (width, height)."""

    motion: Motion
    camera: Cameras
    size: tuple[int, int]

    def camera_vertices(self, frames: slice | None = None) -> torch.Tensor:
        """The head's vertices in camera coordinates [T, V, 3] (metres)."""
        head = build_demo_head()
        m = self.motion if frames is None else self.motion.slice(frames.start, frames.stop)
        with torch.no_grad():
            v = FlameModel(head)(m).vertices
        return v @ self.camera.R[0].T + self.camera.t[0]

    def head_rotations(self) -> np.ndarray:
        """R [T, 3, 3]: the head's rotation as the camera sees it (camera R times FLAME global)."""
        from being_kernel.head import axis_angle_to_matrix

        return (self.camera.R[0].double() @ axis_angle_to_matrix(self.motion.global_rot.double())).numpy()


def _torso_mesh(n_around: int = 64, n_down: int = 24) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A shoulder surface: an elliptic tube from the neck (radius 5 cm at y = -0.14 m) widening to
    shoulders (half-width 0.2 m) and going down out of frame. vertices [V, 3], faces [F, 3], colours [V, 3]."""
    ys = np.linspace(-0.13, -0.55, n_down)
    th = np.linspace(0, 2 * math.pi, n_around, endpoint=False)
    s = np.clip((-0.13 - ys) / 0.1, 0, 1)
    s = s * s * (3 - 2 * s)  # smooth neck-to-shoulder transition
    a = 0.055 + (0.2 - 0.055) * s  # half-width
    b = 0.05 + (0.11 - 0.05) * s  # half-depth
    x = a[:, None] * np.cos(th)[None]
    z = b[:, None] * np.sin(th)[None] - 0.02 - 0.02 * s[:, None]
    y = np.broadcast_to(ys[:, None], x.shape)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    faces = []
    for i in range(n_down - 1):
        for j in range(n_around):
            a0, a1 = i * n_around + j, i * n_around + (j + 1) % n_around
            b0, b1 = a0 + n_around, a1 + n_around
            faces += [(a0, b0, a1), (a1, b0, b1)]  # counter-clockwise seen from outside
    shirt = np.array([0.22, 0.33, 0.55])
    stripe = 0.85 + 0.15 * (np.sin(th * 6)[None] > 0)
    skin = np.array([0.80, 0.62, 0.52])
    col = np.where((s < 0.35)[:, None, None], skin, shirt * stripe[..., None])
    return (torch.from_numpy(verts).double(), torch.tensor(faces, dtype=torch.int64),
            torch.from_numpy(np.broadcast_to(col, (n_down, n_around, 3)).reshape(-1, 3).copy()).double())


def _background(width: int, height: int) -> torch.Tensor:
    """A fixed, textured backdrop [H, W, 3] in [0, 1]: gradients, a window and shelves."""
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    img = torch.stack([0.55 + 0.2 * x, 0.6 - 0.15 * y, 0.5 + 0.1 * torch.sin(6 * x)], -1)
    img[(x > 0.06) & (x < 0.3) & (y > 0.08) & (y < 0.45)] = torch.tensor([0.85, 0.9, 0.95])
    for k in range(3):
        band = (y > 0.55 + 0.12 * k) & (y < 0.57 + 0.12 * k) & (x > 0.65)
        img[band] = torch.tensor([0.35, 0.25, 0.15])
    return img.double()


def make_test_video(path: str | Path, *, frames: int = 100, size: tuple[int, int] = (480, 640), seed: int = 0,
                    supersample: int = 2) -> GroundTruth:
    """Render and encode the test video (``size`` = width, height; portrait by default, as phones
    film) at 25 fps with ``frames`` frames and the demo speech as its audio track."""
    head = build_demo_head()
    sm = synthetic_motion(frames, max(1, frames // 10), seed, list(head.expression_names))
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    motion = Motion(f32(sm.expression), f32(sm.head_rot), torch.zeros(frames, 3), f32(sm.jaw), f32(sm.eyes),
                    f32(sm.eyelids), f32(sm.translation), fps=FPS, space=head.motion_space)
    w, h = size
    camera = Cameras.look_at(torch.tensor([0.0, -0.06, DISTANCE_M]), torch.tensor([0.0, -0.06, 0.0]),
                             torch.tensor([0.0, 1.0, 0.0]), FOV_Y_DEG, w, h)
    gt = GroundTruth(motion, camera, (w, h))
    model = FlameModel(head)
    faces = torch.from_numpy(head.faces)
    shading = {k: torch.from_numpy(getattr(head, k)) for k in ("uv_coords", "uv_faces", "texture")}
    tv, tf, tc = _torso_mesh()
    cam64 = Cameras(camera.R.double(), camera.t.double(), camera.K.double(), w, h)
    torso = render_mesh(tv, tf, cam64, vertex_colors=tc, supersample=supersample)
    bg = _background(w, h)
    audio = demo_speech(frames / FPS)
    with Mp4Writer(path, FPS, (w, h), audio.samples, audio.sample_rate) as writer:
        for a in range(0, frames, 4):
            with torch.no_grad():
                verts = model(motion.slice(a, min(a + 4, frames))).vertices.double()
            imgs = render_mesh(verts, faces, cam64[[0] * len(verts)], supersample=supersample, **shading)
            for i in range(len(verts)):
                head_front = (imgs.depth[i] <= torso.depth[0]).double()  # [H, W, 1]
                ha, ta = imgs.alpha[i].double() * head_front, torso.alpha[0].double()
                fg_a = ha + (1 - ha) * ta
                # both renders are over black, i.e. premultiplied by their alpha
                fg = imgs.rgb[i].double() * head_front + (1 - ha) * torso.rgb[0].double()
                frame = fg + (1 - fg_a) * bg
                writer.write(frame.clamp(0, 1))
        writer.finish(expected_frames=frames)
    return gt

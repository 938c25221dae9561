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

from being_kernel.api import Cameras, Motion
from being_kernel.datasets import synthetic_motion
from being_kernel.head import FlameModel, build_demo_head
from being_kernel.media import Mp4Writer, demo_speech
from being_kernel.render import render_mesh

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


def similarity_motion(frames: int, *, roll_deg: float = 20.0, scale: float = 0.12, shift: float = 0.06) -> np.ndarray:
    """Per-frame similarity transforms [T, 4] (roll degrees counter-clockwise on screen, scale
    factor, x and y shift as fractions of the frame): a smooth sweep through ± the amplitudes."""
    k = np.arange(frames) / max(1, frames - 1)
    return np.stack([roll_deg * np.sin(2 * math.pi * k), 1 + scale * np.sin(math.pi * k + 0.5),
                     shift * np.sin(2 * math.pi * k + 1.0), shift * 0.5 * np.cos(2 * math.pi * k)], -1)


def make_similarity_video(image: np.ndarray, path: str | Path, motion: np.ndarray, centre: tuple[float, float],
                          size: tuple[int, int] = (480, 480), fps: float = FPS) -> Path:
    """A video (no audio) of a still photo ``image`` (RGB uint8 [H, W, 3]) moved by the
    similarity transforms ``motion`` [T, 4] (see ``similarity_motion``) about ``centre`` (x, y
    pixels of the photo, e.g. the face), which is placed at the middle of the ``size`` frame."""
    src = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
    h, w = image.shape[:2]
    W, H = size
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    with Mp4Writer(path, fps, size) as writer:
        for roll, scale, dx, dy in motion:
            # output pixel -> photo pixel: undo the shift, the scale and the (on-screen) rotation
            a = math.radians(roll)
            u, v = (xs - W / 2 - dx * W) / scale, (ys - H / 2 - dy * H) / scale
            px = centre[0] + math.cos(a) * u - math.sin(a) * v
            py = centre[1] + math.sin(a) * u + math.cos(a) * v
            grid = torch.stack([px / w * 2 - 1, py / h * 2 - 1], -1)[None].float()
            frame = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="border",
                                                    align_corners=False)
            writer.write(frame[0].permute(1, 2, 0).clamp(0, 1))
        writer.finish(expected_frames=len(motion))
    return Path(path)


def tracking_errors(dataset: str | Path, gt: GroundTruth) -> dict[str, float]:
    """How far a prepared dataset's tracking is from the truth of its test video (every frame):

    rotation_deg_mean / _max: angle between the tracked and true head rotations (as the camera sees them);
    mesh_mm_mean: per-vertex distance of the tracked head to the true one, in camera coordinates;
    face_mm_mean: the same in the head's own frame (pose removed): expression, jaw, eyes, eyelids and identity;
    jaw_rad_mean: error of the jaw opening; eyelids_mean: of the eyelid weights."""
    from being_kernel.datasets import load_tracked_video
    from being_kernel.head import FlameModel

    video = load_tracked_video(dataset)
    head = video.head()
    model = FlameModel(head)
    with torch.no_grad():
        v = model(video.motion, video.shape).vertices.double()  # [T, V, 3]; the head pose is in the camera
        truth = gt.motion
        v_true_face = FlameModel(build_demo_head())(Motion(truth.expression, torch.zeros_like(truth.jaw),
                                                           torch.zeros_like(truth.jaw), truth.jaw, truth.eyes,
                                                           truth.eyelids, torch.zeros_like(truth.jaw),
                                                           space=truth.space)).vertices.double()
    R, t = video.cameras.R.double(), video.cameras.t.double()
    cam = v @ R.transpose(1, 2) + t[:, None]
    true_cam = gt.camera_vertices().double()
    R_true = torch.from_numpy(gt.head_rotations())
    cos = ((R @ R_true.transpose(1, 2)).diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
    angle = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
    return {
        "rotation_deg_mean": float(angle.mean()), "rotation_deg_max": float(angle.max()),
        "mesh_mm_mean": float((cam - true_cam).norm(dim=-1).mean() * 1000),
        "face_mm_mean": float((v - v_true_face).norm(dim=-1).mean() * 1000),
        "jaw_rad_mean": float((video.motion.jaw[:, 0] - truth.jaw[:, 0]).abs().mean()),
        "eyelids_mean": float((video.motion.eyelids - truth.eyelids).abs().mean()),
    }

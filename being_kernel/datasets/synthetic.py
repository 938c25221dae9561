"""The synthetic benchmark dataset: the procedural demo head rendered with the textured-mesh
reference renderer over a varied, seeded motion sequence, written as metrical-tracker output.

Motion (25 fps): head yaw within +-30 deg, pitch +-15 deg, roll +-8 deg and +-6 mm translation
(the head pose is stored in the camera, as the tracker does), speech-like jaw opening 0..0.3 rad,
gaze fixations and saccades, blinks through the eyelid blendshapes, and the demo head's expression
bases in smoothly varying combinations. Held out: the expression bases (all but the two blinks)
are split into ``EXPRESSION_GROUPS``; a training frame's active bases (weight > ``ACTIVE``) always
lie in one group, every test frame (the last ``test_frames``) has active bases from two groups,
so no test frame's combination occurs, even as a subset, in training. See docs/datasets.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from ..devices import default_device, resolve_device
from ..errors import InputError
from ..head.data import HeadModelData
from ..head.demo_head import build_demo_head, portrait_camera
from ..head.flame import FlameModel, axis_angle_to_matrix
from ..media.images import write_png
from ..cameras import Cameras
from ..render.mesh import render_mesh
from ..types import Motion
from .common import SIDECAR, SIDECAR_FORMAT, SIDECAR_VERSION, pad_or_cut_width, stack_cameras, writing_dataset
from .metrical import CHECKPOINT_DIR, IMAGE_DIR, MASK_DIR, frame_camera, frame_params, make_frame
from ..render.rotations import matrix_to_axis_angle

FPS = 25.0
#: a basis is active in a frame when its weight exceeds this
ACTIVE = 0.05
#: expression families: training frames mix bases of one group only, test frames mix two groups
EXPRESSION_GROUPS: tuple[tuple[str, ...], ...] = (
    ("lip_corner_up_L", "lip_corner_up_R", "eye_squint_L", "eye_squint_R", "brow_raise_L", "brow_raise_R"),
    ("lip_corner_down_L", "lip_corner_down_R", "brow_inner_up", "brow_lower", "lips_press", "nose_wrinkle"),
    ("lip_pucker", "lip_funnel", "upper_lip_raise", "lower_lip_down", "lips_part", "lip_stretch_L", "lip_stretch_R"),
    ("jaw_forward", "mouth_left", "mouth_right", "cheek_puff"),
)
BACKGROUND = (1.0, 1.0, 1.0)  # white: images are composited over it, the alpha masks say where the head is
HEAD_POSE_DEG = (30.0, 15.0, 8.0)  # yaw, pitch, roll amplitudes
TRANSLATION_M = 0.006  # metres per axis: keeps the crown inside the portrait camera
JAW_MAX = 0.3  # radians
GAZE_RAD = (0.25, 0.15)  # yaw, pitch


@dataclass
class SyntheticMotion:
    """The generated sequence (float64 numpy, T frames): head rotation as axis-angle about the
    root joint and translation (both go into the camera), jaw and eyes axis-angle, eyelids,
    expression [T, E] demo-head weights."""

    head_rot: np.ndarray
    translation: np.ndarray
    jaw: np.ndarray
    eyes: np.ndarray
    eyelids: np.ndarray
    expression: np.ndarray


def _smooth(rng: np.random.Generator, n: int, lo_hz: float, hi_hz: float, components: int = 4) -> np.ndarray:
    """A smooth random curve [n] scaled to reach +-1: a sum of sinusoids of random frequency and phase."""
    t = np.arange(n) / FPS
    f = rng.uniform(lo_hz, hi_hz, components)
    curve = sum(rng.uniform(0.5, 1.0) * np.sin(2 * math.pi * fi * t + rng.uniform(0, 2 * math.pi)) for fi in f)
    return curve / max(np.abs(curve).max(), 1e-9)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Axis-angle [n, 3] of Ry(yaw) Rx(pitch) Rz(roll) (y up, x to the subject's left, z forward)."""
    z = np.zeros_like(yaw)
    rot = lambda x, y, zz: axis_angle_to_matrix(torch.from_numpy(np.stack([x, y, zz], -1)))  # noqa: E731
    m = rot(z, yaw, z) @ rot(pitch, z, z) @ rot(z, z, roll)
    return matrix_to_axis_angle(m).numpy()


def _segments(rng: np.random.Generator, start: int, stop: int) -> list[tuple[int, int]]:
    """Consecutive [a, b) spans of 20..45 frames covering [start, stop)."""
    out, a = [], start
    while a < stop:
        b = min(stop, a + int(rng.integers(20, 46)))
        if stop - b < 10:  # no stub at the end
            b = stop
        out.append((a, b))
        a = b
    return out


def _training_expressions(rng: np.random.Generator, expr: np.ndarray, start: int, stop: int, index: dict) -> None:
    """Fill frames [start, stop): each segment mixes 1..3 bases of one group, fading in from and
    out to exactly zero, so bases of different groups are never active together. Groups come in
    shuffled rounds and each group deals its bases from a shuffled deck, so all get trained."""
    rounds: list[int] = []
    decks: dict[int, list[str]] = {}
    for a, b in _segments(rng, start, stop):
        if not rounds:
            rounds = [int(g) for g in rng.permutation(len(EXPRESSION_GROUPS))]
        g = rounds.pop()
        group = EXPRESSION_GROUPS[g]
        names = set()
        for _ in range(int(rng.integers(1, 4))):
            if not decks.get(g):
                decks[g] = [str(n) for n in rng.permutation(group)]
            names.add(decks[g].pop())
        for name in list(names):  # the other side of a left/right pair joins half the time
            twin = name[:-1] + {"L": "R", "R": "L"}.get(name[-1], "")
            if twin in group and twin != name and rng.random() < 0.5:
                names.add(twin)
        k = np.arange(b - a)
        ramp = max(1, min(5, (b - a - 1) // 2))
        env = _smoothstep(k / ramp) * _smoothstep((b - a - 1 - k) / ramp)
        for name in sorted(names):
            wobble = 1 + 0.15 * np.sin(2 * math.pi * rng.uniform(0.2, 0.8) * k / FPS + rng.uniform(0, 2 * math.pi))
            expr[a:b, index[name]] = rng.uniform(0.3, 0.85) * env * wobble  # <= 0.98: bases are made for [0, 1]


def _test_expressions(rng: np.random.Generator, expr: np.ndarray, start: int, stop: int, index: dict) -> None:
    """Fill frames [start, stop): each segment holds one basis from each of two groups (two slots);
    a segment's pair cross-fades with the previous one over its first frames, and the groups the
    two slots use on either side of a cross-fade are disjoint, so one basis of each slot stays
    above half its weight and every frame has active bases from two groups."""
    fade = 6
    in_curve = _smoothstep((np.arange(fade) + 1) / (fade + 1))  # rises through (0, 1); its complement falls
    prev: tuple[int, int] | None = None
    spans = _segments(rng, start, stop)
    for s, (a, b) in enumerate(spans):
        while True:
            g1, g2 = (int(g) for g in rng.choice(len(EXPRESSION_GROUPS), 2, replace=False))
            if prev is None or not {prev[0], g1} & {prev[1], g2}:
                break
        prev = (g1, g2)
        on = np.ones(stop - a)  # this pair's share from its first frame to the end of the test frames
        if s == 0:
            on[:5] = 0.25 + 0.75 * _smoothstep(np.arange(5) / 5.0)[: stop - a]
        else:
            on[:fade] = in_curve
        if s + 1 < len(spans):
            c = spans[s + 1][0] - a
            on[c:c + fade] = 1 - in_curve
            on[c + fade:] = 0
        k = np.arange(stop - a)
        for g in (g1, g2):
            name = str(rng.choice(EXPRESSION_GROUPS[g]))
            wobble = 1 + 0.15 * np.sin(2 * math.pi * rng.uniform(0.2, 0.8) * k / FPS + rng.uniform(0, 2 * math.pi))
            expr[a:stop, index[name]] += rng.uniform(0.4, 0.7) * on * wobble


def synthetic_motion(frames: int, test_frames: int, seed: int, expression_names: list[str]) -> SyntheticMotion:
    """The seeded motion sequence of the synthetic dataset (see the module doc)."""
    rng = np.random.default_rng(seed)
    n = frames
    yaw, pitch, roll = (math.radians(a) * _smooth(rng, n, 0.04, 0.25) for a in HEAD_POSE_DEG)
    head_rot = _rotation(yaw, pitch, roll)
    translation = TRANSLATION_M * np.stack([_smooth(rng, n, 0.03, 0.2) for _ in range(3)], -1)

    # jaw: syllables at 2.5..5 Hz under a phrase envelope with pauses, plus a little sideways motion
    rate = 3.75 + 1.25 * _smooth(rng, n, 0.1, 0.5)
    syllables = 0.5 - 0.5 * np.cos(2 * math.pi * np.cumsum(rate) / FPS)
    envelope = np.clip(0.55 + 0.7 * _smooth(rng, n, 0.08, 0.4), 0.0, 1.0)
    jaw = np.zeros((n, 3))
    jaw[:, 0] = JAW_MAX * envelope * syllables
    jaw[:, 1] = 0.02 * _smooth(rng, n, 0.1, 0.5)

    # gaze: fixations of 0.4..2 s joined by 2-frame saccades, both eyes together
    gaze = np.zeros((n, 2))
    target, k = np.zeros(2), 0
    while k < n:
        nxt = rng.uniform(-1, 1, 2) * GAZE_RAD
        hold = int(rng.integers(10, 51))
        step = _smoothstep(np.arange(1, min(hold, n - k) + 1) / 2.0)[:, None]
        gaze[k:k + hold] = target + step * (nxt - target)
        target, k = nxt, k + hold
    eye = _rotation(gaze[:, 0], gaze[:, 1], np.zeros(n))
    eyes = np.concatenate([eye, eye], axis=1)

    # blinks every 1.5..4 s: close in 2 frames, open in 4
    eyelids = np.zeros((n, 2))
    profile = np.array([0.5, 1.0, 1.0, 0.75, 0.45, 0.2, 0.05])
    k = int(rng.integers(5, 40))
    while k < n:
        m = min(len(profile), n - k)
        eyelids[k:k + m] = np.maximum(eyelids[k:k + m], profile[:m, None])
        k += int(rng.integers(38, 100))

    index = {name: i for i, name in enumerate(expression_names)}
    expr = np.zeros((n, len(expression_names)))
    _training_expressions(rng, expr, 0, n - test_frames, index)
    _test_expressions(rng, expr, n - test_frames, n, index)
    return SyntheticMotion(head_rot, translation, jaw, eyes, eyelids, expr)


def _camera_records(motion: SyntheticMotion, head: HeadModelData, cam: Cameras) -> tuple[np.ndarray, ...]:
    """Per-frame OpenCV cameras (R [T, 3, 3], t [T, 3], K [3, 3]) of the fixed camera ``cam`` seeing the
    head turned by ``head_rot`` about its root joint J0 and moved by ``translation``: FLAME's global
    rotation and translation are the rigid map x -> R0 (x - J0) + J0 + tr of every vertex, so
    X_cam = Rc R0 x + Rc (J0 - R0 J0 + tr) + tc."""
    Rc, tc, K = (x[0].double().numpy() for x in (cam.R, cam.t, cam.K))
    # the rest root joint: the joint regressor on the shaped mesh (expression and eyelids included)
    reg = head.j_regressor[0].astype(np.float64)
    base = reg @ head.v_template.astype(np.float64)
    per_expr = np.einsum("v,vce->ec", reg, head.exprdirs.astype(np.float64))  # [E, 3]
    per_lid = np.einsum("v,vce->ec", reg, head.eyelid_dirs.astype(np.float64))  # [2, 3]
    j0 = base + motion.expression @ per_expr + motion.eyelids @ per_lid  # [T, 3]
    r0 = axis_angle_to_matrix(torch.from_numpy(motion.head_rot)).numpy()
    R = Rc @ r0
    t = (Rc @ (j0 - np.einsum("tij,tj->ti", r0, j0) + motion.translation)[..., None])[..., 0] + tc
    return R, t, K


def _as_loaded(payloads: list[dict], names: list[Path], head: HeadModelData) -> tuple[Motion, Cameras]:
    """The motion and cameras that ``load_tracked_video`` reads from these checkpoints, by the
    same conversions, so the images are renders of exactly what a reader gets back."""
    params = [frame_params(p, n) for p, n in zip(payloads, names)]
    cams = [frame_camera(p, n) for p, n in zip(payloads, names)]
    f32 = lambda key: torch.from_numpy(np.stack([p[key] for p in params])).float()  # noqa: E731
    exp = pad_or_cut_width(np.stack([p["exp"] for p in params]), head.n_expression, "expression", names, "demo")
    zeros = torch.zeros(len(params), 3)
    motion = Motion(torch.from_numpy(exp).float(), zeros, zeros, f32("jaw"), f32("eyes"), f32("eyelids"), zeros,
                    fps=FPS, space=head.motion_space)
    cameras = stack_cameras(cams)
    return motion, cameras


def make_synthetic(out: str | Path, *, size: int = 512, frames: int = 660, test_frames: int = 60, seed: int = 0,
                   device: str = "cpu", supersample: int = 3, full_frame: bool = False, overwrite: bool = False,
                   progress: bool = True) -> Path:
    """Render the synthetic dataset into ``out`` (metrical-tracker layout plus ``being_dataset.json``).

    size: image width = height in pixels; frames: total frames, the last ``test_frames`` held out;
    device: "cpu", "cuda", "cuda:N" or "auto" (posing and rendering run there); supersample: S x S
    samples per pixel. full_frame: the head on a neck and shoulders that follow it, over a
    background, seen by one fixed camera, with person/head/torso masks, the plate and a scene
    (``synthetic_torso``; held-out frames in poses outside the training range). Everything is
    written to a hidden sibling directory that is renamed to ``out`` only when complete (an error
    or Ctrl-C leaves nothing under ``out``). A non-empty ``out`` is refused unless ``overwrite``.
    Returns ``out``. Deterministic for a seed.
    """
    out = Path(out).expanduser().resolve()
    if size < 16 or frames < 2 or not 1 <= test_frames < frames or supersample < 1:
        raise InputError(f"synthetic dataset: need size >= 16, frames >= 2, 1 <= test_frames < frames and "
                         f"supersample >= 1 (got {size}, {frames}, {test_frames}, {supersample})")
    dev = resolve_device(device) or default_device()
    head = build_demo_head()
    motion = synthetic_motion(frames, test_frames, seed, list(head.expression_names))
    scene = _FullFrameScene(head, motion, size, frames, test_frames, seed, dev, supersample) if full_frame else None
    cam = scene.camera if scene else portrait_camera(size)
    R, t, K = _camera_records(motion, head, cam)
    model = FlameModel(head).to(dev)
    faces = torch.from_numpy(head.faces).to(dev)
    shading = {k: torch.from_numpy(getattr(head, k)).to(dev) for k in ("uv_coords", "uv_faces", "texture")}

    with writing_dataset(out, overwrite) as tmp:
        for sub in (CHECKPOINT_DIR, IMAGE_DIR, MASK_DIR) + (scene.folders if scene else ()):
            (tmp / sub).mkdir(parents=True)
        with tqdm(total=frames, unit="frame", desc="make-dataset synthetic", disable=not progress) as bar:
            for a in range(0, frames, 8):
                ids = range(a, min(a + 8, frames))
                payloads = [make_frame(exp=motion.expression[k], shape=np.zeros(0), jaw=motion.jaw[k],
                                       eyes=motion.eyes[k], eyelids=motion.eyelids[k], R=R[k], t=t[k], K=K,
                                       width=size, height=size, frame_id=f"{k:05d}") for k in ids]
                names = [tmp / CHECKPOINT_DIR / f"{k:05d}.frame" for k in ids]
                batch, cameras = _as_loaded(payloads, names, head)
                with torch.no_grad():
                    vertices = model(batch.to(dev)).vertices
                if scene:
                    scene.write(tmp, list(ids), vertices, cameras.to(dev))
                else:
                    images = render_mesh(vertices, faces, cameras.to(dev), background=BACKGROUND,
                                         supersample=supersample, **shading)
                    for j, k in enumerate(ids):
                        write_png(tmp / IMAGE_DIR / f"{k:05d}.png", images.rgb[j])
                        write_png(tmp / MASK_DIR / f"{k:05d}.png", images.alpha[j])
                for j in range(len(ids)):
                    torch.save(payloads[j], names[j])
                bar.update(len(ids))
        generator = {"name": "being make-dataset synthetic", "being_version": __version__, "seed": seed,
                     "size": size, "frames": frames, "supersample": supersample, "background": list(BACKGROUND),
                     "active_threshold": ACTIVE, "expression_groups": [list(g) for g in EXPRESSION_GROUPS]}
        sidecar = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "head_model": "demo", "fps": FPS,
                   "test_frames": test_frames, "layout": "metrical", "generator": generator}
        if scene:
            sidecar["full_frame"] = True
            generator.update(scene.description())
            scene.finish(tmp)
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return out


class _FullFrameScene:
    """The torso, background and fixed camera of the full-frame set, and the writing of its frames."""

    def __init__(self, head: HeadModelData, motion: SyntheticMotion, size: int, frames: int, test_frames: int,
                 seed: int, device: torch.device, supersample: int) -> None:
        from . import synthetic_torso as st
        from .full_frame import HEAD_DIR, PERSON_DIR, TORSO_DIR

        self.st, self.head, self.size, self.device, self.supersample = st, head, size, device, supersample
        self.folders = (PERSON_DIR, HEAD_DIR, TORSO_DIR)
        rng = np.random.default_rng(seed + 31)
        yaw, pitch, roll = st.full_frame_pose(frames, test_frames, rng, _smooth)
        motion.head_rot = _rotation(yaw, pitch, roll)
        motion.translation = st.TRANSLATION_M * np.stack([_smooth(rng, frames, 0.03, 0.2) for _ in range(3)], -1)
        self.breath = np.sin(2 * math.pi * np.arange(frames) / FPS / st.BREATH_PERIOD_S + rng.uniform(0, 2 * math.pi))
        self.camera = st.full_frame_camera(size)
        self.torso = st.build_torso(head, seed)
        self.plate = st.background_plate(size, seed)
        # one mesh: the head then the torso, their textures side by side in one atlas
        v_head = len(head.v_template)
        tex_h = head.texture.shape[0]
        shirt = torch.nn.functional.interpolate(torch.from_numpy(self.torso.texture).permute(2, 0, 1)[None],
                                                size=(tex_h, tex_h), mode="bilinear", align_corners=False)[0]
        w_head = head.texture.shape[1]
        share = w_head / (w_head + tex_h)
        uv = np.concatenate([head.uv_coords * [share, 1.0], self.torso.uv * [1.0 - share, 1.0] + [share, 0.0]])
        to = lambda x: torch.as_tensor(np.ascontiguousarray(x)).to(device)  # noqa: E731
        self.faces = to(np.concatenate([head.faces, self.torso.faces + v_head]))
        self.shading = {"uv_coords": to(uv.astype(np.float32)),
                        "uv_faces": to(np.concatenate([head.uv_faces, self.torso.faces + len(head.uv_coords)])),
                        "texture": torch.cat([to(head.texture), shirt.permute(1, 2, 0).to(device)], dim=1)}
        ids = np.concatenate([np.tile([1.0, 0.0, 0.0], (v_head, 1)), np.tile([0.0, 1.0, 0.0], (len(self.torso.vertices), 1))])
        self.part_colours = to(ids.astype(np.float32))
        self.v_head = v_head

    def _world(self, vertices: torch.Tensor, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's rigid map per frame (A [B, 3, 3], b [B, 3]): model space (global rotation in the
        camera, as stored) -> the fixed camera's world, X = Rc^T (R_i x + t_i - tc)."""
        Rc, tc = self.camera.R[0].to(vertices), self.camera.t[0].to(vertices)
        A = Rc.T @ cameras.R.to(vertices)
        b = ((cameras.t.to(vertices) - tc) @ Rc)
        return A, b

    def write(self, tmp: Path, ids: list[int], vertices: torch.Tensor, cameras: Cameras) -> None:
        from .full_frame import HEAD_DIR, PERSON_DIR, TORSO_DIR

        A, b = self._world(vertices, cameras)
        head = torch.einsum("bij,bvj->bvi", A, vertices) + b[:, None]
        breath = torch.from_numpy(self.breath[ids]).to(vertices)
        mesh = torch.cat([head, self.st.pose_torso(self.torso, A, b, breath)], dim=1)
        cam = self.camera.to(self.device)
        img = render_mesh(mesh, self.faces, cam, background=(0.0, 0.0, 0.0), supersample=self.supersample, **self.shading)
        parts = render_mesh(mesh, self.faces, cam, vertex_colors=self.part_colours, background=(0.0, 0.0, 0.0),
                            supersample=self.supersample)
        plate = torch.from_numpy(self.plate).to(img.rgb)
        frames = img.rgb + (1.0 - img.alpha) * plate  # the render is premultiplied over black
        for j, k in enumerate(ids):
            name = f"{k:05d}.png"
            write_png(tmp / IMAGE_DIR / name, frames[j])
            write_png(tmp / MASK_DIR / name, img.alpha[j])
            write_png(tmp / PERSON_DIR / name, img.alpha[j])
            write_png(tmp / HEAD_DIR / name, parts.rgb[j, ..., :1])
            write_png(tmp / TORSO_DIR / name, parts.rgb[j, ..., 1:2])

    def finish(self, tmp: Path) -> None:
        """The plate, and a scene for the ``static`` compositor: the torso at rest, still, no breath."""
        from .full_frame import BACKGROUND_FILE
        from .scene import SCENE_DIR, write_scene

        u8 = lambda x: (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)  # noqa: E731
        write_png(tmp / BACKGROUND_FILE, torch.from_numpy(self.plate))
        eye = torch.eye(3, dtype=torch.float32, device=self.device)[None]
        zero = torch.zeros(1, 3, device=self.device)
        torso = self.st.pose_torso(self.torso, eye, zero, torch.zeros(1, device=self.device))
        faces = self.faces[len(self.head.faces):] - self.v_head
        shade = {"uv_coords": self.shading["uv_coords"][len(self.head.uv_coords):],
                 "uv_faces": self.shading["uv_faces"][len(self.head.faces):] - len(self.head.uv_coords),
                 "texture": self.shading["texture"]}
        cam = self.camera.to(self.device)
        img = render_mesh(torso, faces, cam, background=(0.0, 0.0, 0.0), supersample=self.supersample, **shade)
        alpha = img.alpha[0].cpu().numpy()
        straight = img.rgb[0].cpu().numpy() / np.maximum(alpha, 1e-6)
        root = torch.from_numpy(self.head.j_regressor[0] @ self.head.v_template).float()
        pix, depth = self.camera.project(root[None, None])
        write_scene(tmp / SCENE_DIR, u8(self.plate), u8(np.concatenate([straight, alpha], -1)),
                    (float(pix[0, 0, 0]), float(pix[0, 0, 1])), float(self.camera.K[0, 0, 0] / depth[0, 0]),
                    source="being make-dataset synthetic --full-frame")

    def description(self) -> dict:
        st = self.st
        return {"full_frame": {"camera_eye": list(st.CAMERA_EYE), "fov_y_deg": st.CAMERA_FOV,
                               "train_pose_deg": list(st.TRAIN_POSE_DEG), "test_pose_deg": list(st.TEST_POSE_DEG),
                               "translation_m": st.TRANSLATION_M, "breath_period_s": st.BREATH_PERIOD_S,
                               "breath_m": st.BREATH_M}}

"""Tracked-video datasets: fixtures written here in each format (metrical-tracker, INSTA, IMavatar)
from one canonical sequence, following each format's own conventions as docs/datasets.md
describes them (independently of the readers), must load to the same projected mesh; malformed
and unsafe files are refused with an InputError naming the file."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from being_kernel.datasets import load_tracked_video
from being_kernel.errors import InputError
from being_kernel.head.demo_head import build_demo_head
from being_kernel.head.flame import FlameModel
from being_kernel.head.loaders import save_head_model
from being_kernel.media import write_png
from being_kernel.types import DEMO_HEAD, Motion

W, H = 96, 80  # not square, so width and height cannot be swapped unnoticed
T = 3
FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV <-> OpenGL camera axes


def rot6d(rotvec: np.ndarray) -> np.ndarray:
    """PyTorch3D's 6D rotation (first two rows of the matrix) of an axis-angle vector."""
    return Rotation.from_rotvec(rotvec).as_matrix()[:2].reshape(6)


class Canonical:
    """T frames of demo-head motion (non-trivial expression, eyelids, jaw, eyes, global rotation and
    translation; neck zero, which only IMavatar could store) and OpenCV cameras, W x H."""

    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.head = build_demo_head()
        m = Motion.zeros(T, self.head.n_expression, space=DEMO_HEAD, dtype=torch.float64)
        m.expression[:, :17] = torch.from_numpy(rng.uniform(0, 0.6, (T, 17)))
        m.expression[:, 19:] = torch.from_numpy(rng.uniform(0, 0.6, (T, 6)))
        m.eyelids[:] = torch.tensor([[0.0, 0.0], [0.4, 0.7], [1.0, 0.9]])
        m.jaw[:] = torch.tensor([[0.05, 0.01, 0.0], [0.2, -0.02, 0.01], [0.3, 0.0, -0.01]])
        m.eyes[:] = torch.from_numpy(rng.uniform(-0.2, 0.2, (T, 6)))
        m.global_rot[:] = torch.tensor([[0.0, 0.3, 0.0], [0.15, -0.4, 0.1], [-0.2, 0.1, -0.15]])
        m.translation[:] = torch.tensor([[0.0, 0.0, 0.0], [0.01, -0.02, 0.005], [-0.015, 0.01, -0.01]])
        self.motion = m
        self.model = FlameModel(self.head).double()
        with torch.no_grad():
            self.vertices = self.model(m).vertices.numpy()  # [T, V, 3]
            unposed = Motion(**{**m.tensors(), "global_rot": torch.zeros(T, 3), "translation": torch.zeros(T, 3)},
                             space=DEMO_HEAD)
            self.root = self.model(unposed).joints[:, 0].numpy()  # rest root joint J0 per frame
        # cameras in front of the face (world y up, face toward +z), each a little turned
        self.R = np.stack([FLIP @ Rotation.from_rotvec([0.05 * i, 0.1, 0.03]).as_matrix() for i in range(T)])
        self.t = np.array([[0.01 * i, 0.02, 0.7] for i in range(T)])
        self.K = np.array([[110.0, 0.0, 47.3], [0.0, 104.0, 41.1], [0.0, 0.0, 1.0]])
        self.images = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
        self.masks = rng.integers(0, 256, (T, H, W, 1), dtype=np.uint8)

    def camera_space(self) -> np.ndarray:
        return np.einsum("tij,tvj->tvi", self.R, self.vertices) + self.t[:, None]

    def head_pose_in_camera(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The camera that sees the mesh posed without global rotation and translation as the
        canonical camera sees the posed mesh: FLAME's global rotation R0 about the root J0 and its
        translation tr move every vertex rigidly, x -> R0 (x - J0) + J0 + tr."""
        r0 = Rotation.from_rotvec(self.motion.global_rot[i].numpy()).as_matrix()
        j0, tr = self.root[i], self.motion.translation[i].numpy()
        return self.R[i] @ r0, self.R[i] @ (j0 - r0 @ j0 + tr) + self.t[i]

    def exp(self, i: int, width: int, blink_in_expression: bool = False) -> np.ndarray:
        e = self.motion.expression[i].numpy().copy()
        if blink_in_expression:  # the demo head's eyelid blendshapes are its blink expression bases
            e[17:19] += self.motion.eyelids[i].numpy()
        return np.pad(e, (0, width - len(e)))


@pytest.fixture(scope="module")
def canon() -> Canonical:
    return Canonical()


def write_metrical(root: Path, c: Canonical) -> Path:
    """metrical-tracker output: checkpoint/NNNNN.frame (torch.save of numpy float32 batch-1 arrays),
    input/NNNNN.png, and masks in alpha/NNNNN.png."""
    for sub in ("checkpoint", "input", "alpha"):
        (root / sub).mkdir(parents=True)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    for i in range(T):
        R, t = c.head_pose_in_camera(i)
        eyes = c.motion.eyes[i].numpy()
        frame = {
            "flame": {"exp": f32(c.exp(i, 100))[None], "shape": np.zeros((1, 300), np.float32),
                      "tex": np.zeros((1, 140), np.float32), "sh": np.zeros((1, 9, 3), np.float32),
                      "eyes": f32(np.r_[rot6d(eyes[:3]), rot6d(eyes[3:])])[None],
                      "eyelids": f32(c.motion.eyelids[i].numpy())[None],
                      "jaw": f32(rot6d(c.motion.jaw[i].numpy()))[None]},
            "camera": {"R": np.zeros((1, 6), np.float32), "t": np.zeros((1, 3), np.float32),
                       "fl": np.ones((1, 1), np.float32), "pp": np.zeros((1, 2), np.float32)},
            "opencv": {"R": f32(R)[None], "t": f32(t)[None], "K": f32(c.K)[None]},
            "img_size": np.array([H, W]), "frame_id": f"{i:05d}", "global_step": 7,
        }
        torch.save(frame, root / "checkpoint" / f"{i:05d}.frame")
        write_png(root / "input" / f"{i:05d}.png", c.images[i])
        write_png(root / "alpha" / f"{i:05d}.png", c.masks[i])
    return root


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A mesh as INSTA's scripts/simplification.py leaves it (Open3D's OBJ writer): comment lines,
    ``v`` lines with C++ stream precision (6 significant digits, like %g), then 1-based faces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"# Created by Open3D \n# object name: {path.stem}\n# number of vertices: {len(vertices)}\n"
    v = "\n".join("v " + " ".join(f"{x:g}" for x in row) for row in vertices)
    f = "\n".join("f " + " ".join(str(int(i) + 1) for i in row) for row in faces)
    path.write_text(head + v + "\n" + f + "\n")


def tracker_meshes(c: Canonical, model: FlameModel | None = None, shape: torch.Tensor | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """What metrical-tracker writes as mesh/NNNNN.ply (INSTA's meshes/NNNNN.obj) and canonical.obj:
    FLAME without global rotation, neck and translation (the head pose is in the camera), [T, V, 3];
    and the shape alone with the jaw opened 12 degrees about x, [V, 3]."""
    model = model or c.model
    m = c.motion
    still = Motion(**{**m.tensors(), "global_rot": torch.zeros(T, 3), "translation": torch.zeros(T, 3)}, space=m.space)
    canonical = Motion.zeros(1, 0, space=m.space, dtype=torch.float64)
    canonical.jaw[0, 0] = np.deg2rad(12.0)
    with torch.no_grad():
        return model(still, shape).vertices.numpy(), model(canonical, shape).vertices[0].numpy()


def write_insta(root: Path, c: Canonical, test: int = 1, explicit: bool = False, model: FlameModel | None = None,
                shape: torch.Tensor | None = None) -> Path:
    """INSTA as scripts/generate.sh releases it: transforms*.json (camera-to-world with OpenCV axes,
    intrinsics in pixels), images/NNNNN.png as RGBA with the matte in alpha, flame/exp/NNNNN.txt,
    meshes/NNNNN.obj and canonical.obj (of ``model``, default the demo head, with ``shape``), and no
    other FLAME values; with ``explicit`` also flame/{jaw,eyes,eyelids}/NNNNN.txt (6D rotations)."""
    (root / "images").mkdir(parents=True)
    (root / "flame/exp").mkdir(parents=True)
    meshes, canonical = tracker_meshes(c, model, shape)
    faces = (model or c.model).faces.numpy()
    write_obj(root / "canonical.obj", canonical, faces)
    frames = []
    for i in range(T):
        R, t = c.head_pose_in_camera(i)
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = R, t
        stem = f"{i:05d}"
        frames.append({"transform_matrix": np.linalg.inv(w2c).tolist(), "file_path": f"images/{stem}.png",
                       "mesh_path": f"meshes/{stem}.obj", "exp_path": f"flame/exp/{stem}.txt",
                       "depth_path": f"depth/{stem}.png", "seg_mask_path": f"seg_mask/{stem}.png"})
        np.savetxt(root / f"flame/exp/{stem}.txt", c.exp(i, 100), fmt="%.8f")
        write_obj(root / f"meshes/{stem}.obj", meshes[i], faces)
        write_png(root / f"images/{stem}.png", np.concatenate([c.images[i], c.masks[i]], axis=2))
        if explicit:
            eyes = c.motion.eyes[i].numpy()
            for name, values in (("jaw", rot6d(c.motion.jaw[i].numpy())),
                                 ("eyes", np.r_[rot6d(eyes[:3]), rot6d(eyes[3:])]),
                                 ("eyelids", c.motion.eyelids[i].numpy())):
                (root / f"flame/{name}").mkdir(parents=True, exist_ok=True)
                np.savetxt(root / f"flame/{name}/{stem}.txt", values, fmt="%.8f")
    intr = {"w": float(W), "h": float(H), "fl_x": c.K[0, 0], "fl_y": c.K[1, 1], "cx": c.K[0, 2], "cy": c.K[1, 2],
            "integer_depth_scale": 0.001}
    for name, part in (("transforms", frames), ("transforms_train", frames[:-test]),
                       ("transforms_test", frames[-test:]), ("transforms_val", frames[-20:])):
        (root / f"{name}.json").write_text(json.dumps({**intr, "frames": part}, indent=4))
    return root


def write_imavatar(root: Path, c: Canonical) -> Path:
    """IMavatar: flame_params.json (world_mat world-to-camera with OpenGL axes in the x4 FLAME
    world, expression [50], pose [15], intrinsics / image size with fx negative and pixel centres at
    integers), image/N.png and mask/N.png from N = 1. It has no eyelids and no FLAME translation:
    the blink goes into the demo head's blink bases and the translation into the camera."""
    for sub in ("image", "mask"):
        (root / sub).mkdir(parents=True)
    frames = []
    for i in range(T):
        m = c.motion
        world_mat = FLIP @ np.c_[c.R[i], 4.0 * (c.R[i] @ m.translation[i].numpy() + c.t[i])]
        pose = np.r_[m.global_rot[i].numpy(), m.neck[i].numpy(), m.jaw[i].numpy(), m.eyes[i].numpy()]
        frames.append({"file_path": f"./image/{i + 1}", "world_mat": world_mat.tolist(),
                       "expression": c.exp(i, 50, blink_in_expression=True).tolist(), "pose": pose.tolist(),
                       "bbox": [-0.5, -0.5, 0.5, 0.5], "flame_keypoints": [[0.0, 0.0]] * 68})
        write_png(root / "image" / f"{i + 1}.png", c.images[i])
        write_png(root / "mask" / f"{i + 1}.png", np.repeat(c.masks[i], 3, axis=2))
    fx, fy, cx, cy = c.K[0, 0], c.K[1, 1], c.K[0, 2], c.K[1, 2]
    params = {"frames": frames, "shape_params": [0.0] * 100,
              "intrinsics": [-fx / W, fy / H, (cx - 0.5) / W, (cy - 0.5) / H]}
    (root / "flame_params.json").write_text(json.dumps(params))
    return root


WRITERS = {"metrical": write_metrical, "insta": write_insta, "imavatar": write_imavatar}


def posed_camera_space(video) -> np.ndarray:
    model = FlameModel(video.head()).double()
    with torch.no_grad():
        v = model(video.motion, video.shape).vertices.numpy()
    R, t = video.cameras.R.double().numpy(), video.cameras.t.double().numpy()
    return np.einsum("tij,tvj->tvi", R, v) + t[:, None]


def pixels(cam_space: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = cam_space @ K.T
    return uvw[..., :2] / uvw[..., 2:]


def test_demo_eyelids_are_the_blink_bases() -> None:
    head = build_demo_head()  # what the IMavatar fixture relies on
    assert np.array_equal(head.eyelid_dirs, head.exprdirs[:, :, 17:19])


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_each_format_gives_the_canonical_projected_mesh(tmp_path: Path, canon: Canonical, fmt: str) -> None:
    root = WRITERS[fmt](tmp_path / fmt, canon)
    video = load_tracked_video(root, head_model="demo")
    assert video.format == fmt and len(video) == T and video.head_model == "demo"
    assert (video.cameras.width, video.cameras.height) == (W, H)
    assert video.motion.space == DEMO_HEAD and video.motion.n_expression == 25 and video.shape.shape == (0,)
    cam = posed_camera_space(video)
    want = canon.camera_space()
    assert np.abs(cam - want).max() < 1e-5  # metres
    for i in range(T):
        assert np.abs(pixels(cam[i], video.cameras.K[i].double().numpy()) - pixels(want[i], canon.K)).max() < 1e-4
    # the same images and masks
    for i in range(T):
        assert torch.equal(video.load_image(i), torch.from_numpy(canon.images[i] / np.float32(255)))
        assert video.load_image(i).dtype == torch.float32 and video.load_mask(i).shape == (H, W, 1)
        assert torch.allclose(video.load_mask(i), torch.from_numpy(canon.masks[i] / np.float32(255)))


def test_formats_agree_with_each_other(tmp_path: Path, canon: Canonical) -> None:
    spaces = {f: posed_camera_space(load_tracked_video(w(tmp_path / f, canon), head_model="demo"))
              for f, w in WRITERS.items()}
    assert np.abs(spaces["metrical"] - spaces["insta"]).max() < 1e-5
    assert np.abs(spaces["metrical"] - spaces["imavatar"]).max() < 1e-5


def test_metrical_loads_from_the_checkpoint_dir_and_a_frame_file(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    for p in (root / "checkpoint", root / "checkpoint" / "00001.frame"):
        v = load_tracked_video(p, head_model="demo")
        assert v.root == root and v.format == "metrical"


def test_defaults_sidecar_and_split(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    v = load_tracked_video(root, head_model="demo")
    assert v.fps == 25.0 and v.test_frames == 1 and v.split() == ([0, 1], [2])
    assert load_tracked_video(root, head_model="demo", test_frames=2).split() == ([0], [1, 2])
    (root / "being_dataset.json").write_text(json.dumps(
        {"format": "being-dataset", "format_version": 1, "head_model": "demo", "fps": 30, "test_frames": 2}))
    v = load_tracked_video(root)
    assert (v.head_model, v.fps, v.motion.fps, v.test_frames) == ("demo", 30.0, 30.0, 2)
    insta = load_tracked_video(write_insta(tmp_path / "i", canon, test=2), head_model="demo")
    assert insta.test_frames == 2  # INSTA's own split
    (insta.root / "transforms.json").unlink()  # the frames are then train + test
    again = load_tracked_video(insta.root, head_model="demo")
    assert again.test_frames == 2 and torch.equal(again.cameras.t, insta.cameras.t)
    with pytest.raises(InputError, match="test_frames 4 outside 0..3"):
        load_tracked_video(root, test_frames=4)


def test_head_model_defaults_to_flame2020(tmp_path: Path, canon: Canonical) -> None:
    v = load_tracked_video(write_metrical(tmp_path / "m", canon))
    assert v.head_model == "flame2020" and v.motion.space == "flame2020" and v.motion.n_expression == 100
    assert v.shape.shape == (300,)


def test_expression_beyond_the_head_model_is_refused(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    path = root / "checkpoint" / "00001.frame"
    frame = torch.load(path, weights_only=False)
    frame["flame"]["exp"][0, 40] = 0.5
    torch.save(frame, path)
    with pytest.raises(InputError, match=r"00001\.frame: expression has nonzero coefficients beyond the 25"):
        load_tracked_video(root, head_model="demo")


def test_detection_errors(tmp_path: Path, canon: Canonical) -> None:
    with pytest.raises(InputError, match="not a tracked video"):
        load_tracked_video(tmp_path)
    with pytest.raises(InputError, match="no such dataset directory"):
        load_tracked_video(tmp_path / "nope")
    root = write_metrical(tmp_path / "m", canon)
    (root / "flame_params.json").write_text("{}")
    with pytest.raises(InputError, match="several formats"):
        load_tracked_video(root)
    with pytest.raises(InputError, match="unknown dataset format"):
        load_tracked_video(root, format="nerf")


# malformed ------------------------------------------------------------------------------------

def _edit_frame(path: Path, edit) -> None:
    frame = torch.load(path, weights_only=False)
    edit(frame)
    torch.save(frame, path)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f["flame"].pop("jaw"), "missing key 'flame.jaw'"),
    (lambda f: f.pop("opencv"), "missing key 'opencv'"),
    (lambda f: f["flame"].__setitem__("eyes", np.zeros((1, 9), np.float32)), r"'flame.eyes' must be \[1, 12\]"),
    (lambda f: f["opencv"].__setitem__("K", np.zeros((1, 2, 3), np.float32)), "opencv K: expected shape"),
    (lambda f: f.__setitem__("img_size", np.array([H, W + 2])),
     r"img_size 98x80 differs from 00000.frame's 96x80 \(frames of different image sizes"),
    (lambda f: f["flame"].__setitem__("exp", np.full((1, 100), np.nan, np.float32)), "'flame.exp' is not finite"),
    (lambda f: f["flame"].__setitem__("jaw", np.zeros((1, 6), np.float32)), "'flame.jaw' or 'flame.eyes' is not a 6D"),
])
def test_malformed_metrical_frame_names_the_file(tmp_path: Path, canon: Canonical, edit, message: str) -> None:
    root = write_metrical(tmp_path / "m", canon)
    _edit_frame(root / "checkpoint" / "00002.frame", edit)
    with pytest.raises(InputError, match=message) as err:
        load_tracked_video(root, head_model="demo")
    assert str(root / "checkpoint" / "00002.frame") in str(err.value)


def test_missing_files_are_named(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    (root / "input" / "00001.png").unlink()
    with pytest.raises(InputError, match="00001.png: image missing"):
        load_tracked_video(root, head_model="demo")
    (root / "alpha" / "00000.png").unlink()
    write_png(root / "input" / "00001.png", canon.images[1])
    with pytest.raises(InputError, match="alpha/00000.png: mask missing"):
        load_tracked_video(root, head_model="demo")
    for p in (root / "checkpoint").iterdir():
        p.unlink()
    with pytest.raises(InputError, match="no .frame files"):
        load_tracked_video(root, format="metrical")
    (root / "checkpoint").rmdir()
    with pytest.raises(InputError, match="no checkpoint/ directory"):
        load_tracked_video(root, format="metrical")


def test_image_of_another_size_is_named_when_loaded(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    write_png(root / "input" / "00002.png", np.zeros((H, W + 1, 3), np.uint8))
    video = load_tracked_video(root, head_model="demo")
    message = r"00002.png: image is 97x80, but the dataset's frames are 96x80 \(frames of different image sizes"
    with pytest.raises(InputError, match=message):
        video.load_image(2)


def test_malformed_insta(tmp_path: Path, canon: Canonical) -> None:
    root = write_insta(tmp_path / "i", canon)
    (root / "transforms.json").write_text('{"frames": [')
    with pytest.raises(InputError, match="transforms.json: not readable JSON"):
        load_tracked_video(root, head_model="demo")
    root = write_insta(tmp_path / "i2", canon)
    (root / "flame/exp/00001.txt").write_text("0.1\nnot-a-number\n")
    with pytest.raises(InputError, match="00001.txt: not a list of numbers"):
        load_tracked_video(root, head_model="demo")
    (root / "flame/exp/00001.txt").write_text("0.1\n")
    with pytest.raises(InputError, match="flame/exp files differ in length"):
        load_tracked_video(root, head_model="demo")
    root = write_insta(tmp_path / "i3", canon, explicit=True)
    (root / "flame/jaw/00002.txt").unlink()  # explicit poses must be complete
    with pytest.raises(InputError, match="jaw/00002.txt: missing") as err:
        load_tracked_video(root, head_model="demo")
    assert "recover the poses from meshes" in err.value.hint
    root = write_insta(tmp_path / "i4", canon, explicit=True)
    with pytest.raises(InputError, match=r"shape/00000.txt: missing \(the identity"):
        load_tracked_video(root, head_model="flame2020")
    (root / "meshes/00002.obj").unlink()
    shutil.rmtree(root / "flame/jaw")
    shutil.rmtree(root / "flame/eyes")
    with pytest.raises(InputError, match="meshes/00002.obj: mesh missing"):
        load_tracked_video(root, head_model="demo")
    write_obj(root / "meshes/00002.obj", tracker_meshes(canon)[0][2][:-1], np.zeros((0, 3)))
    with pytest.raises(InputError, match="00002.obj: mesh has 11558 vertices, head model 'demo' has 11559"):
        load_tracked_video(root, head_model="demo")


# INSTA: poses and shape recovered from the meshes ---------------------------------------------

def test_insta_poses_are_recovered_from_the_meshes(tmp_path: Path, canon: Canonical) -> None:
    root = write_insta(tmp_path / "i", canon)
    assert not (root / "flame/jaw").exists() and not (root / "flame/shape").exists()
    listing = sorted(p.relative_to(root) for p in root.rglob("*"))
    m = load_tracked_video(root, head_model="demo").motion
    # the meshes hold 6 significant digits (up to 5e-7 m rounding): measured errors are 7e-7 rad for
    # the rotations and 2e-6 for the eyelid weights (a blendshape of a few millimetres); ~10x margins
    for got, want, tol in ((m.jaw, canon.motion.jaw, 1e-5), (m.eyes, canon.motion.eyes, 1e-5),
                           (m.eyelids, canon.motion.eyelids, 3e-5)):
        assert (got.double() - want).abs().max() < tol
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == listing  # nothing written into the dataset


def test_insta_explicit_pose_files_win(tmp_path: Path, canon: Canonical) -> None:
    root = write_insta(tmp_path / "i", canon, explicit=True)
    np.savetxt(root / "flame/jaw/00001.txt", rot6d(np.zeros(3)))  # disagrees with meshes/00001.obj
    m = load_tracked_video(root, head_model="demo").motion
    assert m.jaw[1].abs().max() < 1e-7
    assert (m.jaw[2].double() - canon.motion.jaw[2]).abs().max() < 1e-6  # the 8-decimal 6D values


@pytest.mark.parametrize("edit", ["perturbed", "head pose"])
def test_insta_mesh_the_head_model_cannot_pose_is_refused(tmp_path: Path, canon: Canonical, edit: str) -> None:
    root = write_insta(tmp_path / "i", canon)
    vertices = tracker_meshes(canon)[0][1]
    if edit == "perturbed":  # not a mesh of this head model: 1 mm moves of a few vertices
        rng = np.random.default_rng(0)
        vertices[rng.choice(len(vertices), 40, replace=False)] += rng.choice([-1e-3, 1e-3], (40, 3))
    else:  # the head pose baked in (not how the tracker writes meshes)
        vertices = canon.vertices[1]
    write_obj(root / "meshes/00001.obj", vertices, canon.model.faces.numpy())
    with pytest.raises(InputError, match=r"meshes/00001.obj: head model 'demo' does not reproduce this mesh: "
                                         r"max vertex error (\S+) m after solving for the jaw, eye and eyelid") as err:
        load_tracked_video(root, head_model="demo")
    residual = float(str(err.value).split("max vertex error ")[1].split(" m")[0])
    assert residual > 1e-4 and "tolerance 0.0001 m" in str(err.value)


def test_insta_shape_is_recovered_from_canonical_obj(tmp_path: Path, canon: Canonical) -> None:
    """A head model with identity components and pose correctives (as FLAME has)."""
    rng = np.random.default_rng(5)
    v = canon.head.num_vertices
    head = dataclasses.replace(canon.head, shapedirs=rng.normal(0, 3e-3, (v, 3, 4)).astype(np.float32),
                               posedirs=rng.normal(0, 1e-3, (v, 3, 36)).astype(np.float32))
    ref = str(save_head_model(head, tmp_path / "head"))
    model = FlameModel(head).double()
    beta = torch.tensor([1.0, -0.5, 2.0, 0.3], dtype=torch.float64)
    root = write_insta(tmp_path / "i", canon, model=model, shape=beta)
    video = load_tracked_video(root, head_model=ref)
    assert (video.shape.double() - beta).abs().max() < 1e-5
    with torch.no_grad():
        posed = model(video.motion, video.shape).vertices.numpy()
    assert np.abs(posed - tracker_meshes(canon, model, beta)[0]).max() < 1e-5
    (root / "canonical.obj").unlink()
    with pytest.raises(InputError, match=r"canonical.obj: missing \(needed to recover the identity"):
        load_tracked_video(root, head_model=ref)
    (root / "flame/shape").mkdir()
    np.savetxt(root / "flame/shape/00000.txt", beta.numpy(), fmt="%.8f")  # an explicit shape wins
    assert torch.equal(load_tracked_video(root, head_model=ref).shape, beta.float())


def test_malformed_imavatar(tmp_path: Path, canon: Canonical) -> None:
    root = write_imavatar(tmp_path / "a", canon)
    path = root / "flame_params.json"
    good = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(InputError, match="flame_params.json: not readable JSON"):
        load_tracked_video(root, head_model="demo")
    bad = json.loads(json.dumps(good))
    del bad["frames"][1]["pose"]
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"flame_params.json: frames\[1\] missing key 'pose'"):
        load_tracked_video(root, head_model="demo")
    bad = json.loads(json.dumps(good))
    bad["frames"][2]["pose"] = [0.0] * 12
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"frames\[2\] 'pose' must be 15 finite numbers, got 12"):
        load_tracked_video(root, head_model="demo")
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "intrinsics"}))
    with pytest.raises(InputError, match="flame_params.json: missing key 'intrinsics'"):
        load_tracked_video(root, head_model="demo")
    path.write_text(json.dumps(good))
    (root / "image" / "2.png").unlink()
    with pytest.raises(InputError, match="image/2.png: image missing"):
        load_tracked_video(root, head_model="demo")


# safety ---------------------------------------------------------------------------------------

class Payload:
    """Unpickling this would run a shell command that leaves a marker file."""

    marker: Path

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Plain:
    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize("evil", ["reduce", "instance"])
def test_unsafe_checkpoint_is_refused_not_run(tmp_path: Path, canon: Canonical, evil: str) -> None:
    root = write_metrical(tmp_path / "m", canon)
    marker = tmp_path / "pwned"
    Payload.marker = marker
    obj = Payload() if evil == "reduce" else Plain()
    _edit_frame(root / "checkpoint" / "00001.frame", lambda f: f.__setitem__("extra", obj))
    with pytest.raises(InputError, match=r"(?i)00001.frame: not a readable metrical-tracker checkpoint \(.*global"):
        load_tracked_video(root, head_model="demo")
    assert not marker.exists()


def test_numpy_object_arrays_are_refused(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    _edit_frame(root / "checkpoint" / "00000.frame",
                lambda f: f.__setitem__("extra", np.array([Plain()], dtype=object)))
    with pytest.raises(InputError, match=r"00000.frame: not a readable .*ObjectDType"):
        load_tracked_video(root, head_model="demo")


# --------------------------------------------------------------------------------------------
# The reader registry: the example reader of docs/datasets.md, registered and through an entry point

DOCS = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"


def example_reader():  # noqa: ANN201 - the DatasetReader the docs define
    """The complete reader of docs/datasets.md, run from the docs' own text."""
    text = DOCS.read_text()
    block = text[text.index("## Reading other formats"):].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {"__name__": "being_npz"}
    exec(compile(block, f"{DOCS}:being_npz", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["READER"]


def write_npz(root: Path, c: Canonical) -> Path:
    """The docs' example format: the canonical FLAME pose (global rotation and translation in the
    motion) and cameras in tracking.npz, the images in images/NNNNN.png."""
    (root / "images").mkdir(parents=True)
    m = c.motion
    pose = np.concatenate([m.global_rot, m.neck, m.jaw, m.eyes], axis=1)
    np.savez(root / "tracking.npz", expression=m.expression.numpy(), pose=pose, translation=m.translation.numpy(),
             eyelids=m.eyelids.numpy(), R=c.R, t=c.t, K=np.repeat(c.K[None], T, 0), size=np.array([W, H]))
    for i in range(T):
        write_png(root / "images" / f"{i:05d}.png", c.images[i])
    return root


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - the module, with a private copy of its table
    """The registry with the built-ins only and no installed entry points, restored afterwards."""
    from being_kernel.datasets import registry as reg

    monkeypatch.setattr(reg, "_readers", {r.name: r for r in reg._BUILTIN})
    monkeypatch.setattr(reg, "_entry_points_loaded", True)
    return reg


def test_builtin_readers_are_registered(registry) -> None:
    assert list(registry.readers()) == ["metrical", "insta", "imavatar"]
    assert all(r.description and "\n" not in r.description for r in registry.readers().values())


def test_a_registered_reader_is_detected_and_read(tmp_path: Path, canon: Canonical, registry) -> None:
    root = write_npz(tmp_path / "take", canon)
    with pytest.raises(InputError, match="not a tracked video") as err:
        load_tracked_video(root, head_model="demo")
    assert "metrical:" in str(err.value) and "npz" not in str(err.value)
    with pytest.raises(InputError, match="unknown dataset format 'npz'") as err:
        load_tracked_video(root, format="npz", head_model="demo")
    assert err.value.hint == "use auto or one of: metrical, insta, imavatar"

    reader = example_reader()
    registry.register_reader(reader)
    registry.register_reader(reader)  # the same reader again: nothing changes
    assert list(registry.readers()) == ["metrical", "insta", "imavatar", "npz"]
    for given in (root, root / "tracking.npz"):
        video = load_tracked_video(given, head_model="demo")
        assert video.format == "npz" and video.root == root and len(video) == T
    assert np.abs(posed_camera_space(video) - canon.camera_space()).max() < 1e-5  # metres
    assert torch.equal(video.load_image(2), torch.from_numpy(canon.images[2] / np.float32(255)))
    assert load_tracked_video(root, format="npz", head_model="demo").format == "npz"
    with pytest.raises(InputError, match="unknown dataset format") as err:
        load_tracked_video(root, format="nerf")
    assert err.value.hint == "use auto or one of: metrical, insta, imavatar, npz"

    (root / "flame_params.json").write_text("{}")  # now IMavatar recognises it too
    with pytest.raises(InputError, match=r"looks like several formats \(imavatar, npz\)"):
        load_tracked_video(root)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_reader(registry.DatasetReader("npz", "another", reader.detect, reader.read))
    with pytest.raises(TypeError):
        registry.register_reader(reader.read)


def test_reader_names_and_descriptions_are_checked(registry) -> None:
    reader = example_reader()
    for name in ("auto", "two words", ""):
        with pytest.raises(ValueError, match="a word other than 'auto'"):
            registry.DatasetReader(name, "x", reader.detect, reader.read)
    with pytest.raises(ValueError, match="one non-empty line"):
        registry.DatasetReader("npz", "two\nlines", reader.detect, reader.read)


class FakeEntryPoint:
    """What importlib.metadata gives for one ``being.datasets`` entry point."""

    def __init__(self, name: str, load) -> None:  # noqa: ANN001 - the entry point's load()
        self.name, self.value, self.dist, self._load = name, f"fake_pkg:{name.upper()}", None, load

    def load(self):  # noqa: ANN201 - whatever the entry point names
        return self._load()


def test_entry_point_readers_register_and_broken_ones_are_skipped(tmp_path: Path, canon: Canonical, registry,
                                                                    capsys: pytest.CaptureFixture) -> None:
    reader = example_reader()

    def broken():  # noqa: ANN202
        raise ImportError("No module named 'fake_pkg'\nmore detail")

    found = [FakeEntryPoint("npz", lambda: reader), FakeEntryPoint("broken", broken),
             FakeEntryPoint("notreader", lambda: object()), FakeEntryPoint("renamed", lambda: reader),
             FakeEntryPoint("metrical", lambda: registry.DatasetReader("metrical", "x", reader.detect, reader.read))]
    problems = registry.load_entry_points(found)
    assert list(registry.readers()) == ["metrical", "insta", "imavatar", "npz"]
    assert registry.readers()["metrical"].description == registry._BUILTIN[0].description
    by_name = {p.split("'")[1]: p for p in problems}
    assert sorted(by_name) == ["broken", "metrical", "notreader", "renamed"]
    assert "ImportError: No module named 'fake_pkg'" in by_name["broken"] and "more detail" not in by_name["broken"]
    assert "is a object, not a DatasetReader" in by_name["notreader"]
    assert "named 'renamed' but its reader 'npz'" in by_name["renamed"]
    assert "already registered" in by_name["metrical"]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"being: warning: {p}" for p in problems]  # one line each
    assert all(p.endswith("-> upgrade or uninstall it") for p in problems)
    assert load_tracked_video(write_npz(tmp_path / "take", canon), head_model="demo").format == "npz"


def test_installed_entry_points_are_loaded_once(registry, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = example_reader()
    calls = []

    def fake_entry_points(group: str):  # noqa: ANN202
        calls.append(group)
        return [FakeEntryPoint("npz", lambda: reader)]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert "npz" in registry.readers() and "npz" in registry.readers()
    assert calls == ["being.datasets"]


# --------------------------------------------------------------------------------------------
# The audio track


def write_wav(path: Path, samples: np.ndarray, rate: int) -> np.ndarray:
    """16-bit PCM ``samples`` [C, N] in [-1, 1] (stdlib wave); returns what a reader must decode."""
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(samples.shape[0])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.T.tobytes())
    return pcm.astype(np.float32) / 32768


def test_the_audio_track_is_found_and_decoded(tmp_path: Path, canon: Canonical) -> None:
    root = write_metrical(tmp_path / "m", canon)
    video = load_tracked_video(root, head_model="demo")
    assert video.audio_path is None and video.load_audio() is None

    t = np.arange(1600) / 16000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 220 * t)])
    pcm = write_wav(root / "audio.wav", stereo, 16000)
    video = load_tracked_video(root, head_model="demo")
    assert video.audio_path == root / "audio.wav"
    audio = video.load_audio()
    assert audio.sample_rate == 16000 and audio.samples.dtype == np.float32
    np.testing.assert_allclose(audio.samples, pcm.mean(axis=0), atol=1e-6)  # mono: the channel mean
    assert len(video.load_audio(8000).samples) == 800

    named = write_wav(root / "sound" / "take.wav", stereo[:1, :800], 8000)
    (root / "being_dataset.json").write_text(json.dumps(
        {"format": "being-dataset", "format_version": 1, "audio": "sound/take.wav"}))
    video = load_tracked_video(root, head_model="demo")  # the sidecar wins over audio.wav
    assert video.audio_path == root / "sound" / "take.wav"
    np.testing.assert_allclose(video.load_audio().samples, named[0], atol=1e-6)
    (root / "being_dataset.json").write_text(json.dumps(
        {"format": "being-dataset", "format_version": 1, "audio": "sound/missing.wav"}))
    with pytest.raises(InputError, match=r"being_dataset.json: 'audio' names .*sound/missing.wav, which is missing"):
        load_tracked_video(root, head_model="demo")
    (root / "being_dataset.json").write_text(json.dumps({"format": "being-dataset", "format_version": 1, "audio": 3}))
    with pytest.raises(InputError, match="'audio' must be str"):
        load_tracked_video(root, head_model="demo")


def test_the_source_video_is_the_audio_track_when_it_has_sound(tmp_path: Path, canon: Canonical) -> None:
    from being_kernel.media import Mp4Writer

    root = write_metrical(tmp_path / "m", canon)

    def write_video(audio: np.ndarray | None, frames: int) -> None:
        writer = Mp4Writer(root / "video.mp4", 25, (16, 16), audio, 16000 if audio is not None else None)
        for _ in range(frames):
            writer.write(np.zeros((16, 16, 3), np.uint8))
        writer.finish()

    write_video(None, 5)
    assert (root / "video.mp4").is_file()
    assert load_tracked_video(root, head_model="demo").audio_path is None  # a video without sound
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype(np.float32)
    write_video(tone[None], 12)
    video = load_tracked_video(root, head_model="demo")
    assert video.audio_path == root / "video.mp4"
    audio = video.load_audio(16000)
    assert audio.sample_rate == 16000 and abs(audio.duration - 0.5) < 0.05
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert abs(np.argmax(spectrum) * 16000 / len(audio.samples) - 440) < 5  # the tone survives AAC
    write_wav(root / "audio.wav", tone[None], 16000)
    assert load_tracked_video(root, head_model="demo").audio_path == root / "audio.wav"  # a named file wins

"""Camera converters: each format's camera is built here from its own documented convention
(independently of the converter), converted back, and must project known points to the same
pixels as the original camera and as the format's own projection model."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from being_kernel.cameras import Cameras
from being_kernel.render.conventions import from_imavatar, from_insta, from_metrical_tracker

RNG = np.random.default_rng(7)


def rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return z @ y @ x


class Known:
    """A known OpenCV camera (x right, y down, z forward; pixel centres at +0.5) and points in
    front of it."""

    def __init__(self, width: int = 640, height: int = 480):
        self.width, self.height = width, height
        self.R = rotation(0.3, -0.5, 0.2)
        self.t = np.array([0.02, -0.03, 1.1])
        self.K = np.array([[900.0, 0.0, 331.7], [0.0, 880.0, 229.2], [0.0, 0.0, 1.0]])
        cam_pts = np.c_[RNG.uniform(-0.15, 0.15, (50, 2)), RNG.uniform(0.8, 1.4, 50)]
        self.points = (cam_pts - self.t) @ self.R  # world points, in front of the camera

    def pixels(self) -> np.ndarray:
        cam = self.points @ self.R.T + self.t
        uvw = cam @ self.K.T
        return uvw[:, :2] / uvw[:, 2:]


def project(cams: Cameras, points: np.ndarray) -> np.ndarray:
    pix, depth = cams.project(torch.as_tensor(points, dtype=cams.R.dtype)[None])
    assert torch.all(depth > 0)
    return pix[0].double().numpy()


# metrical-tracker ------------------------------------------------------------------------------

def p3d_screen(points, R_p3d, T_p3d, focal, pp, height, width):
    """PyTorch3D PerspectiveCameras (NDC): view = X @ R + T (row vectors; +X left, +Y up, +Z in),
    ndc = focal * view_xy / z + pp, screen = (W/2 - ndc_x s, H/2 - ndc_y s), s = min(H, W) / 2."""
    view = points @ R_p3d + T_p3d
    ndc = focal * view[:, :2] / view[:, 2:] + pp
    s = min(height, width) / 2
    return np.stack([width / 2 - ndc[:, 0] * s, height / 2 - ndc[:, 1] * s], 1)


def test_metrical_tracker_opencv_entry_projects_like_its_pytorch3d_camera():
    known = Known()
    h, w = known.height, known.width
    s = min(h, w) / 2
    # The tracker's PyTorch3D camera that images exactly like the known one.
    flip_xy = np.diag([-1.0, -1.0, 1.0])
    R_p3d, T_p3d = known.R.T @ flip_xy, flip_xy @ known.t
    focal = np.array([known.K[0, 0], known.K[1, 1]]) / s
    pp = -(np.array([known.K[0, 2], known.K[1, 2]]) - np.array([w / 2, h / 2])) / s
    assert np.abs(p3d_screen(known.points, R_p3d, T_p3d, focal, pp, h, w) - known.pixels()).max() < 1e-9
    # save_checkpoint: 'opencv' = opencv_from_cameras_projection(cameras, image_size=[[h, w]]):
    # negate T[:2] and R[:, :2] columns, transpose R; K from focal * s and c0 - pp * s.
    R_cv = R_p3d.copy()
    R_cv[:, :2] *= -1
    t_cv = T_p3d.copy()
    t_cv[:2] *= -1
    K = np.eye(3)
    K[0, 0], K[1, 1] = focal * s
    K[:2, 2] = -pp * s + np.array([w / 2, h / 2])
    frame = {"opencv": {"R": R_cv.T[None].astype(np.float32), "t": t_cv[None].astype(np.float32),
                        "K": K[None].astype(np.float32)},
             "img_size": np.array([h, w]), "frame_id": "00000", "camera": {}, "flame": {}}
    cams = from_metrical_tracker(frame, dtype=torch.float64)
    assert (cams.width, cams.height) == (w, h)
    got = project(cams, known.points)
    assert np.abs(got - known.pixels()).max() < 1e-4
    assert np.abs(got - p3d_screen(known.points, R_p3d, T_p3d, focal, pp, h, w)).max() < 1e-4
    assert from_metrical_tracker(frame).R.dtype == torch.float32


def test_metrical_tracker_missing_keys():
    frame = {"opencv": {"R": np.eye(3)[None], "t": np.zeros((1, 3)), "K": np.eye(3)[None]},
             "img_size": np.array([8, 8])}
    for path in (("opencv",), ("opencv", "K"), ("img_size",)):
        broken = copy.deepcopy(frame)
        target = broken["opencv"] if len(path) == 2 else broken
        del target[path[-1]]
        with pytest.raises(ValueError, match=f"'{path[-1]}'"):
            from_metrical_tracker(broken)
    with pytest.raises(ValueError, match="shape"):
        from_metrical_tracker({**frame, "img_size": np.array([8, 8, 3])})


# INSTA -----------------------------------------------------------------------------------------

def insta_transforms(known: Known) -> dict:
    """As INSTA's scripts/transforms.py writes them: c2w = inv([R | t]) with the tracker's OpenCV
    R, t; intrinsics from K; serialised to JSON."""
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = known.R, known.t
    data = {"w": known.width, "h": known.height, "fl_x": known.K[0, 0], "fl_y": known.K[1, 1],
            "cx": known.K[0, 2], "cy": known.K[1, 2],
            "camera_angle_x": math.atan(known.width / (known.K[0, 0] * 2)) * 2,
            "camera_angle_y": math.atan(known.height / (known.K[1, 1] * 2)) * 2,
            "x_fov": math.degrees(math.atan(known.width / (known.K[0, 0] * 2)) * 2),
            "y_fov": math.degrees(math.atan(known.height / (known.K[1, 1] * 2)) * 2),
            "integer_depth_scale": 0.001,
            "frames": [{"transform_matrix": np.eye(4).tolist(), "file_path": "images/00000.png"},
                       {"transform_matrix": np.linalg.inv(w2c).tolist(), "file_path": "images/00001.png"}]}
    return json.loads(json.dumps(data))


def ngp_pixels(points: np.ndarray, c2w: np.ndarray, fl: tuple[float, float], c: tuple[float, float]) -> np.ndarray:
    """instant-ngp's pixel_to_ray inverted: a ray through pixel index p has camera direction
    ((p + 0.5 - c) / fl, 1) and world direction c2w[:3, :3] @ that (no axis flips in INSTA)."""
    d = (points - c2w[:3, 3]) @ c2w[:3, :3]
    index = np.stack([fl[0] * d[:, 0] / d[:, 2] + c[0], fl[1] * d[:, 1] / d[:, 2] + c[1]], 1) - 0.5
    return index + 0.5  # pixel index (centre at index) -> our coordinates (centre at index + 0.5)


def test_insta_transform_matrix_is_opencv_camera_to_world():
    known = Known()
    data = insta_transforms(known)
    cams = from_insta(data, 1, dtype=torch.float64)
    assert (cams.width, cams.height) == (known.width, known.height)
    got = project(cams, known.points)
    c2w = np.array(data["frames"][1]["transform_matrix"])
    assert np.abs(got - known.pixels()).max() < 1e-4
    ngp = ngp_pixels(known.points, c2w, (data["fl_x"], data["fl_y"]), (data["cx"], data["cy"]))
    assert np.abs(got - ngp).max() < 1e-4


def test_insta_focal_fallbacks_and_opengl_axes():
    known = Known()
    data = insta_transforms(known)
    want = known.pixels()
    for drop in (["fl_x", "fl_y"], ["fl_x", "fl_y", "x_fov", "y_fov"]):
        reduced = {k: v for k, v in data.items() if k not in drop}
        assert np.abs(project(from_insta(reduced, 1, dtype=torch.float64), known.points) - want).max() < 1e-4
    # NeRF/Blender axes: camera x right, y up, z backward
    gl = json.loads(json.dumps(data))
    c2w = np.array(gl["frames"][1]["transform_matrix"])
    c2w[:3, 1:3] *= -1
    gl["frames"][1]["transform_matrix"] = c2w.tolist()
    assert np.abs(project(from_insta(gl, 1, axes="opengl", dtype=torch.float64), known.points) - want).max() < 1e-4
    _, depth = from_insta(gl, 1).project(torch.as_tensor(known.points, dtype=torch.float32)[None])
    assert torch.all(depth < 0)  # read with the wrong axes, the head is behind the camera


def test_insta_missing_keys():
    data = insta_transforms(Known())
    for key in ("w", "h", "frames"):
        with pytest.raises(ValueError, match=f"'{key}'"):
            from_insta({k: v for k, v in data.items() if k != key}, 0)
    with pytest.raises(ValueError, match="'fl_x'"):
        from_insta({k: v for k, v in data.items() if "fl_" not in k and "fov" not in k and "angle" not in k}, 0)
    with pytest.raises(ValueError, match="'transform_matrix'"):
        from_insta({**data, "frames": [{"file_path": "x.png"}]}, 0)
    with pytest.raises(ValueError, match="outside"):
        from_insta(data, 5)


# IMavatar --------------------------------------------------------------------------------------

def imavatar_pixels(points: np.ndarray, world_mat: np.ndarray, intrinsics, width: int, height: int) -> np.ndarray:
    """IMavatar's camera model (code/utils/rend_util.py lift + get_camera_params): the ray of
    integer pixel coordinate (x, y) passes through camera point ((x - cx) / fx * z, (y - cy) / fy * z, z)
    with z = -1, K = intrinsics scaled by the image size. Inverted: x = cx + fx X / Z."""
    fx, fy, cx, cy = intrinsics[0] * width, intrinsics[1] * height, intrinsics[2] * width, intrinsics[3] * height
    cam = points @ world_mat[:, :3].T + world_mat[:, 3]
    assert np.all(cam[:, 2] < 0)  # in front of a camera looking down -z
    return np.stack([cx + fx * cam[:, 0] / cam[:, 2], cy + fy * cam[:, 1] / cam[:, 2]], 1) + 0.5


def imavatar_ray(pixel_xy: np.ndarray, world_mat: np.ndarray, intrinsics, size: int) -> tuple[np.ndarray, np.ndarray]:
    """get_camera_params for one integer-grid pixel coordinate: (camera location, unit direction)."""
    fx, fy, cx, cy = (v * size for v in intrinsics)
    z = -1.0
    p_cam = np.array([(pixel_xy[0] - cx) / fx * z, (pixel_xy[1] - cy) / fy * z, z])
    R, t = world_mat[:, :3], world_mat[:, 3]
    loc = -R.T @ t  # pose = [R^T | loc]; ray = pose @ p_cam - loc
    d = R.T @ p_cam
    return loc, d / np.linalg.norm(d)


def test_imavatar_native_camera_sees_an_upright_unmirrored_head():
    # As preprocess/DECA/optimize.py saves it: world_mat = [I | (0, 0, -4)], intrinsics
    # [-fx / size, fy / size, cx / size, cy / size]; FLAME x 4 centred at the origin.
    size, f, c = 512, 1500.0, 256.0
    params = json.loads(json.dumps({"intrinsics": [-f / size, f / size, c / size, c / size],
                                    "frames": [{"world_mat": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -4.0]],
                                                "file_path": "./image/1", "expression": [0.0] * 50,
                                                "pose": [0.0] * 15}],
                                    "shape_params": [0.0] * 100}))
    cams, scale = from_imavatar(params, 0, size, size, dtype=torch.float64)
    assert scale == 4.0
    head = np.array([[0.0, 0.0, 0.0], [0.08, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]]) * scale
    pix = project(cams, head)
    _, depth = cams.project(torch.as_tensor(head)[None])
    assert depth[0, 0] == pytest.approx(4.0)
    assert pix[0] == pytest.approx([c + 0.5, c + 0.5])
    assert pix[1, 0] > pix[0, 0]  # FLAME +x (the subject's left) is on the image's right
    assert pix[2, 1] < pix[0, 1]  # FLAME +y (up) is up in the image
    wm = np.array(params["frames"][0]["world_mat"])
    assert np.abs(pix - imavatar_pixels(head, wm, params["intrinsics"], size, size)).max() < 1e-6
    # the IMavatar ray of each projected pixel (integer-grid coordinates) passes through the point
    for p, x in zip(pix, head):
        loc, d = imavatar_ray(p - 0.5, wm, params["intrinsics"], size)
        off = (x - loc) - ((x - loc) @ d) * d
        assert (x - loc) @ d > 0 and np.linalg.norm(off) < 1e-9


def test_imavatar_round_trip_from_a_known_camera():
    known = Known(256, 256)
    # Forward: IMavatar's camera has y up and z backward (OpenGL axes) and integer pixel centres.
    gl = np.diag([1.0, -1.0, -1.0])
    world_mat = np.c_[gl @ known.R, gl @ known.t]
    K = known.K
    intr = [-K[0, 0] / 256, K[1, 1] / 256, (K[0, 2] - 0.5) / 256, (K[1, 2] - 0.5) / 256]
    params = json.loads(json.dumps({"intrinsics": intr, "frames": [{"world_mat": world_mat.tolist()}]}))
    cams, _ = from_imavatar(params, 0, 256, 256, dtype=torch.float64)
    got = project(cams, known.points)
    assert np.abs(got - known.pixels()).max() < 1e-4
    assert np.abs(got - imavatar_pixels(known.points, world_mat, intr, 256, 256)).max() < 1e-4
    # older files: the same intrinsics in pixels of a 512 x 512 image
    old = {**params, "intrinsics": [v * 512 for v in intr]}
    assert np.abs(project(from_imavatar(old, 0, 256, 256, dtype=torch.float64)[0], known.points) - got).max() < 1e-4


def test_imavatar_bad_input():
    params = {"intrinsics": [-3.0, 3.0, 0.5, 0.5],
              "frames": [{"world_mat": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -4]]}]}
    with pytest.raises(ValueError, match="'intrinsics'"):
        from_imavatar({"frames": params["frames"]}, 0, 64, 64)
    with pytest.raises(ValueError, match="'world_mat'"):
        from_imavatar({**params, "frames": [{}]}, 0, 64, 64)
    with pytest.raises(ValueError, match="'frames'"):
        from_imavatar({"intrinsics": params["intrinsics"]}, 0, 64, 64)
    with pytest.raises(ValueError, match="fx < 0"):
        from_imavatar({**params, "intrinsics": [3.0, 3.0, 0.5, 0.5]}, 0, 64, 64)
    with pytest.raises(ValueError, match="rotation"):
        from_imavatar({**params, "frames": [{"world_mat": [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -4]]}]}, 0, 64, 64)

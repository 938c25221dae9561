"""Camera converters from public head-avatar data formats to our OpenCV ``Cameras``.

Our convention (``camera.py``): x right, y down, z forward; ``R, t`` map world to camera; ``K``
in pixels with the centre of pixel (i, j) at (j + 0.5, i + 0.5). What each format means, and
the source files that say so, is in ``docs/cameras.md``. In short:

- metrical-tracker ``*.frame``: its ``opencv`` entry already is ours (PyTorch3D's
  ``opencv_from_cameras_projection``); the FLAME mesh sits unposed in world space, in metres,
  and the head motion lives in the camera.
- INSTA ``transforms*.json``: ``transform_matrix`` is camera-to-world with OpenCV axes (the
  inverse of metrical-tracker's ``[R | t]``, not the OpenGL/Blender axes of the NeRF format);
  intrinsics in pixels with pixel centres at +0.5, like ours. Same world as the tracker.
- IMavatar ``flame_params.json``: ``world_mat`` is world-to-camera for a camera looking down -z
  with y up (OpenGL axes); ``intrinsics`` are [fx, fy, cx, cy] divided by the image size, with fx
  stored negative; rays go through integer pixel coordinates; FLAME vertices are scaled by 4.

Every converter raises ValueError naming a missing key or a malformed value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..cameras import Cameras

#: IMavatar multiplies FLAME's template, shape and pose blendshapes by this (code/flame/FLAME.py).
IMAVATAR_FLAME_SCALE = 4.0

_FLIP_YZ = np.diag([1.0, -1.0, -1.0])  # OpenGL camera axes (x right, y up, z back) <-> OpenCV


def _get(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{where}: expected a mapping with key '{key}', got {type(mapping).__name__}")
    if key not in mapping:
        raise ValueError(f"{where}: missing key '{key}'")
    return mapping[key]


def _array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``value`` (numpy, torch or nested lists) as float64 of ``shape``, squeezing size-1 axes."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        squeezed = arr.reshape([n for n in arr.shape if n != 1])
        if squeezed.shape != tuple(n for n in shape if n != 1):
            raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
        arr = squeezed.reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: not finite")
    return arr


def _matrix(value: Any, name: str) -> np.ndarray:
    """A 3x4 or 4x4 rigid transform as 4x4 float64."""
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    if arr.shape == (3, 4):
        arr = np.vstack([arr, [0.0, 0.0, 0.0, 1.0]])
    return _array(arr, (4, 4), name)


def _frame(container: Mapping, frame_index: int, where: str) -> Mapping:
    frames = _get(container, "frames", where)
    if not isinstance(frames, Sequence) or not -len(frames) <= frame_index < len(frames):
        raise ValueError(f"{where}: frame {frame_index} outside 'frames' ({len(frames)} frames)")
    frame = frames[frame_index]
    if not isinstance(frame, Mapping):
        raise ValueError(f"{where}: frames[{frame_index}] is not a mapping")
    return frame


def _cameras(R: np.ndarray, t: np.ndarray, K: np.ndarray, width: int, height: int, dtype: torch.dtype) -> Cameras:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width} x {height}")
    as_t = lambda a: torch.as_tensor(a, dtype=dtype)[None]  # noqa: E731
    return Cameras(as_t(R), as_t(t), as_t(K), int(width), int(height))


def _check_rotation(R: np.ndarray, name: str) -> None:
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-4) or np.linalg.det(R) <= 0:
        raise ValueError(f"{name}: not a rotation matrix")


def from_metrical_tracker(frame: Mapping[str, Any], *, dtype: torch.dtype = torch.float32) -> Cameras:
    """One camera from a metrical-tracker checkpoint (``torch.load`` of ``checkpoint/*.frame``).

    Uses ``frame['opencv']`` = {'R' [1, 3, 3], 't' [1, 3], 'K' [1, 3, 3]} (world-to-camera,
    pixels) and ``frame['img_size']`` = [height, width]. Vertices: the tracker's FLAME output in
    metres, with no further transform (``mesh/*.ply`` are exactly these).
    """
    where = "metrical-tracker frame"
    opencv = _get(frame, "opencv", where)
    R = _array(_get(opencv, "R", f"{where} ['opencv']"), (3, 3), "opencv R")
    t = _array(_get(opencv, "t", f"{where} ['opencv']"), (3,), "opencv t")
    K = _array(_get(opencv, "K", f"{where} ['opencv']"), (3, 3), "opencv K")
    height, width = _array(_get(frame, "img_size", where), (2,), "img_size")
    _check_rotation(R, "opencv R")
    return _cameras(R, t, K, int(round(width)), int(round(height)), dtype)


def _insta_focal(frame: Mapping, top: Mapping, axis: str, resolution: float) -> float | None:
    for src in (frame, top):
        if f"fl_{axis}" in src:
            return float(src[f"fl_{axis}"])
        if f"{axis}_fov" in src:  # degrees
            return 0.5 * resolution / math.tan(0.5 * math.radians(float(src[f"{axis}_fov"])))
        if f"camera_angle_{axis}" in src:  # radians
            return 0.5 * resolution / math.tan(0.5 * float(src[f"camera_angle_{axis}"]))
    return None


def from_insta(transforms: Mapping[str, Any], frame_index: int, *, axes: str = "opencv",
               dtype: torch.dtype = torch.float32) -> Cameras:
    """One camera from an INSTA ``transforms*.json`` (parsed) and a position in its 'frames'.

    Keys: 'w', 'h', 'fl_x' (or 'x_fov' degrees / 'camera_angle_x' radians), optional 'fl_y'
    (default fl_x), 'cx', 'cy' (default the image centre), any of them overridable per frame as
    instant-ngp allows; ``frames[i]['transform_matrix']`` 4x4 camera-to-world. INSTA's files use
    OpenCV camera axes (``axes="opencv"``); ``axes="opengl"`` reads the NeRF/Blender axes (x right,
    y up, z backward) instead. INSTA's internal +0.5 offset moves camera and mesh alike and is
    ignored; vertices are ``meshes/*.obj`` as stored (metrical-tracker's world, metres).
    """
    if axes not in ("opencv", "opengl"):
        raise ValueError(f"from_insta: axes must be 'opencv' or 'opengl', got {axes!r}")
    where = "INSTA transforms"
    frame = _frame(transforms, frame_index, where)
    width, height = (float(_get(frame if k in frame else transforms, k, where)) for k in ("w", "h"))
    fl_x = _insta_focal(frame, transforms, "x", width)
    fl_y = _insta_focal(frame, transforms, "y", height)
    if fl_x is None and fl_y is None:
        raise ValueError(f"{where}: missing key 'fl_x' (or 'x_fov', 'camera_angle_x')")
    fl_x, fl_y = fl_x or fl_y, fl_y or fl_x
    cx = float(frame.get("cx", transforms.get("cx", width / 2)))
    cy = float(frame.get("cy", transforms.get("cy", height / 2)))
    m = _matrix(_get(frame, "transform_matrix", f"{where} frames[{frame_index}]"), "transform_matrix")
    rot_c2w, centre = m[:3, :3], m[:3, 3]
    if axes == "opengl":
        rot_c2w = rot_c2w @ _FLIP_YZ
    _check_rotation(rot_c2w, "transform_matrix rotation")
    R = rot_c2w.T
    K = np.array([[fl_x, 0.0, cx], [0.0, fl_y, cy], [0.0, 0.0, 1.0]])
    return _cameras(R, -R @ centre, K, int(round(width)), int(round(height)), dtype)


def from_imavatar(params: Mapping[str, Any], frame_index: int, width: int, height: int, *,
                  dtype: torch.dtype = torch.float32) -> tuple[Cameras, float]:
    """One camera from IMavatar's ``flame_params.json`` (parsed), for images of width x height.

    Returns the camera and the scale to apply to FLAME vertices (4: IMavatar's world holds FLAME
    scaled by 4 about its origin, posed with the frame's 'pose'). ``frames[i]['world_mat']`` is a
    3x4 world-to-camera matrix for a camera looking down -z with y up; ``intrinsics`` is
    [fx, fy, cx, cy] divided by the image size (fx negative: x stays to the right), or, in
    IMavatar's older files (cy > 1), in pixels of a 512 x 512 image. IMavatar casts rays through
    integer pixel coordinates (pixel centres at j, i), so our cx, cy are its values plus 0.5.
    """
    where = "IMavatar flame_params"
    intr = _array(_get(params, "intrinsics", where), (4,), "intrinsics")
    frame = _frame(params, frame_index, where)
    wm = _matrix(_get(frame, "world_mat", f"{where} frames[{frame_index}]"), "world_mat")[:3]
    _check_rotation(wm[:, :3], "world_mat rotation")
    sx, sy = (width / 512.0, height / 512.0) if intr[3] > 1 else (float(width), float(height))
    fx, fy, cx, cy = -intr[0] * sx, intr[1] * sy, intr[2] * sx + 0.5, intr[3] * sy + 0.5
    if fx <= 0 or fy <= 0:
        raise ValueError(f"intrinsics: expected fx < 0 and fy > 0 (IMavatar's convention), got {intr.tolist()}")
    R, t = _FLIP_YZ @ wm[:, :3], _FLIP_YZ @ wm[:, 3]
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return _cameras(R, t, K, width, height, dtype), IMAVATAR_FLAME_SCALE

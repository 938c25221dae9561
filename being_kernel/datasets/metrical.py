"""metrical-tracker output (github.com/Zielon/metrical-tracker): ``checkpoint/NNNNN.frame``, one
``torch.save``d dictionary per frame, and ``input/NNNNN.png``, the frame it was tracked on.

A ``.frame`` holds numpy arrays (batch 1): ``flame`` {exp [1, 100], shape [1, 300], jaw [1, 6] and
eyes [1, 12] as 6D rotations (``rotation6d``), eyelids [1, 2], tex, sh}, ``camera`` (the PyTorch3D
camera being optimised), ``opencv`` {R [1, 3, 3], t [1, 3], K [1, 3, 3]} (already our camera
convention), ``img_size`` [height, width], ``frame_id`` and ``global_step``. The tracker poses FLAME
with identity global and neck rotations and no translation: the head pose lives in the camera.

Frames are read with ``weights.safe_torch_load`` (``torch.load(weights_only=True)``), allowing in
addition only numpy's array reconstruction, so a checkpoint cannot run code. See docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import InputError
from ..render.conventions import from_metrical_tracker
from ..weights import safe_torch_load
from .common import check_image_files, has_alpha, stack_cameras
from .rotation6d import axis_angle_to_rotation_6d, matrix_to_rotation_6d, rotation_6d_to_axis_angle
from .video import Tracking

CHECKPOINT_DIR, IMAGE_DIR, MASK_DIR = "checkpoint", "input", "alpha"
DESCRIPTION = "metrical-tracker output: checkpoint/*.frame with input/*.png (and alpha/*.png masks)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the tracker's widths (configs/config.py: num_exp_params, num_shape_params, tex_params)
N_EXP, N_SHAPE, N_TEX = 100, 300, 140
#: numeric dtypes a checkpoint's arrays may have (object arrays are refused)
_DTYPES = "?bBhHiIlLqQefd"


def _numpy_globals() -> list:
    """numpy's array reconstruction, under its numpy 1 and numpy 2 module names, and the numeric
    dtype classes: all that unpickling a plain numeric ndarray needs."""
    reconstruct = np.zeros(0).__reduce__()[0]
    return [reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct"),
            (reconstruct, "numpy._core.multiarray._reconstruct"), np.ndarray, np.dtype,
            *{type(np.dtype(c)) for c in _DTYPES}]


def load_frame(path: Path) -> dict:
    """One ``.frame`` file as a dict, loaded without running code from it (InputError otherwise)."""
    payload = safe_torch_load(path, what="metrical-tracker checkpoint", safe_globals=_numpy_globals(),
                              hint="checkpoints may hold only tensors, numpy arrays and plain values")
    if not isinstance(payload, dict):
        raise InputError(f"{path}: not a metrical-tracker checkpoint (holds a {type(payload).__name__}, not a dict)")
    return payload


def _entry(d: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(d, dict):
        raise InputError(f"{path}: '{where}' is not a dictionary")
    if key not in d:
        raise InputError(f"{path}: missing key '{where}.{key}'" if where else f"{path}: missing key '{key}'")
    return d[key]


def _row(value: Any, width: int | None, path: Path, name: str) -> np.ndarray:
    """A batch-1 array [1, width] (or [width]) as float64 [width]; ``width`` None: any width."""
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if arr.dtype.kind not in "biuf" or arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[0] != 1):
        raise InputError(f"{path}: '{name}' must be a numeric [1, {width or 'N'}] array, got "
                         f"{arr.dtype} {list(arr.shape)}")
    arr = arr.reshape(-1).astype(np.float64)
    if width is not None and arr.size != width:
        raise InputError(f"{path}: '{name}' must be [1, {width}], got {list(np.shape(value))}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: '{name}' is not finite")
    return arr


def frame_params(payload: dict, path: Path) -> dict[str, np.ndarray]:
    """The FLAME parameters of one checkpoint: exp [E], shape [S], jaw [3] and eyes [6] axis-angle,
    eyelids [2] (zero when the checkpoint predates eyelids)."""
    flame = _entry(payload, "flame", path, "")
    out = {"exp": _row(_entry(flame, "exp", path, "flame"), None, path, "flame.exp"),
           "shape": _row(_entry(flame, "shape", path, "flame"), None, path, "flame.shape")}
    jaw = _row(_entry(flame, "jaw", path, "flame"), 6, path, "flame.jaw")
    eyes = _row(_entry(flame, "eyes", path, "flame"), 12, path, "flame.eyes")
    try:
        rot = rotation_6d_to_axis_angle(torch.from_numpy(np.concatenate([jaw, eyes]).reshape(3, 6))).numpy()
    except ValueError as exc:
        raise InputError(f"{path}: 'flame.jaw' or 'flame.eyes' is {exc}") from exc
    out["jaw"], out["eyes"] = rot[0], rot[1:].reshape(6)
    out["eyelids"] = _row(flame["eyelids"], 2, path, "flame.eyelids") if "eyelids" in flame else np.zeros(2)
    return out


def frame_camera(payload: dict, path: Path) -> Cameras:
    """The checkpoint's ``opencv`` camera (one camera, float32)."""
    try:
        return from_metrical_tracker(payload)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc


def _frame_files(root: Path) -> list[Path]:
    ckpt = root / CHECKPOINT_DIR
    if not ckpt.is_dir():
        raise InputError(f"{root}: no {CHECKPOINT_DIR}/ directory (metrical-tracker writes checkpoint/*.frame)",
                         hint="point at the tracker's output directory for the actor")
    frames = sorted(ckpt.glob("*.frame"), key=lambda p: (int(p.stem) if p.stem.isdigit() else -1, p.stem))
    if not frames:
        raise InputError(f"{ckpt}: no .frame files",
                         hint="run the tracker to the end, or point at its output directory")
    return frames


def _find_image(folder: Path, stem: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return folder / f"{stem}.png"


def detect(path: Path) -> Path | None:
    """The tracker's output directory when ``path`` is one (it holds ``checkpoint/``), or its
    ``checkpoint/`` directory, or a ``.frame`` in it."""
    if path.is_file():
        if path.suffix != ".frame":
            return None
        path = path.parent
    if path.name == CHECKPOINT_DIR and any(path.glob("*.frame")):
        return path.parent
    return path if (path / CHECKPOINT_DIR).is_dir() else None


def read(root: Path, path: Path, head_model: str) -> Tracking:
    """The registry's entry (the checkpoints hold everything; ``path`` and the head model add nothing)."""
    return read_metrical(root)


def read_metrical(root: Path) -> Tracking:
    """Read metrical-tracker output at ``root`` (the directory holding ``checkpoint/``)."""
    files = _frame_files(root)
    params, cams = [], []
    for path in files:
        payload = load_frame(path)
        params.append(frame_params(payload, path))
        cam = frame_camera(payload, path)
        if cams and (cam.width, cam.height) != (cams[0].width, cams[0].height):
            raise InputError(f"{path}: img_size {cam.width}x{cam.height} differs from {files[0].name}'s "
                             f"{cams[0].width}x{cams[0].height} (frames of different image sizes)")
        cams.append(cam)
    widths = {len(p["exp"]) for p in params}
    if len(widths) > 1:
        raise InputError(f"{root / CHECKPOINT_DIR}: frames differ in flame.exp width ({sorted(widths)})")

    images = [_find_image(root / IMAGE_DIR, p.stem) for p in files]
    check_image_files(images)
    if (root / MASK_DIR).is_dir():
        masks: list[Path | None] = [_find_image(root / MASK_DIR, p.stem) for p in files]
        check_image_files(masks, "mask")
    elif has_alpha(images[0]):
        masks = list(images)
    else:
        masks = [None] * len(files)

    n = len(files)
    stack = lambda key: np.stack([p[key] for p in params])  # noqa: E731
    return Tracking(
        expression=stack("exp"), global_rot=np.zeros((n, 3)), neck=np.zeros((n, 3)),
        jaw=stack("jaw"), eyes=stack("eyes"), eyelids=stack("eyelids"), translation=np.zeros((n, 3)),
        shape=params[0]["shape"], cameras=stack_cameras(cams),
        image_paths=images, mask_paths=masks, sources=files, shape_source=files[0])


def make_frame(*, exp: np.ndarray, shape: np.ndarray, jaw: np.ndarray, eyes: np.ndarray, eyelids: np.ndarray,
               R: np.ndarray, t: np.ndarray, K: np.ndarray, width: int, height: int, frame_id: str) -> dict:
    """A checkpoint dictionary with the tracker's keys, shapes and dtypes (float32 batch-1 arrays).

    exp [<= 100] and shape [<= 300] are zero-padded to the tracker's widths; jaw [3] and eyes [6]
    are axis-angle (stored as 6D); R, t, K the OpenCV camera. ``camera`` holds the equivalent
    PyTorch3D camera the tracker optimises (R as 6D, NDC focal length and principal point)."""
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    pad = lambda a, n: f32(np.pad(np.asarray(a, np.float64).reshape(-1), (0, n - np.size(a))))[None]  # noqa: E731
    rot6 = axis_angle_to_rotation_6d(torch.as_tensor(np.concatenate([jaw, eyes]).reshape(3, 3), dtype=torch.float64))
    flip = np.diag([-1.0, -1.0, 1.0])  # OpenCV camera axes <-> PyTorch3D's (x left, y up)
    R_p3d = (flip @ R).T  # PyTorch3D uses row vectors: X_view = X_world @ R + T
    s = min(width, height) / 2.0
    return {
        "flame": {"exp": pad(exp, N_EXP), "shape": pad(shape, N_SHAPE), "tex": np.zeros((1, N_TEX), np.float32),
                  "sh": np.zeros((1, 9, 3), np.float32), "eyes": f32(rot6[1:].reshape(1, 12)),
                  "eyelids": f32(eyelids)[None], "jaw": f32(rot6[:1])},
        "camera": {"R": f32(matrix_to_rotation_6d(torch.from_numpy(R_p3d)))[None],
                   "t": f32(flip @ t)[None], "fl": f32([[K[0, 0] / s]]),
                   "pp": f32([[(width / 2.0 - K[0, 2]) / s, (height / 2.0 - K[1, 2]) / s]])},
        "opencv": {"R": f32(R)[None], "t": f32(t)[None], "K": f32(K)[None]},
        "img_size": np.array([height, width], dtype=np.int64),
        "frame_id": frame_id,
        "global_step": 0,
    }

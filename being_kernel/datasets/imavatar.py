"""IMavatar datasets (github.com/zhengyuf/IMavatar, ``code/datasets/real_dataset.py`` reads them,
``preprocess/DECA/optimize.py`` writes them): one directory per video with ``flame_params.json``,
``image/N.png`` and ``mask/N.png`` (N from 1, not zero-padded).

``flame_params.json``: ``frames`` [{``file_path`` "./image/N" (no extension), ``world_mat`` 3x4
world-to-camera (OpenGL axes: looking down -z, y up), ``expression`` [50], ``pose`` [15] = global,
neck, jaw, left eye, right eye (axis-angle), ``bbox``, ``flame_keypoints``}], ``shape_params``
[100], ``intrinsics`` [fx, fy, cx, cy] / image size with fx negative. IMavatar's FLAME is scaled
by 4 (template, shape and pose blendshapes), so its world is ours x 4: dividing the camera
translation by 4 gives the same image of the unscaled mesh. See docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..cameras import Cameras
from ..render.conventions import from_imavatar
from .common import SIDECAR, check_image_files, first_image_size, read_json, stack_cameras
from .video import Tracking

JSON_NAME = "flame_params.json"
DESCRIPTION = "IMavatar: flame_params.json with image/N.png and mask/N.png"


def _vector(container: dict, key: str, width: int, path: Path, where: str) -> np.ndarray:
    """``container[key]`` as float64 [width] (any non-empty width if 0); ``where`` names the container."""
    if key not in container:
        raise InputError(f"{path}: {where}missing key '{key}'")
    try:
        arr = np.asarray(container[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {where}'{key}' is not a list of numbers") from exc
    if (width and arr.size != width) or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: {where}'{key}' must be {width or 'some'} finite numbers, got {arr.size}")
    return arr


def _image_path(root: Path, file_path: str) -> Path:
    p = root / file_path
    return p if p.suffix else p.with_name(p.name + ".png")  # IMavatar appends .png


def detect(path: Path) -> Path | None:
    """The video directory when ``path`` is one holding flame_params.json, or a JSON file of this
    format in one (any name but INSTA's transforms*.json and Being's sidecar)."""
    if path.is_file():
        is_other = path.name.startswith("transforms") or path.name == SIDECAR
        return path.parent if path.suffix == ".json" and not is_other else None
    return path if (path / JSON_NAME).is_file() else None


def read(root: Path, path: Path, head_model: str) -> Tracking:
    """The registry's entry: ``path`` may name the JSON file to read instead of flame_params.json."""
    return read_imavatar(root, path if path.is_file() and path.suffix == ".json" else None)


def read_imavatar(root: Path, json_path: Path | None = None) -> Tracking:
    """Read an IMavatar video directory ``root`` (its ``flame_params.json``, or ``json_path``)."""
    path = json_path or root / JSON_NAME
    if not path.is_file():
        raise InputError(f"{path}: missing", hint="point at the directory holding flame_params.json")
    doc = read_json(path)
    frames = doc.get("frames")
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        raise InputError(f"{path}: missing key 'frames' (a non-empty list of objects)")
    shape = _vector(doc, "shape_params", 0, path, "")
    _vector(doc, "intrinsics", 4, path, "")

    images = []
    for i, frame in enumerate(frames):
        if not isinstance(frame.get("file_path"), str):
            raise InputError(f"{path}: frames[{i}] missing key 'file_path'")
        images.append(_image_path(root, frame["file_path"]))
    check_image_files(images)
    width, height = first_image_size(images[0])
    # real_dataset.py: the mask is the image path with 'image' replaced by 'mask'
    masks: list[Path | None] = [p.parent.parent / "mask" / p.name for p in images]
    if all(p.parent.name == "image" for p in images) and masks[0].parent.is_dir():
        check_image_files(masks, "mask")
    else:
        masks = [None] * len(images)

    expression, pose, cams = [], [], []
    for i, frame in enumerate(frames):
        expression.append(_vector(frame, "expression", 0, path, f"frames[{i}] "))
        pose.append(_vector(frame, "pose", 15, path, f"frames[{i}] "))
        try:
            cam, scale = from_imavatar(doc, i, width, height)
        except ValueError as exc:
            raise InputError(f"{path}: frames[{i}]: {exc}") from exc
        cams.append(Cameras(cam.R, cam.t / scale, cam.K, cam.width, cam.height))
    if len({e.size for e in expression}) > 1:
        raise InputError(f"{path}: frames differ in expression width")
    pose = np.stack(pose)
    n = len(frames)
    return Tracking(
        expression=np.stack(expression), global_rot=pose[:, 0:3], neck=pose[:, 3:6],
        jaw=pose[:, 6:9], eyes=pose[:, 9:15], eyelids=np.zeros((n, 2)), translation=np.zeros((n, 3)), shape=shape,
        cameras=stack_cameras(cams),
        image_paths=images, mask_paths=masks, sources=[path] * n, shape_source=path)

"""Scenes: the still a head is placed in (the photo an avatar was made from): a background plate with
the person removed, the person's torso as an RGBA layer, and where and how large the head goes.

A scene is a folder (``SCENE_DIR`` inside a prepared dataset or an avatar directory) holding
``background.png``, ``torso.png`` and ``SCENE_FILE``; see docs/datasets.md#scenes. ``being
prepare PHOTO`` writes one, ``being fit`` copies it into the avatar, and compositors that take a
``scene`` (``static``) read it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..formats import read_format_json
from ..media.images import read_image, write_png

#: the scene's folder inside a prepared dataset and inside an avatar directory
SCENE_DIR = "scene"
#: the scene's description inside its folder
SCENE_FILE = "scene.json"
SCENE_FORMAT, SCENE_VERSION = "being-scene", 1
BACKGROUND_FILE, TORSO_FILE = "background.png", "torso.png"


@dataclass(frozen=True)
class Scene:
    """A still scene a head is placed in (e.g. the photo an avatar was made from).

    root:              the scene directory
    size:              (width, height) in pixels, both even
    neck_xy:           where the head's anchor (the neck base, the head model's root joint) is, in
                       pixels: x right, y down, pixel (i, j) has its centre at (j + 0.5, i + 0.5)
    head_px_per_metre: the image scale of the head at the neck base
    background:        RGB png, the person removed (inpainted)
    torso:             RGBA png (straight alpha): the person below the head (neck, shoulders, clothes)
    source:            what it was made from (e.g. the photo's file name), or None
    """

    root: Path
    size: tuple[int, int]
    neck_xy: tuple[float, float]
    head_px_per_metre: float
    background: Path
    torso: Path
    source: str | None = None


def _check_numbers(size: tuple[int, int], neck_xy: Sequence[float], head_px_per_metre: float) -> str | None:
    """What is wrong with a scene's numbers, or None."""
    width, height = size
    if width < 2 or height < 2 or width % 2 or height % 2:
        return f"size {width}x{height} must be even and positive (H.264 needs even frame sizes)"
    if len(neck_xy) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                    for v in neck_xy):
        return f"neck_xy {list(neck_xy)!r} must be two finite numbers (pixels)"
    if isinstance(head_px_per_metre, bool) or not isinstance(head_px_per_metre, (int, float)) \
            or not (math.isfinite(head_px_per_metre) and head_px_per_metre > 0):
        return f"head_px_per_metre {head_px_per_metre!r} must be a finite number > 0"
    return None


def _write_png_atomically(path: Path, image: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.png")
    try:
        write_png(tmp, image)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_scene(directory: str | Path, background: np.ndarray, torso: np.ndarray, neck_xy: Sequence[float],
                head_px_per_metre: float, source: str | None = None) -> Path:
    """Write a scene into ``directory`` (created if needed); returns it.

    ``background`` uint8 ``[H, W, 3]`` (the person removed), ``torso`` uint8 ``[H, W, 4]`` straight
    RGBA (the person below the head), both of the same even H and W; ``neck_xy`` the neck base in
    pixels; ``head_px_per_metre`` the head's image scale there. ValueError for anything else. The
    images are written first and the description last, and an older description is removed
    before, so a crash never leaves a ``scene.json`` pointing at missing or other images."""
    background, torso = np.asarray(background), np.asarray(torso)
    if background.dtype != np.uint8 or background.ndim != 3 or background.shape[2] != 3:
        raise ValueError(f"write_scene: background must be uint8 [H, W, 3], got {background.dtype} {background.shape}")
    if torso.dtype != np.uint8 or torso.ndim != 3 or torso.shape[2] != 4:
        raise ValueError(f"write_scene: torso must be uint8 straight RGBA [H, W, 4], got {torso.dtype} {torso.shape}")
    if torso.shape[:2] != background.shape[:2]:
        raise ValueError(f"write_scene: torso {torso.shape[:2]} and background {background.shape[:2]} differ in size")
    size = (int(background.shape[1]), int(background.shape[0]))
    neck = tuple(float(v) for v in neck_xy)
    problem = _check_numbers(size, neck, head_px_per_metre)
    if problem:
        raise ValueError(f"write_scene: {problem}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SCENE_FILE).unlink(missing_ok=True)
    _write_png_atomically(directory / BACKGROUND_FILE, background)
    _write_png_atomically(directory / TORSO_FILE, torso)
    meta: dict[str, Any] = {"format": SCENE_FORMAT, "format_version": SCENE_VERSION, "size": list(size),
                            "neck_xy": list(neck), "head_px_per_metre": float(head_px_per_metre),
                            "background": BACKGROUND_FILE, "torso": TORSO_FILE, "source": source}
    tmp = directory / f".{SCENE_FILE}.{os.getpid()}.partial"
    try:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, directory / SCENE_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    return directory


def read_scene(directory: str | Path) -> Scene:
    """The scene in ``directory``; InputError naming the file for a missing folder or description,
    another format or a newer version, missing or unreadable images, images whose size is not the
    scene's, a torso without alpha, or bad numbers."""
    root = Path(directory)
    hint = "make the scene again (being prepare PHOTO writes DIR/scene), or leave it unset"
    if not root.is_dir():
        raise InputError(f"{root}: no such scene directory", hint=hint)
    path = root / SCENE_FILE
    if not path.is_file():
        raise InputError(f"{root}: not a scene ({SCENE_FILE} missing)", hint=hint)
    try:
        meta = read_format_json(path, SCENE_FORMAT, SCENE_VERSION, "upgrade being to read this scene")
    except InputError as exc:
        raise InputError(str(exc), hint=exc.hint or hint) from exc
    size, neck, scale = meta.get("size"), meta.get("neck_xy"), meta.get("head_px_per_metre")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in size)):
        raise InputError(f"{path}: 'size' must be [width, height] in pixels, got {size!r}", hint=hint)
    if not isinstance(neck, list):
        raise InputError(f"{path}: 'neck_xy' must be [x, y] in pixels, got {neck!r}", hint=hint)
    problem = _check_numbers((size[0], size[1]), neck, scale)
    if problem:
        raise InputError(f"{path}: {problem}", hint=hint)
    source = meta.get("source")
    if source is not None and not isinstance(source, str):
        raise InputError(f"{path}: 'source' must be a string or null, got {source!r}", hint=hint)
    images = {}
    for key, channels in (("background", (3, 4)), ("torso", (4,))):
        name = meta.get(key)
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise InputError(f"{path}: '{key}' must name a file in the scene directory, got {name!r}", hint=hint)
        file = root / name
        if not file.is_file():
            raise InputError(f"{file}: the scene's {key} image is missing", hint=hint)
        try:
            pixels = read_image(file)
        except InputError as exc:
            raise InputError(str(exc), hint=hint) from exc
        got = (pixels.shape[1], pixels.shape[0])
        if got != tuple(size):
            raise InputError(f"{file}: {got[0]}x{got[1]}, but the scene is {size[0]}x{size[1]}", hint=hint)
        if pixels.shape[2] not in channels:
            what = "RGBA (straight alpha)" if key == "torso" else "RGB"
            raise InputError(f"{file}: the scene's {key} must be {what}, it has {pixels.shape[2]} channel(s)", hint=hint)
        images[key] = file
    return Scene(root=root, size=(size[0], size[1]), neck_xy=(float(neck[0]), float(neck[1])),
                 head_px_per_metre=float(scale), background=images["background"], torso=images["torso"],
                 source=source)


def copy_scene(dataset: str | Path, directory: str | Path) -> Path | None:
    """Copy the scene of the dataset at ``dataset`` (its ``SCENE_DIR``, checked with
    ``read_scene``) into ``directory``/SCENE_DIR, so an asset trained on it carries it; None when
    the dataset has no scene."""
    import shutil

    source = Path(dataset) / SCENE_DIR
    if not (source / SCENE_FILE).is_file():
        return None
    scene = read_scene(source)
    target = Path(directory) / SCENE_DIR
    target.mkdir(parents=True, exist_ok=True)
    for path in (scene.background, scene.torso, source / SCENE_FILE):
        shutil.copy2(path, target / path.name)
    return target


def scene_path(directory: str | Path | None) -> str | None:
    """``directory``/scene when it holds a scene (an asset made from a photo carries one), else None."""
    if directory is None:
        return None
    d = Path(directory) / SCENE_DIR
    return str(d) if (d / SCENE_FILE).is_file() else None

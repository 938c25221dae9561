"""``load_tracked_video``: find a dataset's format, read it, and fit it to its head model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..formats import read_format_json
from ..head.data import HeadModelData
from ..types import DEMO_HEAD, FLAME_2020, FLAME_2023, Motion
from .video import TrackedVideo, Tracking

FORMATS = ("metrical", "insta", "imavatar")
#: the sidecar a dataset may carry (the synthetic dataset writes one)
SIDECAR = "being_dataset.json"
SIDECAR_FORMAT, SIDECAR_VERSION = "being-dataset", 1
DEFAULT_HEAD_MODEL = "flame2020"
DEFAULT_FPS = 25.0

#: motion space, expression and shape widths of the head models known by name (no loading needed)
_KNOWN_HEADS = {"flame2020": (FLAME_2020, 100, 300), "generic_model.pkl": (FLAME_2020, 100, 300),
                "flame2023": (FLAME_2023, 100, 300), "flame2023.pkl": (FLAME_2023, 100, 300)}


def detect_format(path: Path) -> tuple[str, Path]:
    """(format, dataset root) from the files at ``path`` (a dataset directory, or a file in one:
    a ``.frame``, a ``transforms*.json``, a ``flame_params.json``)."""
    if path.is_file():
        if path.suffix == ".json":
            return ("insta" if path.name.startswith("transforms") else "imavatar"), path.parent
        path = path.parent
    if not path.is_dir():
        raise InputError(f"{path}: no such dataset directory")
    if path.name == "checkpoint" and any(path.glob("*.frame")):
        path = path.parent
    found = []
    if (path / "checkpoint").is_dir():
        found.append("metrical")
    if any((path / f"transforms{s}.json").is_file() for s in ("", "_train", "_test", "_val")):
        found.append("insta")
    if (path / "flame_params.json").is_file():
        found.append("imavatar")
    if not found:
        raise InputError(f"{path}: not a tracked video (no checkpoint/ of metrical-tracker, transforms*.json of INSTA "
                         "or flame_params.json of IMavatar)",
                         hint="point at the dataset's directory; see docs/datasets.md")
    if len(found) > 1:
        raise InputError(f"{path}: looks like several formats ({', '.join(found)})", hint="choose one with --format")
    return found[0], path


def _read_sidecar(root: Path) -> dict:
    path = root / SIDECAR
    if not path.is_file():
        return {}
    meta = read_format_json(path, SIDECAR_FORMAT, SIDECAR_VERSION, "upgrade being to read this dataset")
    checks = {"head_model": (str,), "fps": (int, float), "test_frames": (int,)}
    for key, types in checks.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise InputError(f"{path}: '{key}' must be {' or '.join(t.__name__ for t in types)}, got {value!r}")
    return meta


def _head_dims(ref: str, root: Path) -> tuple[str, int, int, HeadModelData | None]:
    """(motion space, expression width E, shape width S, loaded HeadModelData or None) of ``ref``."""
    if ref == "demo":
        from ..head.demo.expressions import NAMES

        return DEMO_HEAD, len(NAMES), 0, None
    if ref in _KNOWN_HEADS:
        return (*_KNOWN_HEADS[ref], None)
    from ..head.refs import resolve_head_model

    data = resolve_head_model(ref, root, where=f"{root}: head_model")
    return data.motion_space, data.n_expression, data.n_shape, data


def fit_width(values: np.ndarray, width: int, what: str, sources: list[Path], ref: str) -> np.ndarray:
    """[T, W] -> [T, width]: zero-padded, or cut where the cut coefficients are all zero."""
    if values.shape[1] > width:
        nonzero = np.flatnonzero(np.any(values[:, width:] != 0, axis=1))
        if nonzero.size:
            raise InputError(f"{sources[nonzero[0]]}: {what} has nonzero coefficients beyond the {width} that "
                             f"head model {ref!r} has", hint="load it with the head model it was tracked with")
        return values[:, :width]
    return np.pad(values, ((0, 0), (0, width - values.shape[1])))


def _read(fmt: str, root: Path, path: Path, ref: str) -> Tracking:
    if fmt == "metrical":
        from .metrical import read_metrical

        return read_metrical(root)
    if fmt == "insta":
        from .insta import read_insta

        return read_insta(root, ref)
    from .imavatar import read_imavatar

    return read_imavatar(root, path if path.suffix == ".json" else None)


def load_tracked_video(path: str | Path, *, format: str = "auto", head_model: str | None = None,
                       test_frames: int | None = None) -> TrackedVideo:
    """Read a tracked talking-head video in metrical-tracker, INSTA or IMavatar format.

    format: "auto" (from the files present), "metrical", "insta" or "imavatar".
    head_model: a head-model reference; default the dataset's ``being_dataset.json`` value, else
    "flame2020". test_frames: default the sidecar's value, else the format's own split (INSTA's
    transforms_test.json), else max(1, round(0.1 T)) (at most T - 1).
    Every problem with the files is an InputError naming the file.
    """
    path = Path(path).expanduser()
    if format == "auto":
        format, root = detect_format(path)
    elif format in FORMATS:
        root = path.parent if path.is_file() else path
        if format == "metrical" and root.name == "checkpoint":
            root = root.parent
    else:
        raise InputError(f"unknown dataset format {format!r}", hint=f"use auto, {', '.join(FORMATS)}")
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset directory")
    sidecar = _read_sidecar(root)
    ref = head_model or sidecar.get("head_model") or DEFAULT_HEAD_MODEL
    space, n_expr, n_shape, loaded = _head_dims(ref, root)

    raw = _read(format, root, path, ref)
    n = len(raw)
    fps = float(sidecar.get("fps") or DEFAULT_FPS)
    expression = fit_width(raw.expression, n_expr, "expression", raw.sources, ref)
    if raw.shape is None and n_shape:
        raise InputError(f"{raw.shape_source}: missing (the identity coefficients for head model {ref!r})",
                         hint="write the tracker's flame shape there, one value per line")
    stored_shape = np.zeros(0) if raw.shape is None else raw.shape
    shape = fit_width(stored_shape[None], n_shape, "shape", [raw.shape_source], ref)[0]
    f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    motion = Motion(f32(expression), f32(raw.global_rot), f32(raw.neck), f32(raw.jaw), f32(raw.eyes),
                    f32(raw.eyelids), f32(raw.translation), fps=fps, space=space)

    if test_frames is None:
        test_frames = sidecar.get("test_frames", raw.test_frames)
    if test_frames is None:
        test_frames = min(max(1, round(0.1 * n)), n - 1)
    if not 0 <= test_frames <= n:
        raise InputError(f"{root}: test_frames {test_frames} outside 0..{n} (the video has {n} frames)")
    video = TrackedVideo(root=root, format=format, motion=motion, shape=f32(shape), cameras=raw.cameras,
                         image_paths=raw.image_paths, mask_paths=raw.mask_paths, head_model=ref, fps=fps,
                         test_frames=int(test_frames))
    video._head = loaded
    return video

"""The project's own file formats are safetensors plus a JSON file that names the format and its
version; this reads and checks that JSON file the same way for all of them."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError


def read_format_json(path: Path, name: str, max_version: int, upgrade_hint: str) -> dict:
    """``path``'s JSON object, checked to be ``{"format": name, "format_version": 1..max_version, ...}``.

    A newer version than this code reads is refused with ``upgrade_hint``; anything else that is
    wrong (unreadable, not JSON, another format) is an InputError naming the file."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != name:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise InputError(f"{path}: not a '{name}' file" + (f" (it is a '{found}' file)" if isinstance(found, str) else ""),
                         hint=f"another plugin wrote it: use the one whose files are '{found}' (e.g. "
                         f"--avatar flash for 'being-flash-avatar')" if isinstance(found, str) else None)
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"{path}: format_version {version!r} is not a version number")
    if version > max_version:
        raise InputError(f"{path}: format version {version} is newer than this software reads (format_version "
                         f"{version} > {max_version})", hint=upgrade_hint)
    return meta


def check_tensors(tensors: dict, layout: dict, where: str, file: str, rows_from: str) -> int:
    """Check ``tensors`` (name -> torch tensor) against ``layout`` (name -> (trailing shape, dtype)):
    each present, shaped [N, *trailing] with N the length of ``rows_from``, of its dtype. Returns N;
    InputError naming the first tensor that is missing or wrong."""
    for key in layout:
        if key not in tensors:
            raise InputError(f"{where}: tensor '{key}' is missing from {file}",
                             hint=f"the file stores {', '.join(layout)}")
    n = int(tensors[rows_from].shape[0]) if tensors[rows_from].ndim else -1
    for key, (tail, dtype) in layout.items():
        t = tensors[key]
        if tuple(t.shape) != (n, *tail):
            raise InputError(f"{where}: tensor '{key}' has shape {tuple(t.shape)}, expected {(n, *tail)} "
                             f"(N = {n} from {rows_from})")
        if t.dtype != dtype:
            raise InputError(f"{where}: tensor '{key}' has dtype {t.dtype}, expected {dtype}")
    return n


def check_camera_record(camera: object, where: str) -> None:
    """InputError unless ``camera`` is ``{width, height, K: 3x3, R: 3x3, t: 3}`` (being_kernel.render.framing)."""
    import numpy as np

    try:
        ok = (np.asarray(camera["K"], float).shape == (3, 3) and np.asarray(camera["R"], float).shape == (3, 3)
              and np.asarray(camera["t"], float).shape == (3,) and int(camera["width"]) > 0 and int(camera["height"]) > 0)
    except (KeyError, TypeError, ValueError, IndexError):
        ok = False
    if not ok:
        raise InputError(f"{where}: camera must be {{width, height, K: 3x3, R: 3x3, t: 3}}, got {camera!r}")


def camera_record(camera: dict) -> dict:
    """A camera record (lists, arrays or tensors) as plain JSON values."""
    import numpy as np

    return {"width": int(camera["width"]), "height": int(camera["height"]),
            **{k: np.asarray(camera[k], float).tolist() for k in ("K", "R", "t")}}

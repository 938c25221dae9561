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
        raise InputError(f"{path}: not a '{name}' file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"{path}: format_version {version!r} is not a version number")
    if version > max_version:
        raise InputError(f"{path}: format version {version} is newer than this software reads (format_version "
                         f"{version} > {max_version})", hint=upgrade_hint)
    return meta

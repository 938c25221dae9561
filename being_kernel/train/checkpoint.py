"""Resumable training checkpoints: one weights-only file, written atomically, that names the
dataset and config it belongs to (a fingerprint) so a run never resumes from another's state."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..weights import safe_torch_load

CHECKPOINT = "checkpoint.pt"
#: Bumped when the layout below changes; older checkpoints are refused with advice.
CHECKPOINT_VERSION = 2


def fingerprint(parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able ``parts`` (data path and size, config, method specifics)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` (tensors and plain values) to ``path`` atomically: a hidden sibling renamed
    over it, so a crash mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        torch.save({"version": CHECKPOINT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path, expected_fingerprint: str) -> dict:
    """The state saved at ``path``; InputError with advice when it is unreadable, of another
    version, or of another dataset or configuration."""
    state = safe_torch_load(path, what="training checkpoint", hint="delete it or pass --restart to train from scratch")
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"{path} was written by another version of the trainer",
                         hint="pass --restart to discard it, or use another --work directory")
    if state.get("fingerprint") != expected_fingerprint:
        raise InputError(f"{path} belongs to another dataset or configuration",
                         hint="pass --restart to discard it, or use another --work directory")
    return state

"""What the dataset readers share: reading the small files of a dataset (JSON objects, text
files of numbers, images), stacking per-frame cameras, and bringing stored coefficient widths to
a head model's; and writing a dataset folder atomically (``writing_dataset``). Readers import
this module and never each other."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras
from ..errors import InputError
from ..media.images import read_image

#: the sidecar a dataset of any format may carry: head model, frame rate, split, audio track
SIDECAR = "being_dataset.json"
SIDECAR_FORMAT, SIDECAR_VERSION = "being-dataset", 1


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; InputError naming the file if it is unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_txt(path: Path, width: int | None, hint: str | None = None) -> np.ndarray:
    """Numbers in a text file (whitespace separated) as float64 [width] (any width if None)."""
    if not path.is_file():
        raise InputError(f"{path}: missing", hint=hint)
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1).reshape(-1)
    except ValueError as exc:
        raise InputError(f"{path}: not a list of numbers ({exc})") from exc
    if (width is not None and values.size != width) or values.size == 0:
        raise InputError(f"{path}: expected {width or 'some'} values, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path}: not finite")
    return values


def pad_or_cut_width(values: np.ndarray, width: int, what: str, sources: list[Path], ref: str) -> np.ndarray:
    """[T, W] -> [T, width]: zero-padded, or cut where the cut coefficients are all zero;
    InputError naming the first frame's source with a nonzero cut coefficient otherwise."""
    if values.shape[1] > width:
        nonzero = np.flatnonzero(np.any(values[:, width:] != 0, axis=1))
        if nonzero.size:
            raise InputError(f"{sources[nonzero[0]]}: {what} has nonzero coefficients beyond the {width} that "
                             f"head model {ref!r} has", hint="load it with the head model it was tracked with")
        return values[:, :width]
    return np.pad(values, ((0, 0), (0, width - values.shape[1])))


def stack_cameras(cams: list[Cameras]) -> Cameras:
    """One batch of the single cameras ``cams`` (all of the first one's size)."""
    return Cameras(*(torch.cat([getattr(c, k) for c in cams]) for k in "RtK"), cams[0].width, cams[0].height)


def check_image_files(paths: list[Path], what: str = "image") -> None:
    """InputError naming the first of ``paths`` that is not a file."""
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: {what} missing", hint="restore the file, or re-export the dataset")


def first_image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image at ``path``."""
    check_image_files([path])
    pixels = read_image(path)
    return int(pixels.shape[1]), int(pixels.shape[0])


def has_alpha(path: Path) -> bool:
    """Whether the image at ``path`` has an alpha channel."""
    return read_image(path).shape[2] == 4


def check_dataset_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder without ``overwrite``; create its parent."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory", hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: exists and is not empty", hint="choose another --out, or pass --overwrite to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create its folder ({e.strerror or e})", hint="choose a writable --out") from None
    if not os.access(out.parent, os.W_OK):
        raise InputError(f"{out.parent}: not writable", hint="choose a writable --out")


@contextmanager
def writing_dataset(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Write a dataset atomically: yields a hidden sibling folder of ``out`` to fill, which
    replaces ``out`` when the block ends normally and is removed on any exception, Ctrl-C
    included, so ``out`` is either the complete dataset or untouched."""
    check_dataset_out(out, overwrite)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


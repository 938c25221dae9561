"""The dataset-reader registry: which tracked-video formats ``load_tracked_video`` can read.

A format is a :class:`DatasetReader`: a name (the ``--format`` value), a one-line description,
``detect`` (is this path a dataset of mine, and where is its root?) and ``read`` (the frames'
tracking, in the kernel's conventions). The built-in readers (metrical, insta, imavatar) are
registered here; others come from :func:`register_reader` or from the entry-point group
``being.datasets``, whose entry points each name a ``DatasetReader`` instance. A broken entry
point is reported in one line on stderr and skipped, like a broken plugin (docs/datasets.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from ..errors import InputError
from . import imavatar, insta, metrical
from .video import Tracking

ENTRY_POINT_GROUP = "being.datasets"


@dataclass(frozen=True)
class DatasetReader:
    """One tracked-video format.

    name         the ``format=`` / ``--format`` value (a word; not "auto")
    description  one line saying what the format's files are
    detect       ``detect(path) -> root | None``: ``path`` is what the user gave (the dataset
                 directory, or a file or folder inside it); the dataset's root directory when
                 it is of this format, else None. Cheap: it looks at file names, reads nothing big.
    read         ``read(root, path, head_model) -> Tracking``: the frames of the dataset at
                 ``root`` (``path`` as given, ``head_model`` the head-model reference it will be
                 loaded with); every problem with the files is an InputError naming the file
    """

    name: str
    description: str
    detect: Callable[[Path], Path | None]
    read: Callable[[Path, Path, str], Tracking]

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name == "auto":
            raise ValueError(f"DatasetReader name must be a word other than 'auto', got {self.name!r}")
        if not self.description or "\n" in self.description:
            raise ValueError(f"DatasetReader {self.name!r}: the description must be one non-empty line")


_BUILTIN = (
    DatasetReader("metrical", metrical.DESCRIPTION, metrical.detect, metrical.read),
    DatasetReader("insta", insta.DESCRIPTION, insta.detect, insta.read),
    DatasetReader("imavatar", imavatar.DESCRIPTION, imavatar.detect, imavatar.read),
)
_readers: dict[str, DatasetReader] = {r.name: r for r in _BUILTIN}
_entry_points_loaded = False


def register_reader(reader: DatasetReader) -> None:
    """Make ``reader`` available to ``load_tracked_video`` (and auto-detection). Registering the
    same reader again does nothing; another reader under a taken name is a ValueError."""
    if not isinstance(reader, DatasetReader):
        raise TypeError(f"register_reader takes a DatasetReader, got {type(reader).__name__}")
    taken = _readers.get(reader.name)
    if taken is not None and taken is not reader:
        raise ValueError(f"a dataset reader named {reader.name!r} is already registered ({taken.description})")
    _readers[reader.name] = reader


def load_entry_points(found: Iterable[EntryPoint] | None = None) -> list[str]:
    """Register the readers that the ``being.datasets`` entry points name (``found``: those
    entry points, default the installed ones). Returns one line per entry point that could not
    be used, each also printed on stderr; the others are registered."""
    problems = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP) if found is None else found, key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        where = f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value
        try:
            reader = ep.load()
            if not isinstance(reader, DatasetReader):
                raise TypeError(f"entry point {ep.value} is a {type(reader).__name__}, not a DatasetReader")
            if reader.name != ep.name:
                raise ValueError(f"the entry point is named {ep.name!r} but its reader {reader.name!r}")
            register_reader(reader)
        except Exception as exc:  # noqa: BLE001 - a broken third-party reader is reported, never raised
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
            problems.append(f"dataset reader '{ep.name}' ({where}) is broken: {why} -> upgrade or uninstall it")
            print(f"being: warning: {problems[-1]}", file=sys.stderr)
    return problems


def readers() -> dict[str, DatasetReader]:
    """Every registered reader by name: the built-ins, then the installed entry points (loaded
    on the first call), then those registered in this process."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        load_entry_points()
    return dict(_readers)


def get_reader(name: str) -> DatasetReader:
    """The reader registered as ``name``; InputError listing the registered names otherwise."""
    known = readers()
    if name not in known:
        raise InputError(f"unknown dataset format {name!r}", hint=f"use auto or one of: {', '.join(known)}")
    return known[name]


def detect_format(path: Path) -> tuple[str, Path]:
    """(format, dataset root) from the files at ``path`` (a dataset directory, or a file or folder
    in one); InputError if no registered reader, or more than one, recognises it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such dataset directory")
    found = [(name, root) for name, reader in readers().items() if (root := reader.detect(path)) is not None]
    if not found:
        formats = "; ".join(f"{name}: {r.description}" for name, r in readers().items())
        raise InputError(f"{path}: not a tracked video of any registered format ({formats})",
                         hint="point at the dataset's directory; see docs/datasets.md")
    if len(found) > 1:
        raise InputError(f"{path}: looks like several formats ({', '.join(n for n, _ in found)})",
                         hint="choose one with --format")
    return found[0]

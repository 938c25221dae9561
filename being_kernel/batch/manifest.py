"""The batch manifest, ``OUT/manifest.json``: each task's state, attempts, time, outputs and
error, rewritten atomically after every change, so a rerun knows what is done and an
interrupted batch loses nothing it finished.

    {"format": "being-batch-manifest", "version": 1,
     "tasks": {"render/talks/viseme+splatting+static/intro":
               {"kind": "render", "state": "done", "key": "…", "out": "render/…/intro.mp4",
                "attempts": 1, "seconds": 3.2, "error": null, "detail": "100 frames", "finished": "…"}}}

States: ``done``, ``failed`` (every attempt failed), ``interrupted`` (stopped by Ctrl-C; a rerun
does it again)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InputError
from .plan import Task

FORMAT, VERSION = "being-batch-manifest", 1
FILE = "manifest.json"


@dataclass
class Record:
    kind: str
    state: str  # done | failed | interrupted
    key: str
    out: str
    attempts: int
    seconds: float
    error: str | None = None
    detail: str | None = None
    finished: str | None = None


class Manifest:
    """The records of a batch folder, keyed by task id."""

    def __init__(self, root: Path, records: dict[str, Record] | None = None) -> None:
        self.root, self.records = root, records or {}

    @classmethod
    def open(cls, root: Path) -> Manifest:
        """The manifest in ``root``, or an empty one; InputError for one this version cannot read."""
        path = root / FILE
        if not path.exists():
            return cls(root)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
            if data.get("version", 0) > VERSION:
                raise InputError(f"{path} was written by a newer being (manifest version {data['version']})",
                                 "upgrade being, or use another --out")
            return cls(root, {k: Record(**v) for k, v in data["tasks"].items()})
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a being batch manifest: {exc}",
                             "use another --out, or delete the file to start the batch over") from None

    def is_done(self, task: Task) -> bool:
        """Finished before with the same inputs and settings, and its output is still there."""
        rec = self.records.get(task.id)
        return rec is not None and rec.state == "done" and rec.key == task.key and (self.root / task.out).exists()

    def record(self, task: Task, state: str, attempts: int, seconds: float, error: str | None = None,
               detail: str | None = None) -> Record:
        rec = Record(task.kind, state, task.key, task.out, attempts, round(seconds, 3), error, detail,
                     datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.records[task.id] = rec
        self.save()
        return rec

    def save(self) -> None:
        """Write atomically: a temporary file beside the manifest, renamed over it."""
        data = {"format": FORMAT, "version": VERSION, "tasks": {k: asdict(v) for k, v in sorted(self.records.items())}}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, self.root / FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

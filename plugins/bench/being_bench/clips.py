"""The speech clips a bench runs on, found without assuming where anything is installed.

In order: the ``--clips`` paths; else the paths in ``$BEING_BENCH_CLIPS`` (separated by
``os.pathsep``); else the kernel's built-in demo speech, which has no phone timing (so its lip
figures say why they are missing). A path is an audio file, or a folder searched recursively
for .wav and .flac files. A clip's phone timing is the Festival ``.segs`` file beside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from being_kernel import InputError

from .schema import Clip

ENV_CLIPS = "BEING_BENCH_CLIPS"
#: What a folder is searched for (an explicit file may be any format the kernel decodes).
FOLDER_SUFFIXES = (".wav", ".flac")
#: Length of the demo speech used when no clip is given.
DEMO_CLIP_S = 5.0
DEMO_CLIP = "demo_speech"

_HINT = "give audio files (wav, flac, ogg, mp3) or folders holding .wav/.flac files"


def _expand(path: Path, where: str) -> list[Path]:
    path = path.expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in FOLDER_SUFFIXES and p.is_file())
        if not found:
            raise InputError(f"{where} {path}: no .wav or .flac file in this folder", _HINT)
        return found
    raise InputError(f"{where} {path}: no such file or folder", _HINT)


def find_clips(paths: Sequence[Path], env: Mapping[str, str] | None = None,
               demo_seconds: float = DEMO_CLIP_S) -> list[Clip]:
    """The clips to run (see the module doc). ``env``: the environment (default ``os.environ``).

    Clips are named by their file stem, or ``folder/stem`` where two stems collide."""
    env = os.environ if env is None else env
    where = "--clips"
    if not paths and env.get(ENV_CLIPS):
        paths, where = [Path(p) for p in env[ENV_CLIPS].split(os.pathsep) if p], f"${ENV_CLIPS}"
    if not paths:
        return [Clip(name=DEMO_CLIP, path=None, duration_s=demo_seconds)]
    files = list(dict.fromkeys(f.resolve() for p in paths for f in _expand(Path(p), where)))
    stems = [f.stem for f in files]
    clips = []
    for f in files:
        segs = f.with_suffix(".segs")
        clips.append(Clip(name=f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}/{f.stem}", path=str(f),
                          segs=str(segs) if segs.is_file() else None))
    return clips

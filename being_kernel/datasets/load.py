"""``load_tracked_video``: find a dataset's format, read it with its registered reader, and bring
its coefficients to the widths of its head model."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch

from ..errors import InputError
from ..formats import read_format_json
from ..head.data import HeadModelData
from ..types import DEMO_HEAD, FLAME_2020, FLAME_2023, Motion
from .common import SIDECAR, SIDECAR_FORMAT, SIDECAR_VERSION, pad_or_cut_width
from .registry import detect_format, get_reader
from .video import TrackedVideo

DEFAULT_HEAD_MODEL = "flame2020"
DEFAULT_FPS = 25.0
#: audio files looked for in a dataset's root when the sidecar names none, in this order
AUDIO_NAMES = ("audio.wav", "audio.flac", "audio.mp3", "audio.m4a")
#: metrical-tracker's input video, which keeps the recording's sound when it had any
SOURCE_VIDEO = "video.mp4"

#: motion space, expression and shape widths of the head models known by name (no loading needed)
_KNOWN_HEADS = {"flame2020": (FLAME_2020, 100, 300), "generic_model.pkl": (FLAME_2020, 100, 300),
                "flame2023": (FLAME_2023, 100, 300), "flame2023.pkl": (FLAME_2023, 100, 300)}


def _read_sidecar(root: Path) -> dict:
    path = root / SIDECAR
    if not path.is_file():
        return {}
    meta = read_format_json(path, SIDECAR_FORMAT, SIDECAR_VERSION, "upgrade being to read this dataset")
    checks = {"head_model": (str,), "fps": (int, float), "test_frames": (int,), "audio": (str,), "full_frame": (bool,)}
    for key, types in checks.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
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


def _has_audio_stream(path: Path) -> bool:
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError, ValueError):
        return False  # an unreadable video offers no sound; the frames come from the images anyway


def find_audio(root: Path, sidecar: dict) -> Path | None:
    """The dataset's audio track: the sidecar's ``audio`` (relative to ``root``; InputError if
    missing), else the first of AUDIO_NAMES in ``root``, else ``root/video.mp4`` if it has an audio
    stream, else None."""
    if sidecar.get("audio") is not None:
        path = root / sidecar["audio"]
        if not path.is_file():
            raise InputError(f"{root / SIDECAR}: 'audio' names {path}, which is missing",
                             hint="restore the file, or remove the key")
        return path
    found = next((root / n for n in AUDIO_NAMES if (root / n).is_file()), None)
    if found is None and (root / SOURCE_VIDEO).is_file() and _has_audio_stream(root / SOURCE_VIDEO):
        found = root / SOURCE_VIDEO
    return found


def load_tracked_video(path: str | Path, *, format: str = "auto", head_model: str | None = None,
                       test_frames: int | None = None) -> TrackedVideo:
    """Read a tracked talking-head video in any registered format (metrical-tracker, INSTA,
    IMavatar, and those of installed ``being.datasets`` readers; see ``registry``).

    format: "auto" (the one reader that recognises the files) or a registered reader's name.
    head_model: a head-model reference; default the dataset's ``being_dataset.json`` value, else
    "flame2020". test_frames: default the sidecar's value, else the format's own split (INSTA's
    transforms_test.json), else max(1, round(0.1 T)) (at most T - 1).
    Every problem with the files is an InputError naming the file.
    """
    path = Path(path).expanduser()
    if format == "auto":
        format, root = detect_format(path)
        reader = get_reader(format)
    else:
        reader = get_reader(format)
        # a directory the reader does not recognise is still read: its errors name the missing file
        root = reader.detect(path) or (path.parent if path.is_file() else path)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset directory")
    sidecar = _read_sidecar(root)
    ref = head_model or sidecar.get("head_model") or DEFAULT_HEAD_MODEL
    space, n_expr, n_shape, loaded = _head_dims(ref, root)

    raw = reader.read(root, path, ref)
    n = len(raw)
    fps = float(sidecar.get("fps") or DEFAULT_FPS)
    expression = pad_or_cut_width(raw.expression, n_expr, "expression", raw.sources, ref)
    if raw.shape is None and n_shape:
        raise InputError(f"{raw.shape_source}: missing (the identity coefficients for head model {ref!r})",
                         hint="write the tracker's flame shape there, one value per line")
    stored_shape = np.zeros(0) if raw.shape is None else raw.shape
    shape = pad_or_cut_width(stored_shape[None], n_shape, "shape", [raw.shape_source], ref)[0]
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
                         test_frames=int(test_frames), audio_path=find_audio(root, sidecar),
                         full_frame=bool(sidecar.get("full_frame", False)))
    video._head = loaded
    return video

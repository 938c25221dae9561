"""The dataset a trainer gets, by the kind its spec declares (``TrainerSpec.dataset``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..spec import DatasetKind


def load_fit_data(kind: DatasetKind, path: Path, *, format: str = "auto", head_model: str | None = None,
                  test_frames: int | None = None):  # noqa: ANN201 - a TrackedVideo for every kind so far
    """Read the dataset at ``path`` for a trainer of dataset ``kind``; InputError saying what the
    method needs when the dataset lacks it."""
    from ..datasets import load_tracked_video

    video = load_tracked_video(path, format=format, head_model=head_model, test_frames=test_frames)
    if kind == "full-frame" and not video.full_frame:
        raise InputError(f"{video.root}: this method trains on full frames (person and torso masks, a background), "
                         "but the dataset holds head crops",
                         hint="a full-frame dataset says \"full_frame\": true in its being_dataset.json (docs/datasets.md)")
    if kind == "audio-motion":
        if video.audio_path is None:
            raise InputError(f"{video.root}: this method learns motion from speech, but the dataset has no audio track",
                             hint="put the video's audio beside the tracking as audio.wav (docs/datasets.md)")
    return video

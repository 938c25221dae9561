"""Tracked talking-head videos: monocular videos with per-frame FLAME tracking, read from the
formats users have (metrical-tracker, INSTA, IMavatar, or any format a registered reader knows)
into the kernel's conventions, and the synthetic benchmark dataset (``make_synthetic``).
See docs/datasets.md. This module is the public surface; its submodules are private.

    video = load_tracked_video("data/actor")            # format and head model detected
    train, test = video.split()
    vertices = FlameModel(video.head())(video.motion, video.shape).vertices   # [T, V, 3]
    pixels, depth = video.cameras.project(vertices)                          # onto video.load_image(i)
    audio = video.load_audio()                                               # None without a sound track
"""

from .load import load_tracked_video
from .registry import DatasetReader, detect_format, get_reader, readers, register_reader
from .synthetic import make_synthetic
from .video import TrackedVideo, Tracking

__all__ = ["DatasetReader", "TrackedVideo", "Tracking", "detect_format", "get_reader", "load_tracked_video",
           "make_synthetic", "readers", "register_reader"]

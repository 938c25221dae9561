"""Tracked talking-head videos: monocular videos with per-frame FLAME tracking, read from the
formats users have (metrical-tracker, INSTA, IMavatar) into the kernel's conventions, and the
synthetic benchmark dataset (``synthetic.make_synthetic``). See docs/datasets.md.

    video = load_tracked_video("data/actor")            # format and head model detected
    train, test = video.split()
    vertices = FlameModel(video.head())(video.motion, video.shape).vertices   # [T, V, 3]
    pixels, depth = video.cameras.project(vertices)                          # onto video.load_image(i)
"""

from .load import FORMATS, detect_format, load_tracked_video
from .video import TrackedVideo

__all__ = ["FORMATS", "TrackedVideo", "detect_format", "load_tracked_video"]

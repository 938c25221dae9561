"""Tracked talking-head videos: monocular videos with per-frame FLAME tracking, read from the
formats users have (metrical-tracker, INSTA, IMavatar, or any format a registered reader knows)
into the kernel's conventions, and the synthetic benchmark dataset (``make_synthetic``).
See docs/datasets.md. This module is the public surface; its submodules are private.

    video = load_tracked_video("data/actor")            # format and head model detected
    train, test = video.split()
    vertices = FlameModel(video.head())(video.motion, video.shape).vertices   # [T, V, 3]
    pixels, depth = video.cameras.project(vertices)                          # onto video.load_image(i)
    audio = video.load_audio()                                               # None without a sound track

Writers (``being prepare``, ``make_synthetic``) produce metrical-tracker output with
``make_frame`` (one checkpoint's dictionary) in ``CHECKPOINT_DIR``, images in ``IMAGE_DIR`` and
masks in ``MASK_DIR``, and the sidecar ``SIDECAR`` (``SIDECAR_FORMAT``, ``SIDECAR_VERSION``), all
inside ``with writing_dataset(out, overwrite) as tmp:`` (complete or nothing under ``out``).

Full-frame datasets (``"full_frame": true``, for torso methods) also hold person, head and torso
masks (``PERSON_DIR``, ``HEAD_DIR``, ``TORSO_DIR``) and the background plate (``BACKGROUND_FILE``),
read together by ``load_full_frames`` (``FullFrames``).

A ``Scene`` (``SCENE_DIR`` in a dataset or an avatar: a photo's background plate, torso layer, neck
position and head scale) is written by ``write_scene`` and read by ``read_scene``.
"""

from .full_frame import BACKGROUND_FILE, HEAD_DIR, PERSON_DIR, TORSO_DIR, FullFrames, check_full_frame, load_full_frames
from .common import SIDECAR, SIDECAR_FORMAT, SIDECAR_VERSION, check_dataset_out, writing_dataset
from .load import load_tracked_video
from .metrical import CHECKPOINT_DIR, IMAGE_DIR, MASK_DIR, make_frame
from .registry import DatasetReader, detect_format, get_reader, readers, register_reader
from .scene import SCENE_DIR, SCENE_FILE, Scene, copy_scene, read_scene, scene_path, write_scene
from .synthetic import make_synthetic, synthetic_motion
from .synthetic_torso import full_frame_camera
from .video import TrackedVideo, Tracking

__all__ = ["BACKGROUND_FILE", "FullFrames", "HEAD_DIR", "PERSON_DIR", "TORSO_DIR", "check_full_frame", "load_full_frames", "full_frame_camera",
           "CHECKPOINT_DIR", "DatasetReader", "IMAGE_DIR", "MASK_DIR", "SCENE_DIR", "SCENE_FILE", "SIDECAR",
           "SIDECAR_FORMAT", "SIDECAR_VERSION", "Scene", "TrackedVideo", "Tracking", "check_dataset_out", "detect_format",
           "copy_scene", "get_reader", "load_tracked_video", "make_frame", "make_synthetic", "read_scene", "scene_path", "readers", "register_reader",
           "synthetic_motion", "write_scene", "writing_dataset"]

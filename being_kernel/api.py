"""What plugin implementations use from the kernel's core: the contracts, the data that flows
between them, cameras, devices, weights, and the discovery, config and pipeline pieces that tools
such as ``being bench`` build on.

The kernel's public surface, which ``KERNEL_API_VERSION`` covers, is this module, the light
``being_kernel`` package (what spec modules need: ``PluginSpec``, ``PluginConfig``, the config
field types and the errors) and the service packages' top-level modules: ``being_kernel.head``,
``render``, ``datasets``, ``metrics``, ``media``, ``train``, ``evaluation``, ``testing`` and
``hooks``. Everything else (``being_kernel.types``, ``being_kernel.head.flame``, ``being_kernel.cli``,
...) is private and may change in any release. Each public name lives in one of those modules
only: this module does not repeat what ``being_kernel`` exports.

Importing this module imports torch.
"""

from __future__ import annotations

from .cameras import Cameras
from .config import build as build_config
from .config import load_file as load_config_file
from .config import merge as merge_config
from .config import check_device, parse_sets, parse_size
from .contracts import (AudioToFlame, AudioToFlameInfo, FlameRenderer, FlameRendererInfo, FramewiseRenderStream,
                        FramewiseStream, Stream,
                        TorsoCompositor, TorsoCompositorInfo)
from .devices import default_device, resolve_device
from .discovery import PluginRecord, Registry, build_named, build_plugin
from .formats import camera_record, check_camera_record, check_tensors, read_format_json
from .pipeline import FrameSink, RunResult, StageCheck, check_stages, close_all, packet_frames, pose_only, run_pipeline
from .types import DEMO_HEAD, FLAME_2020, FLAME_2023, POSE_FIELDS, Audio, Frame, HeadPose, Motion, Placement, frames_for, head_poses
from .weights import MissingWeights, find_weights, load_strict, safe_checkpoint_load, safe_torch_load

__all__ = [
    # the contracts (docs/writing-a-plugin.md)
    "AudioToFlame", "AudioToFlameInfo", "FlameRenderer", "FlameRendererInfo", "TorsoCompositor", "TorsoCompositorInfo",
    "Stream", "FramewiseStream", "FramewiseRenderStream",
    # the data between stages
    "Audio", "Motion", "Frame", "Placement", "HeadPose", "head_poses", "frames_for", "POSE_FIELDS",
    "FLAME_2020", "FLAME_2023", "DEMO_HEAD", "Cameras",
    # devices, weights, the kernel's versioned file formats
    "resolve_device", "default_device", "find_weights", "safe_torch_load", "safe_checkpoint_load", "MissingWeights",
    "load_strict",
    "read_format_json",
    "check_tensors", "check_camera_record", "camera_record",
    # discovery, config and the pipeline, as `being run` uses them (for tools such as `being bench`)
    "Registry", "PluginRecord", "build_plugin", "build_named",
    "packet_frames", "parse_sets", "load_config_file", "merge_config", "build_config", "parse_size", "check_device",
    "check_stages", "StageCheck", "run_pipeline", "RunResult", "FrameSink", "close_all", "pose_only",
]

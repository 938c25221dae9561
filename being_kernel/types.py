"""The data that flows between stages: audio, motion, head poses and frames.

Shapes use ``T`` for frames, ``N`` for audio samples, ``E`` for expression coefficients,
``H``/``W`` for image height and width. Motion and frames are torch tensors (they live on the
device of the stage that made them); audio is a numpy array (it comes from media I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Sequence

import numpy as np
import torch

from .cameras import Cameras

#: The pose fields of one motion frame, in FLAME layout, and their widths.
POSE_FIELDS: dict[str, int] = {
    "global_rot": 3,  # axis-angle rotation of the head+neck about the neck-base (root) joint
    "neck": 3,  # axis-angle, neck joint
    "jaw": 3,  # axis-angle, jaw joint
    "eyes": 6,  # axis-angle, left eye then right eye
    "eyelids": 2,  # FLAME 2023 eyelid blendshape weights, left then right (0 open, 1 closed)
    "translation": 3,  # metres, in the head model's frame
}

#: Motion-space ids the kernel knows by name. Plugins may declare others.
FLAME_2020 = "flame2020"  # the 100 FLAME 2020 expression PCA weights (ARTalk, EMOTE, ...)
FLAME_2023 = "flame2023"
DEMO_HEAD = "being-demo-head"  # the kernel's procedural head; its expression bases are named


@dataclass(frozen=True)
class Audio:
    """Mono audio: ``samples`` float32 ``[N]`` in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError(f"Audio.samples must be float32 [N], got {self.samples.dtype} {self.samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"Audio.sample_rate must be positive, got {self.sample_rate}")

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def num_frames(self, fps: float) -> int:
        """Frames a video of this audio has at ``fps``: round(duration x fps), the frame-exact rule."""
        return frames_for(len(self.samples), self.sample_rate, fps)


def frames_for(num_samples: int, sample_rate: int, fps: float) -> int:
    """round(num_samples / sample_rate x fps), computed without float drift for long inputs."""
    from fractions import Fraction

    return round(Fraction(num_samples) * Fraction(fps).limit_denominator(1001) / sample_rate)


@dataclass
class Motion:
    """A sequence of FLAME-layout motion frames at ``fps`` in the motion space ``space``.

    expression  [T, E]  coefficients whose meaning belongs to ``space``
    global_rot  [T, 3]  axis-angle        neck [T, 3]   jaw [T, 3]
    eyes        [T, 6]  axis-angle, left then right
    eyelids     [T, 2]  left, right       translation [T, 3] metres
    """

    expression: torch.Tensor
    global_rot: torch.Tensor
    neck: torch.Tensor
    jaw: torch.Tensor
    eyes: torch.Tensor
    eyelids: torch.Tensor
    translation: torch.Tensor
    fps: float = 25.0
    space: str = FLAME_2020

    def __post_init__(self) -> None:
        t = self.expression.shape[0]
        if self.expression.ndim != 2:
            raise ValueError(f"Motion.expression must be [T, E], got {tuple(self.expression.shape)}")
        for name, width in POSE_FIELDS.items():
            value = getattr(self, name)
            if tuple(value.shape) != (t, width):
                raise ValueError(f"Motion.{name} must be [{t}, {width}], got {tuple(value.shape)}")
        if self.fps <= 0:
            raise ValueError(f"Motion.fps must be positive, got {self.fps}")

    @classmethod
    def zeros(
        cls,
        num_frames: int,
        n_expression: int,
        *,
        fps: float = 25.0,
        space: str = FLAME_2020,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Motion:
        """A neutral, still sequence of ``num_frames`` frames."""
        z = lambda w: torch.zeros(num_frames, w, device=device, dtype=dtype)  # noqa: E731
        return cls(z(n_expression), **{k: z(w) for k, w in POSE_FIELDS.items()}, fps=fps, space=space)

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0])

    @property
    def n_expression(self) -> int:
        return int(self.expression.shape[1])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The per-frame tensors by field name (expression first, then POSE_FIELDS order)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("fps", "space")}

    def _map(self, fn) -> Motion:
        return replace(self, **{k: fn(v) for k, v in self.tensors().items()})

    def slice(self, start: int, stop: int) -> Motion:
        """Frames ``[start, stop)``."""
        return self._map(lambda v: v[start:stop])

    def select(self, index: torch.Tensor | Sequence[int]) -> Motion:
        """Frames ``index`` ([K] int), in that order."""
        index = torch.as_tensor(index, dtype=torch.int64)
        return self._map(lambda v: v[index.to(v.device)])

    def to(self, device: torch.device | str) -> Motion:
        return self._map(lambda v: v.to(device))

    @staticmethod
    def cat(parts: Sequence[Motion]) -> Motion:
        """Concatenate along time; all parts must share fps, space and expression width."""
        if not parts:
            raise ValueError("Motion.cat needs at least one part")
        first = parts[0]
        for p in parts[1:]:
            if (p.fps, p.space, p.n_expression) != (first.fps, first.space, first.n_expression):
                raise ValueError("Motion.cat: parts differ in fps, space or expression width")
        return replace(first, **{k: torch.cat([getattr(p, k) for p in parts]) for k in first.tensors()})


@dataclass(frozen=True)
class Placement:
    """Where a rendered head sits in its own image, so a compositor can put it on a body.

    anchor_xy:    pixel position (x right, y down) of the neck base (the FLAME root joint)
    px_per_metre: image scale at the anchor's depth
    """

    anchor_xy: tuple[float, float]
    px_per_metre: float


#: The pose fields a HeadPose carries: what moves the head and neck as a whole, and the jaw.
HEAD_POSE_FIELDS: tuple[str, ...] = ("global_rot", "neck", "jaw", "translation")


@dataclass(frozen=True, eq=False)
class HeadPose:
    """The motion of one rendered head frame and the camera it was rendered through, so a
    compositor can move a torso with the head.

    global_rot  [3]  axis-angle about the neck base (root joint)    neck [3]  axis-angle
    jaw         [3]  axis-angle                       translation [3]  metres, head model's frame
    (the fields of that motion frame, same layout and meaning as ``Motion``'s)
    camera: one OpenCV camera (``len(camera) == 1``) in the head model's world whose image is the
            frame (camera.width x camera.height = the frame's size), or None for renderers
            without a 3-D camera (e.g. a 2-D cartoon)
    """

    global_rot: torch.Tensor
    neck: torch.Tensor
    jaw: torch.Tensor
    translation: torch.Tensor
    camera: Cameras | None

    def __post_init__(self) -> None:
        for name in HEAD_POSE_FIELDS:
            if tuple(getattr(self, name).shape) != (3,):
                raise ValueError(f"HeadPose.{name} must be [3], got {tuple(getattr(self, name).shape)}")
        if self.camera is not None and (not isinstance(self.camera, Cameras) or len(self.camera) != 1):
            raise ValueError(f"HeadPose.camera must be Cameras of one camera or None, got {self.camera!r:.80}")


def head_poses(motion: Motion, camera: Cameras | None) -> list[HeadPose]:
    """One HeadPose per frame of ``motion`` ([T] frames), for a renderer to attach to its frames.

    camera: one camera for every frame, T cameras (camera i for frame i), or None.
    The pose tensors are copied (one copy for all frames, on the motion's device), so later
    in-place edits of ``motion`` do not reach the frames.
    """
    t = motion.num_frames
    if camera is not None and len(camera) not in (1, t):
        raise ValueError(f"head_poses: {len(camera)} cameras for {t} motion frames (give 1 or {t})")
    pose = torch.cat([getattr(motion, name) for name in HEAD_POSE_FIELDS], dim=1)  # [T, 12], a copy
    if camera is None or len(camera) == 1:
        cams = [camera] * t
    else:
        cams = [camera[i] for i in range(t)]
    return [HeadPose(*pose[i].split(3), camera=cams[i]) for i in range(t)]


@dataclass
class Frame:
    """One video frame.

    image:  float32 [H, W, 4] premultiplied RGBA (a head from a FlameRenderer) or
            float32 [H, W, 3] RGB (a composited frame), values in [0, 1]
    depth:  float32 [H, W] camera-space depth in metres (inf where empty), or None
    index:  frame number from 0;  pts: presentation time in seconds (index / fps)
    placement: where the head sits in ``image`` (renderers set it; compositors read it)
    head:   the motion and camera of this head frame (renderers set it; compositors read it)
    """

    image: torch.Tensor
    index: int
    pts: float
    depth: torch.Tensor | None = None
    placement: Placement | None = None
    head: HeadPose | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[-1] not in (3, 4):
            raise ValueError(f"Frame.image must be [H, W, 3|4], got {tuple(self.image.shape)}")
        if self.depth is not None and tuple(self.depth.shape) != tuple(self.image.shape[:2]):
            raise ValueError(f"Frame.depth must be [H, W] = {tuple(self.image.shape[:2])}, got {tuple(self.depth.shape)}")
        cam = self.head.camera if self.head is not None else None
        if cam is not None and (cam.width, cam.height) != self.size:
            raise ValueError(f"Frame.head.camera is {cam.width}x{cam.height} but the image is {self.size[0]}x{self.size[1]}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def has_alpha(self) -> bool:
        return self.image.shape[-1] == 4

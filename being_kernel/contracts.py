"""The three contracts a method plugin implements, and their static descriptions.

Every contract has a batch call (a whole clip) and a streaming call (``open_stream()`` gives an
object that takes chunks with ``push`` and flushes with ``finish``). For the same input both must
give the same output, up to the stated latency; the conformance suite checks it.

A plugin class is built as ``Cls(config)`` where ``config`` is an instance of its spec's pydantic
config model; ``close()`` releases what it holds and is always called, also after errors.

Kernel API 2: head frames carry their ``HeadPose`` (``Frame.head``) from renderer to compositor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np
import torch

from .cameras import Cameras
from .types import Audio, Frame, Motion


@dataclass(frozen=True)
class AudioToFlameInfo:
    """What an audio model needs and gives.

    sample_rate: the rate (Hz) it wants; the kernel resamples input audio to it
    fps:         motion frame rate it produces
    motion_space: id of the motion space it produces (FLAME_2020, FLAME_2023, DEMO_HEAD or another)
    n_expression: expression coefficients per frame
    latency_s:   algorithmic latency of the streaming call: a frame at time t is final once
                 audio up to t + latency_s has been pushed
    """

    sample_rate: int
    fps: float
    motion_space: str
    n_expression: int
    latency_s: float


@dataclass(frozen=True)
class FlameRendererInfo:
    """What a head renderer consumes and gives.

    motion_spaces:   motion spaces whose expression coefficients it understands
    n_expression:    expression coefficients per frame it expects in those spaces
    accepts_pose_only: True if motion from another space may drive it by rotations alone; such
                     motion reaches ``render`` with ``expression`` of shape [T, 0]
    size:            (width, height) of the RGBA head images it renders
    fps:             the motion rate it needs, or None for any rate
    has_depth:       whether frames carry depth
    latency_frames:  frames held back by the streaming call before output
    batch_frames:    frames it draws per call on its device at its best; the offline pipeline hands
                     it packets of this many motion frames (None: the pipeline's default, 8)
    scene:           a scene directory (being_kernel.datasets.Scene) the avatar was made in, e.g.
                     its photo's background and torso; compositors that take a scene place the
                     head in it unless told otherwise. None: no scene
    """

    motion_spaces: tuple[str, ...]
    n_expression: int
    accepts_pose_only: bool
    size: tuple[int, int]
    fps: float | None = None
    has_depth: bool = False
    latency_frames: int = 0
    scene: str | None = None
    batch_frames: int | None = None


@dataclass(frozen=True)
class TorsoCompositorInfo:
    """What a compositor gives: RGB frames of ``size`` = (width, height).

    needs_alpha:    whether it needs RGBA head frames
    latency_frames: frames held back by the streaming call before output
    """

    size: tuple[int, int]
    needs_alpha: bool = True
    latency_frames: int = 0


In = TypeVar("In")
Out = TypeVar("Out")


class Stream(ABC, Generic[In, Out]):
    """A streaming call in progress: ``push`` chunks in order, then ``finish`` once."""

    @abstractmethod
    def push(self, chunk: In) -> Out:
        """Feed the next chunk; return whatever output is now final (possibly empty)."""

    @abstractmethod
    def finish(self) -> Out:
        """End of input: flush and return the rest of the output."""


class FramewiseStream(Stream[Sequence[Frame], list[Frame]]):
    """The streaming call of a stage that treats each frame on its own: batch per chunk."""

    def __init__(self, batch_fn: Callable[[Sequence[Frame]], list[Frame]]) -> None:
        self._fn = batch_fn

    def push(self, chunk: Sequence[Frame]) -> list[Frame]:
        return self._fn(chunk) if len(chunk) else []

    def finish(self) -> list[Frame]:
        return []


class FramewiseRenderStream(Stream[Motion, list[Frame]]):
    """The streaming call of a renderer that draws each motion frame on its own: every pushed chunk
    is rendered at once by ``render_fn(chunk, start_index)``, frames numbered on from 0."""

    def __init__(self, render_fn: Callable[[Motion, int], list[Frame]]) -> None:
        self._fn, self._next = render_fn, 0

    def push(self, chunk: Motion) -> list[Frame]:
        frames = self._fn(chunk, self._next) if chunk.num_frames else []
        self._next += chunk.num_frames
        return frames

    def finish(self) -> list[Frame]:
        return []


class _Plugin(ABC):
    def __init__(self, config) -> None:  # noqa: ANN001 - the spec's pydantic model
        self.config = config

    def close(self) -> None:
        """Release resources. Called exactly once per instance by the kernel, errors or not."""


class AudioToFlame(_Plugin):
    """Speech to FLAME-layout motion."""

    @abstractmethod
    def info(self) -> AudioToFlameInfo: ...

    @abstractmethod
    def generate(self, audio: Audio) -> Motion:
        """Batch: ``audio`` (mono, at ``info().sample_rate``) to motion with exactly
        ``audio.num_frames(info().fps)`` frames."""

    @abstractmethod
    def open_stream(self) -> Stream[np.ndarray, Motion]:
        """Streaming: push float32 ``[n]`` sample chunks at ``info().sample_rate``; each push
        and the finish return the motion frames that became final (``[t, ...]``, t >= 0). The
        frames of all calls together equal ``generate`` on the concatenated audio."""


class FlameRenderer(_Plugin):
    """FLAME-layout motion to RGBA head frames (with placement, head pose, optional depth).

    Every frame it returns carries ``head``: a ``HeadPose`` with the pose of the motion frame it
    shows (``being_kernel.api.head_poses(motion, camera)`` builds them) and the one camera it was
    rendered through (``None`` for a renderer without a 3-D camera), so a compositor can follow
    the neck.
    """

    @abstractmethod
    def info(self) -> FlameRendererInfo: ...

    @abstractmethod
    def render(self, motion: Motion, start_index: int = 0) -> list[Frame]:
        """Batch: one premultiplied RGBA frame ``[H, W, 4]`` per motion frame, numbered from
        ``start_index`` with pts = index / motion.fps, each with its ``placement`` and ``head``
        (frame i: motion frame i's pose, the renderer's camera)."""

    @abstractmethod
    def open_stream(self) -> Stream[Motion, list[Frame]]:
        """Streaming: push motion chunks, get frames numbered on from 0, each with its ``head``,
        as ``render`` gives them."""

    def render_views(self, motion: Motion, cameras: Cameras) -> list[Frame]:
        """Evaluation: render motion frame i ([T] frames) through ``cameras[i]`` (T OpenCV cameras in
        the head model's world, images of cameras.width x cameras.height) instead of the renderer's
        own camera: frames numbered from 0, each with ``head`` (motion frame i's pose, camera
        ``cameras[i]``). Through the cameras of ``render``'s frames (``frame.head.camera``) it gives
        ``render``'s images. ``being eval`` compares these frames with a tracked video's images.
        Renderers without a 3D camera leave this unimplemented and cannot be evaluated that way."""
        raise NotImplementedError(f"{type(self).__name__} cannot render through given cameras")


class TorsoCompositor(_Plugin):
    """RGBA head frames to full RGB frames: body, background, head.

    Head frames come from a FlameRenderer: premultiplied RGBA with a ``placement`` and a ``head``
    (``HeadPose``: global_rot, neck, jaw, translation of that frame, and the camera it was
    rendered through), so a torso can follow the neck. ``head.camera`` may be None (a renderer
    without a 3-D camera): a compositor must still work then, by the pose and placement alone.
    """

    @abstractmethod
    def info(self) -> TorsoCompositorInfo: ...

    @abstractmethod
    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        """Batch: one RGB frame ``[H, W, 3]`` per head frame (``heads``: RGBA frames carrying
        ``placement`` and ``head``), same index and pts."""

    @abstractmethod
    def open_stream(self) -> Stream[Sequence[Frame], list[Frame]]:
        """Streaming: push lists of head frames, get composited frames."""

    def composite_with_coverage(self, heads: Sequence[Frame]) -> tuple[list[Frame], torch.Tensor]:
        """``composite(heads)`` and where its layers were drawn: coverage [B, H, W, 2] in [0, 1],
        channel 0 the alpha each head was composited with (placed, feathered), channel 1 the alpha
        of the torso layer under it. Optional: a stage that works on the seam between the two (a
        restorer over this compositor) needs it; the frames equal ``composite``'s."""
        raise NotImplementedError(f"{type(self).__name__} does not report where it drew the head and torso "
                                  "(TorsoCompositor.composite_with_coverage)")


#: CLI flag / entry-point group suffix -> contract class.
CONTRACTS: dict[str, type[_Plugin]] = {
    "audio": AudioToFlame,
    "avatar": FlameRenderer,
    "torso": TorsoCompositor,
}

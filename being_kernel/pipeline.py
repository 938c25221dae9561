"""The talking-head pipeline: audio -> AudioToFlame -> FlameRenderer -> TorsoCompositor -> sink,
built from plugin instances, checked when built, and run on the frame bus."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Protocol

import torch

from .bus import Bus, BusStats, Mode, Packet, Source, Stage
from .contracts import AudioToFlame, FlameRenderer, FlameRendererInfo, TorsoCompositor
from .errors import ContractError
from .types import Audio, Frame, Motion


@dataclass(frozen=True)
class StageCheck:
    """The result of checking stages against each other: ``pose_only`` if the renderer gets
    rotations only, with the warnings to show the user."""

    pose_only: bool
    warnings: list[str] = field(default_factory=list)


def check_stages(
    audio: AudioToFlame,
    renderer: FlameRenderer,
    compositor: TorsoCompositor,
    names: tuple[str, str, str] = ("audio", "avatar", "torso"),
    suggest: Callable[[str, str], list[str]] | None = None,
) -> StageCheck:
    """Check motion space, frame rate and sizes of a stage triple; raise ContractError naming
    what would fit. ``suggest(contract, space)`` lists installed plugins for that space."""
    a, r, c = audio.info(), renderer.info(), compositor.info()
    na, nr, nc = names
    warnings: list[str] = []
    pose_only = a.motion_space not in r.motion_spaces
    if pose_only:
        if not r.accepts_pose_only:
            options = []
            if suggest:
                if other := suggest("avatar", a.motion_space):
                    options.append(f"--avatar {' or '.join(other)}")
                for space in r.motion_spaces:
                    if other := suggest("audio", space):
                        options.append(f"--audio {' or '.join(other)}")
            hint = "would fit: " + "; ".join(options) if options else f"use an avatar that consumes '{a.motion_space}'"
            raise ContractError(
                f"motion space mismatch: --audio {na} produces '{a.motion_space}' but --avatar {nr} consumes "
                f"{' or '.join(repr(s) for s in r.motion_spaces)} and does not accept pose-only motion", hint)
        warnings.append(
            f"--audio {na} produces '{a.motion_space}' expressions, which mean nothing to --avatar {nr} "
            f"({', '.join(r.motion_spaces)}): driving it by head, jaw and eye rotations only")
    elif a.n_expression != r.n_expression:
        raise ContractError(
            f"--audio {na} gives {a.n_expression} expression coefficients but --avatar {nr} expects {r.n_expression} "
            f"in motion space '{a.motion_space}'", "configure both for the same expression width")
    if r.fps is not None and abs(r.fps - a.fps) > 1e-6:
        raise ContractError(f"--avatar {nr} needs motion at {r.fps:g} fps but --audio {na} gives {a.fps:g} fps",
                            "set the audio plugin's frame rate to match, if it has one")
    w, h = c.size
    if w % 2 or h % 2 or w < 16 or h < 16:
        raise ContractError(f"--torso {nc} output size {w}x{h} cannot be encoded as H.264",
                            "use even sizes of at least 16, e.g. --set torso.size=[512,512]")
    return StageCheck(pose_only, warnings)


def torso_scene(renderer: FlameRendererInfo, torso_config: type, torso_values: dict) -> str | None:
    """The scene directory to build the torso compositor with, or None: the renderer's
    ``info().scene`` (the scene its avatar was made in) when the compositor's config model
    ``torso_config`` has a field ``scene`` and the user did not set it (``torso_values``: the merged
    config values of the torso; an explicit ``scene: None`` there means "no scene")."""
    if not renderer.scene or "scene" not in getattr(torso_config, "model_fields", {}) or "scene" in torso_values:
        return None
    return renderer.scene


def pose_only(motion: Motion) -> Motion:
    """The motion with its expression removed (``[T, 0]``): what a pose-only renderer gets."""
    return replace(motion, expression=motion.expression[:, :0])


class FrameSink(Protocol):
    """Where composited frames go (an MP4 writer, a stream). ``write`` gets RGB ``[H, W, 3]``."""

    def write(self, image: torch.Tensor) -> None: ...
    def finish(self, expected_frames: int | None = None) -> object: ...
    def abort(self) -> None: ...


class MotionSource(Source):
    """Offline: the batch call on the whole clip. Live: the streaming call fed ``chunk_s`` of
    audio at a time, paced to real time when ``realtime``."""

    name = "audio"

    def __init__(self, plugin: AudioToFlame, audio: Audio, mode: Mode, chunk_frames: int, chunk_s: float,
                 realtime: bool, strip_expression: bool) -> None:
        self.plugin, self.audio, self.mode = plugin, audio, mode
        self.chunk_frames, self.chunk_s, self.realtime = chunk_frames, chunk_s, realtime
        self.strip = strip_expression
        self.expected = audio.num_frames(plugin.info().fps)
        self.produced = 0

    def _emit(self, motion: Motion) -> Iterator[Packet]:
        if self.strip:
            motion = pose_only(motion)
        for start in range(0, motion.num_frames, self.chunk_frames):
            part = motion.slice(start, start + self.chunk_frames)
            index = self.produced
            self.produced += part.num_frames
            yield Packet(index, index / motion.fps, part)

    def packets(self) -> Iterator[Packet]:
        if self.mode == "offline":
            yield from self._emit(self.plugin.generate(self.audio))
        else:
            stream = self.plugin.open_stream()
            step = max(1, round(self.chunk_s * self.audio.sample_rate))
            t0 = time.monotonic()
            for start in range(0, len(self.audio.samples), step):
                if self.realtime:
                    time.sleep(max(0.0, t0 + start / self.audio.sample_rate - time.monotonic()))
                yield from self._emit(stream.push(self.audio.samples[start:start + step]))
            yield from self._emit(stream.finish())
        if self.produced != self.expected:
            raise ContractError(
                f"produced {self.produced} motion frames for {self.audio.duration:.3f} s of audio at "
                f"{self.plugin.info().fps:g} fps; the contract is round(duration x fps) = {self.expected}",
                "this is a bug in the audio plugin")


class RenderStage(Stage):
    """Renders motion chunks. Output frames take the indices of the motion frames they came
    from (renderers give one frame per motion frame, in order), so the numbering stays right
    when live mode has dropped chunks before this stage."""

    name = "avatar"

    def __init__(self, plugin: FlameRenderer) -> None:
        self.stream = plugin.open_stream()
        self.pending: deque[tuple[int, float]] = deque()  # (index, fps) of motion frames not yet rendered

    def _renumber(self, frames: list[Frame]) -> list[Packet]:
        out = []
        for frame in frames:
            index, fps = self.pending.popleft()
            frame = replace(frame, index=index, pts=index / fps)
            out.append(Packet(frame.index, frame.pts, frame))
        return out

    def process(self, packet: Packet) -> Iterable[Packet]:
        motion: Motion = packet.payload
        self.pending.extend((packet.index + k, motion.fps) for k in range(motion.num_frames))
        return self._renumber(self.stream.push(motion))

    def flush(self) -> Iterable[Packet]:
        return self._renumber(self.stream.finish())


class CompositeStage(Stage):
    name = "torso"

    def __init__(self, plugin: TorsoCompositor) -> None:
        self.stream = plugin.open_stream()

    def process(self, packet: Packet) -> Iterable[Packet]:
        return [Packet(f.index, f.pts, f) for f in self.stream.push([packet.payload])]

    def flush(self) -> Iterable[Packet]:
        return [Packet(f.index, f.pts, f) for f in self.stream.finish()]


class SinkStage(Stage):
    """Writes frames in index order; in live mode a dropped frame is filled by repeating the
    previous one, so the video stays frame-exact with the audio."""

    name = "sink"

    def __init__(self, sink: FrameSink, expected_frames: int, progress: Callable[[int], None] | None) -> None:
        self.sink, self.expected, self.progress = sink, expected_frames, progress
        self.next_index = 0
        self.last: torch.Tensor | None = None
        self.finished = False

    def _put(self, image: torch.Tensor) -> None:
        self.sink.write(image)
        self.next_index += 1
        if self.progress:
            self.progress(1)

    def process(self, packet: Packet) -> Iterable[Packet]:
        frame: Frame = packet.payload
        if frame.index < self.next_index:
            raise ContractError(f"frame {frame.index} arrived after frame {self.next_index - 1}: stages must keep order")
        while self.next_index < frame.index:  # frames dropped in live mode: hold the picture
            self._put(self.last if self.last is not None else frame.image)
        self.last = frame.image
        self._put(frame.image)
        return ()

    def flush(self) -> Iterable[Packet]:
        while self.next_index < self.expected and self.last is not None:
            self._put(self.last)
        self.sink.finish(expected_frames=self.expected)
        self.finished = True
        return ()

    def teardown(self) -> None:
        if not self.finished:
            self.sink.abort()


#: Motion frames per bus packet for a renderer that states no batch of its own.
DEFAULT_CHUNK_FRAMES = 8


def packet_frames(renderer: FlameRenderer) -> int:
    """Motion frames per offline bus packet for ``renderer``: its ``batch_frames``, else DEFAULT_CHUNK_FRAMES."""
    return renderer.info().batch_frames or DEFAULT_CHUNK_FRAMES


@dataclass
class RunResult:
    frames: int
    fps: float
    seconds: float
    stats: BusStats
    warnings: list[str]


def run_pipeline(
    audio_plugin: AudioToFlame,
    renderer: FlameRenderer,
    compositor: TorsoCompositor,
    audio: Audio,
    sink: FrameSink,
    *,
    mode: Mode = "offline",
    check: StageCheck | None = None,
    chunk_frames: int | None = None,
    chunk_s: float = 0.2,
    realtime: bool = False,
    queue_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Run the stages on the bus into ``sink``. ``audio`` must be at the audio plugin's rate.

    ``chunk_frames``: motion frames per bus packet; None: what the renderer draws per call
    (``batch_frames`` of its info), else DEFAULT_CHUNK_FRAMES.

    ``check``: what ``check_stages`` said of these stages, when the caller already asked (it is
    asked here otherwise). The plugins and the sink are torn down (``close``/``abort``) whatever
    happens; on success the sink has exactly ``audio.num_frames(fps)`` frames."""
    check = check or check_stages(audio_plugin, renderer, compositor)
    info = audio_plugin.info()
    if audio.sample_rate != info.sample_rate:
        raise ContractError(f"audio at {audio.sample_rate} Hz given to a plugin that wants {info.sample_rate} Hz")
    expected = audio.num_frames(info.fps)
    t0 = time.perf_counter()
    chunk_frames = chunk_frames or packet_frames(renderer)
    source = MotionSource(audio_plugin, audio, mode, chunk_frames, chunk_s, realtime, check.pose_only)
    stages: list[Stage] = [RenderStage(renderer), CompositeStage(compositor), SinkStage(sink, expected, progress)]
    stats = Bus(source, stages, mode=mode, maxsize=queue_size).run()
    return RunResult(expected, info.fps, time.perf_counter() - t0, stats, check.warnings)


def close_all(*plugins) -> None:  # noqa: ANN002 - plugin instances (None for one not built)
    """Close every plugin, also when one's close raises (the first error is re-raised)."""
    first: Exception | None = None
    for plugin in plugins:
        try:
            if plugin is not None:
                plugin.close()
        except Exception as exc:  # noqa: BLE001 - close them all, report the first
            first = first or exc
    if first is not None:
        raise first

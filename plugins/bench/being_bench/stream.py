"""Streaming measurements on the real live pipeline (``run_pipeline(mode="live")``).

The audio plugin and the compositor are wrapped in taps that note when each audio chunk is
pushed, how many motion frames it made final, and each output frame's index and pts; the sink
notes when each frame is in host memory (converted to uint8 and copied off the device, as the MP4
writer does before it encodes). Nothing else differs from ``being run --mode live``.

Two pacings:

* unpaced (default): the next chunk is pushed as soon as every frame made final so far is out, so
  one chunk is in flight and latencies are the pipeline's own, without queueing; the run's wall
  time per second of audio says whether it keeps up with real time;
* real time (``--realtime``): chunks are pushed at the audio's own pace by the pipeline's source;
  a stage slower than real time then drops frames, and a lag that grows over the run is drift.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from being_kernel.api import (Audio, AudioToFlame, AudioToFlameInfo, FlameRenderer, Frame, Motion, StageCheck, Stream,
                              TorsoCompositor, TorsoCompositorInfo, run_pipeline)
from being_kernel.media import to_uint8

#: Unpaced runs wait at most this long for a chunk's frames before pushing the next one anyway
#: (a stage that failed stops the bus; the source must not wait for it forever).
GATE_TIMEOUT_S = 30.0


@dataclass
class StreamTrace:
    """What one streaming run recorded (times from ``time.perf_counter``)."""

    fps: float
    audio_s: float
    expected_frames: int
    pushes: list[tuple[float, int, int]] = field(default_factory=list)  # (time, first frame, frames made final)
    flush: tuple[float, int, int] | None = None  # the same for ``finish``: the frames held back to the end
    exits: list[float] = field(default_factory=list)  # time frame k was in host memory
    pts: list[tuple[int, float]] = field(default_factory=list)  # (index, pts) of composited frames
    dropped: int = 0
    gate_timeouts: int = 0

    def flush_latency(self) -> float | None:
        """From ``finish`` to the last frame out, if ``finish`` made frames final."""
        if self.flush is None or not self.flush[2]:
            return None
        return self.exits[-1] - self.flush[0]

    def first_frame_latency(self) -> float:
        return self.exits[0] - self.pushes[0][0]

    def chunk_latencies(self) -> list[float]:
        """Per push that made frames final, after the one that made frame 0: push to its last frame
        out. The end-of-stream flush is not steady state and not among them."""
        return [self.exits[first + n - 1] - t for t, first, n in self.pushes
                if n and first > 0 and first + n - 1 < len(self.exits)]

    def wall_per_audio_s(self) -> float:
        return (self.exits[-1] - self.pushes[0][0]) / self.audio_s

    def lag_drift(self) -> float:
        """Median lag of the last tenth of frames minus that of the first tenth; the lag of frame
        k is how long after its audio ended (k + 1 frames after the first push) it was out."""
        t0 = self.pushes[0][0]
        lag = np.array([t - (t0 + (k + 1) / self.fps) for k, t in enumerate(self.exits)])
        tenth = max(1, len(lag) // 10)
        return float(np.median(lag[-tenth:]) - np.median(lag[:tenth]))

    def pts_drift(self) -> float:
        """Last frame's pts plus one frame, minus the audio duration (seconds)."""
        return self.pts[-1][1] + 1.0 / self.fps - self.audio_s

    def frames_exact(self) -> bool:
        """round(duration x fps) frames out, and every composited frame k in order at pts k / fps
        (frames the live bus dropped are repeated by the sink, so they count but have no pts)."""
        indices = [k for k, _ in self.pts]
        return (len(self.exits) == self.expected_frames and indices == sorted(set(indices))
                and all(abs(p - k / self.fps) < 1e-9 for k, p in self.pts))


class _Probe:
    """Shared by the taps and the sink (they run on different bus threads)."""

    def __init__(self, trace: StreamTrace, gate: bool, held_frames: int) -> None:
        self.trace, self.gate, self.held = trace, gate, held_frames
        self.emitted = 0
        self.cond = threading.Condition()

    def before_push(self) -> None:
        if not self.gate:
            return
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.trace.exits) >= self.emitted - self.held, GATE_TIMEOUT_S):
                self.trace.gate_timeouts += 1

    def pushed(self, t: float, frames: int, flush: bool = False) -> None:
        with self.cond:
            if flush:
                self.trace.flush = (t, self.emitted, frames)
            else:
                self.trace.pushes.append((t, self.emitted, frames))
            self.emitted += frames

    def out(self, t: float) -> None:
        with self.cond:
            self.trace.exits.append(t)
            self.cond.notify_all()


class _AudioStreamTap(Stream[np.ndarray, Motion]):
    def __init__(self, inner: Stream[np.ndarray, Motion], probe: _Probe) -> None:
        self.inner, self.probe = inner, probe

    def push(self, chunk: np.ndarray) -> Motion:
        self.probe.before_push()
        t = time.perf_counter()
        motion = self.inner.push(chunk)
        self.probe.pushed(t, motion.num_frames)
        return motion

    def finish(self) -> Motion:
        t = time.perf_counter()
        motion = self.inner.finish()
        self.probe.pushed(t, motion.num_frames, flush=True)
        return motion


class _PtsStreamTap(Stream[Sequence[Frame], list[Frame]]):
    def __init__(self, inner: Stream[Sequence[Frame], list[Frame]], trace: StreamTrace) -> None:
        self.inner, self.trace = inner, trace

    def _note(self, frames: list[Frame]) -> list[Frame]:
        self.trace.pts += [(f.index, f.pts) for f in frames]
        return frames

    def push(self, chunk: Sequence[Frame]) -> list[Frame]:
        return self._note(self.inner.push(chunk))

    def finish(self) -> list[Frame]:
        return self._note(self.inner.finish())


class _StageTap:
    """What the two stage taps share: a stage that is ``inner`` in all but its streaming call, whose
    stream ``stream_tap(stream, note)`` wraps (``note``: what the tap records into). Listed before
    the contract's base class, so its ``info`` and ``open_stream`` are the ones the contract sees."""

    stream_tap: Callable[..., Stream]

    def __init__(self, inner: AudioToFlame | TorsoCompositor, note: _Probe | StreamTrace) -> None:
        super().__init__(inner.config)
        self.inner, self.note = inner, note

    def info(self) -> AudioToFlameInfo | TorsoCompositorInfo:
        return self.inner.info()

    def open_stream(self) -> Stream:
        return self.stream_tap(self.inner.open_stream(), self.note)


class _AudioTap(_StageTap, AudioToFlame):
    stream_tap = _AudioStreamTap

    def generate(self, audio: Audio) -> Motion:
        return self.inner.generate(audio)


class _CompositorTap(_StageTap, TorsoCompositor):
    stream_tap = _PtsStreamTap

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        return self.inner.composite(heads)


class HostSink:
    """A pipeline sink that takes each frame into host memory as uint8 RGB, converted as the MP4
    writer converts it before encoding (so "without encoding" differs from "with" by the encoder
    alone), and tells ``on_frame`` the time it was there."""

    def __init__(self, on_frame: Callable[[float], None] | None = None) -> None:
        self.on_frame = on_frame

    def write(self, image: torch.Tensor) -> None:
        to_uint8(image)
        if self.on_frame is not None:
            self.on_frame(time.perf_counter())

    def finish(self, expected_frames: int | None = None) -> None:
        pass

    def abort(self) -> None:
        pass


def stream_run(audio_plugin: AudioToFlame, renderer: FlameRenderer, compositor: TorsoCompositor, check: StageCheck,
               audio: Audio, chunk_s: float, realtime: bool) -> StreamTrace:
    """One streaming run of ``audio`` through the live pipeline; see the module doc."""
    info = audio_plugin.info()
    trace = StreamTrace(info.fps, audio.duration, audio.num_frames(info.fps))
    held = renderer.info().latency_frames + compositor.info().latency_frames
    probe = _Probe(trace, gate=not realtime, held_frames=held)
    result = run_pipeline(_AudioTap(audio_plugin, probe), renderer, _CompositorTap(compositor, trace), audio,
                          HostSink(probe.out), mode="live", check=check, chunk_s=chunk_s, realtime=realtime)
    trace.dropped = sum(result.stats.dropped.values())
    return trace

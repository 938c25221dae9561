"""One live session: its speech queue, its audio model stream, and the frames and audio it has made,
on one clock.

Frame ``j`` of a session is spoken (its audio block enters the audio model) at tick ``t0 + j / fps``
and presented at ``due(j) = t0 + lead_s + j / fps``, where ``lead_s`` is the audio model's
algorithmic latency plus a playout margin for rendering. Video and audio leave at those times, so
they are locked by presentation time; a video frame not ready by its time is replaced by the one
before (counted as dropped) and the audio never waits."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..pipeline import pose_only
from ..types import Motion
from .speech import Resampler, SpeechQueue

if TYPE_CHECKING:
    from .engine import Engine

OUT_RATE = 48_000  # the audio a session sends (WebRTC's Opus runs at 48 kHz)
_KEEP_S = 1.0  # made frames and audio older than this past their time are dropped (nobody took them)


def neutral_mouth(motion: Motion) -> Motion:
    """``motion`` ([T] frames) with the jaw closed and a neutral expression: the mouth at rest, the
    head, eyes and eyelids as they were."""
    return replace(motion, jaw=motion.jaw.new_zeros(motion.jaw.shape),
                   expression=motion.expression.new_zeros(motion.expression.shape))


@dataclass
class SessionStats:
    """What a session has done so far (read by the page and the API)."""

    frames_sent: int = 0
    frames_dropped: int = 0  # video frames not made by their time (the previous one was shown again)
    audio_underruns: int = 0  # 20 ms audio frames that were not ready by their time (silence sent)
    utterances: int = 0
    interrupts: int = 0
    #: arrival of speech -> the frame carrying its first sample leaves, in seconds (latest 100)
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=100))
    sent_times: deque = field(default_factory=lambda: deque(maxlen=50))  # when the latest frames left

    def fps(self) -> float:
        t = self.sent_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0


class LiveSession:
    """A live talking head fed speech from any thread and read by media tracks on their clock.

    engine: runs this session's audio model and renders its frames (``Engine.attach``).
    max_speech_s: most seconds of speech that may wait; max_s: the session's length limit."""

    def __init__(self, session_id: str, engine: Engine, *, max_speech_s: float = 120.0,
                 max_s: float | None = None) -> None:
        self.id, self.engine = session_id, engine
        info = engine.audio_info
        self.fps = info.fps
        block = OUT_RATE / self.fps
        if abs(block - round(block)) > 1e-9:
            raise InputError(f"live sessions need a frame rate that divides {OUT_RATE} Hz audio, got {self.fps:g} fps")
        self.block = round(block)
        self.latency_frames = math.ceil(info.latency_s * self.fps - 1e-9)
        self.lead_s = info.latency_s + engine.margin_s
        self.max_s = max_s
        self.speech = SpeechQueue(OUT_RATE, self.block, max_speech_s)
        self.stats = SessionStats()
        self.created = time.monotonic()
        self.closed = threading.Event()
        self._feeders: dict[str, Resampler] = {}
        self._to_model = Resampler(OUT_RATE, info.sample_rate)
        self._stream = engine.audio.open_stream()
        self._lock = threading.Lock()
        self.t0 = 0.0  # set by the engine when it attaches the session
        self.ticks = 0  # frames spoken (audio blocks given to the audio model)
        self.motion_frames = 0  # motion frames the audio model has given
        self._audio: dict[int, np.ndarray] = {}  # frame -> int16 [block] audio to send
        self._speaking: dict[int, bool] = {}
        self._video: dict[int, np.ndarray] = {}  # frame -> uint8 [H, W, 3] image to send
        self._motion: dict[int, Motion] = {}  # frame -> its motion, until sent (an interrupt re-renders)
        self._last: np.ndarray | None = None
        self._video_next = 0  # next frame index the video track will send
        self._audio_sent = 0  # samples the audio track has taken
        self._mute_below = 0  # frames below this index are rendered with the mouth at rest
        self._rerender: set[int] = set()
        self._pending_latency: deque[tuple[int, float]] = deque()  # (frame, arrival) of utterances

    # -- the network side --------------------------------------------------------------------------
    def push_speech(self, samples: np.ndarray, rate: int, *, source: str = "api", end: bool = False) -> None:
        """Queue speech: float32 [n] mono at ``rate`` Hz, the next chunk of ``source``'s stream (each
        source is resampled as one continuous stream). ``end``: the utterance is complete."""
        if self.closed.is_set():
            raise InputError(f"session {self.id} is closed")
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not np.isfinite(samples).all():
            raise InputError("the speech contains NaN or infinite samples")
        feeder, tail = self._feeders.get(source), np.zeros(0, np.float32)
        if feeder is None or feeder.src != rate:
            if feeder is not None:  # a new rate: what the old stream's filter holds comes first
                tail = feeder.flush()
            feeder = self._feeders[source] = Resampler(rate, OUT_RATE)
        out = np.concatenate([tail, feeder(samples)])
        if end:
            out = np.concatenate([out, feeder.flush()])
        self.speech.put(np.clip(out, -1.0, 1.0), end=end)

    def interrupt(self) -> float:
        """Barge-in: drop the speech that waits and the speech not yet sent, and close the mouth from
        the next frame sent on. Returns the seconds of speech dropped."""
        with self._lock:
            dropped = self.speech.clear()
            first = self._audio_sent // self.block
            for j, block in self._audio.items():
                if j >= first and self._speaking.get(j):
                    dropped += len(block) / OUT_RATE
                    if j == first:  # part of it may be out already: silence the rest
                        block[self._audio_sent - j * self.block:] = 0
                    else:
                        block[:] = 0
                    self._speaking[j] = False
            self._pending_latency.clear()
            for source in self._feeders.values():
                source.flush()
            # frames the model has yet to give still heard the speech within its lookahead
            self._mute_below = self.ticks + self.latency_frames + 1
            self._rerender = {j for j in self._video if j >= self._video_next}
            self.stats.interrupts += 1
        self.engine.wake()
        return dropped

    # -- the engine side ---------------------------------------------------------------------------
    def speak(self) -> Motion:
        """One tick: the next block of speech (or silence) goes out and into the audio model.
        Returns the motion frames that became final (frame indices ``motion_frames`` on)."""
        block, speaking = self.speech.take()
        with self._lock:
            j = self.ticks
            while self.speech.utterances and self.speech.utterances[0].position <= j * self.block:
                u = self.speech.utterances.popleft()
                self._pending_latency.append((j, u.arrived))
                self.stats.utterances += 1
            self._audio[j] = np.round(block * 32767.0).astype(np.int16)
            self._speaking[j] = speaking
            self.ticks += 1
        motion = self._stream.push(self._to_model(block))
        if self.engine.pose_only:
            motion = pose_only(motion)
        return motion

    def due(self, index: int) -> float:
        """When frame ``index`` is presented (time.monotonic())."""
        return self.t0 + self.lead_s + index / self.fps

    def for_render(self, index: int, motion: Motion) -> Motion:
        """The motion to render frame ``index`` from (one frame): kept for a re-render, and with the
        mouth at rest when an interrupt silenced it."""
        with self._lock:
            self._motion[index] = motion
            return neutral_mouth(motion) if index < self._mute_below else motion

    def take_rerender(self) -> list[tuple[int, Motion]]:
        """Frames made before an interrupt, not yet sent: to render again with the mouth at rest."""
        with self._lock:
            out = [(j, neutral_mouth(self._motion[j])) for j in sorted(self._rerender) if j in self._motion]
            self._rerender.clear()
            return out

    def put_image(self, index: int, image: np.ndarray) -> None:
        """A made frame: uint8 [H, W, 3]."""
        with self._lock:
            if index >= self._video_next:
                self._video[index] = image
            self._forget(time.monotonic())

    def _forget(self, now: float) -> None:
        horizon = math.floor((now - _KEEP_S - self.t0 - self.lead_s) * self.fps)
        for store in (self._audio, self._speaking, self._video, self._motion):
            for j in [j for j in store if j < horizon]:
                del store[j]

    # -- the media side (read by the tracks) -------------------------------------------------------
    def take_video(self, index: int) -> np.ndarray | None:
        """The image of frame ``index``, or the last one sent when it was not made in time (a drop);
        None when no frame has been made yet. Frames before ``index`` are skipped for good."""
        now = time.monotonic()
        with self._lock:
            image = self._video.pop(index, None)
            for j in [j for j in self._video if j < index]:
                del self._video[j]
            self._motion.pop(index, None)
            if image is None:
                self.stats.frames_dropped += 1
                image = self._last
            else:
                self._last = image
            self._video_next = index + 1
            while self._pending_latency and self._pending_latency[0][0] <= index:
                _, arrived = self._pending_latency.popleft()
                self.stats.latencies_s.append(now - arrived)
            self.stats.frames_sent += 1
            self.stats.sent_times.append(now)
            return image

    def take_audio(self, position: int, n: int) -> np.ndarray:
        """int16 [n] audio from sample ``position`` (of the session's timeline) on; silence where
        none was made in time (counted as an underrun)."""
        out = np.zeros(n, np.int16)
        with self._lock:
            missing = False
            pos, end = position, position + n
            while pos < end:
                j, off = divmod(pos, self.block)
                take = min(end - pos, self.block - off)
                block = self._audio.get(j)
                if block is None:
                    missing = True
                else:
                    out[pos - position: pos - position + take] = block[off: off + take]
                pos += take
            self._audio_sent = end
            if missing:
                self.stats.audio_underruns += 1
            return out

    def expired(self, now: float) -> bool:
        return self.max_s is not None and now - self.created > self.max_s

    def summary(self) -> dict:
        """The stats as JSON-ready values."""
        s, lat = self.stats, sorted(self.stats.latencies_s)
        return {
            "session": self.id, "age_s": round(time.monotonic() - self.created, 2), "fps": round(s.fps(), 2),
            "frames_sent": s.frames_sent, "frames_dropped": s.frames_dropped, "audio_underruns": s.audio_underruns,
            "utterances": s.utterances, "interrupts": s.interrupts, "queued_s": round(self.speech.queued_s, 3),
            "lead_ms": round(self.lead_s * 1000, 1),
            "latency_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
        }

    def close(self) -> None:
        """Stop: the engine lets go of this session at its next tick."""
        self.closed.set()

"""Speech entering a live session: from any source (microphone, upload, a TTS pushing PCM), at any
rate and chunking, resampled as one continuous stream to the session's rate and queued until the
session speaks it, one video frame's worth at a time."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from ..errors import InputError


class Resampler:
    """A stateful resampler of mono float32 audio (PyAV's swresample): chunks in, chunks out, with no
    clicks at chunk edges. ``flush`` returns what its filter still holds at the end of a stream."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or src_rate > 384_000:
            raise InputError(f"sample rate {src_rate} Hz is not a usable audio rate")
        self.src, self.dst = src_rate, dst_rate
        self._swr = None if src_rate == dst_rate else av.AudioResampler(format="flt", layout="mono", rate=dst_rate)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """float32 [n] at ``src_rate`` -> float32 [m] at ``dst_rate`` (m ~ n x dst / src over time)."""
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if self._swr is None or not len(samples):
            return samples
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = self.src
        return self._join(self._swr.resample(frame))

    def flush(self) -> np.ndarray:
        if self._swr is None:
            return np.zeros(0, np.float32)
        out = self._join(self._swr.resample(None))
        self._swr = av.AudioResampler(format="flt", layout="mono", rate=self.dst)  # ready for the next stream
        return out

    @staticmethod
    def _join(frames: list[av.AudioFrame]) -> np.ndarray:
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)


def pcm16_to_float(data: bytes | memoryview | np.ndarray, channels: int = 1) -> np.ndarray:
    """Signed 16-bit PCM (little-endian bytes, or an int16 array), ``channels`` interleaved -> their
    mean as mono float32 [n] in [-1, 1)."""
    if not isinstance(data, np.ndarray):
        size = memoryview(data).nbytes
        if size % (2 * channels):
            raise InputError(f"16-bit PCM of {channels} channel(s) must have an even number of bytes, a multiple "
                             f"of {2 * channels}, got {size}")
        data = np.frombuffer(data, dtype="<i2")
    pcm = data.reshape(-1, channels)
    mono = pcm[:, 0].astype(np.float32) if channels == 1 else pcm.mean(axis=1, dtype=np.float32)
    return mono / 32768.0


@dataclass(frozen=True)
class Utterance:
    """A stretch of speech that arrived while the session was idle: ``arrived`` (time.monotonic())
    and the queue position (samples spoken since the session began) where its first sample is."""

    arrived: float
    position: int


class SpeechQueue:
    """Speech waiting to be spoken at ``rate`` Hz, taken in blocks of ``block`` samples (one video
    frame). Thread-safe: network handlers put, the engine takes. At most ``max_s`` seconds wait."""

    def __init__(self, rate: int, block: int, max_s: float) -> None:
        self.rate, self.block, self.max_s = rate, block, max_s
        self._parts: deque[np.ndarray] = deque()
        self._queued = 0  # samples in _parts
        self._taken = 0  # samples taken (speech and silence) since the start
        self._lock = threading.Lock()
        self.utterances: deque[Utterance] = deque()  # started, not yet reached by take

    @property
    def queued_s(self) -> float:
        return self._queued / self.rate

    def put(self, samples: np.ndarray, end: bool = False) -> None:
        """Queue float32 [n] at ``rate``. ``end``: the utterance is over, so its last partial block is
        padded with silence (else it waits for more speech). Raises InputError past ``max_s``."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        with self._lock:
            pad = (-(self._queued + len(samples))) % self.block if end else 0
            if (self._queued + len(samples) + pad) > self.max_s * self.rate:
                raise InputError(f"more than {self.max_s:g} s of speech would be waiting in this session",
                                 hint="send speech closer to real time, or interrupt first")
            if len(samples) and self._queued == 0:
                self.utterances.append(Utterance(time.monotonic(), self._taken))
            if len(samples):
                self._parts.append(samples)
            if pad:
                self._parts.append(np.zeros(pad, np.float32))
            self._queued += len(samples) + pad

    def take(self) -> tuple[np.ndarray, bool]:
        """The next block: (float32 [block], True) when a whole block of speech is queued, else
        (silence, False); a partial block stays queued for the speech that completes it."""
        with self._lock:
            if self._queued < self.block:
                self._taken += self.block
                return np.zeros(self.block, np.float32), False
            out, need = [], self.block
            while need:
                part = self._parts[0]
                if len(part) <= need:
                    out.append(self._parts.popleft())
                    need -= len(part)
                else:
                    out.append(part[:need])
                    self._parts[0] = part[need:]
                    need = 0
            self._queued -= self.block
            self._taken += self.block
            return np.concatenate(out), True

    def clear(self) -> float:
        """Drop all waiting speech; returns the seconds dropped."""
        with self._lock:
            dropped = self._queued / self.rate
            self._parts.clear()
            self._queued = 0
            self.utterances.clear()
            return dropped

"""What the voice-agent adapters share: a live session of their own, fed the framework's TTS audio
and read one frame at a time at that frame's presentation time, each image together with its own
1/fps s of audio. This is how the WebRTC tracks pace (``serve/tracks.py``), in one loop instead of
two, so a framework that plays the audio and shows the image as they arrive keeps them locked."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...discovery import Registry
from ...errors import InputError
from ...media.clip import LoadedTriple, select
from ..engine import Engine
from ..session import OUT_RATE, LiveSession
from ..speech import pcm16_to_float

#: a reader this many frames late skips to the frame due now, rather than staying late for good: the
#: images and the audio between are lost together, so the two stay locked
MAX_LAG_FRAMES = 5


@dataclass(frozen=True)
class PacedFrame:
    """Frame ``index`` at its presentation time."""

    index: int
    image: np.ndarray  # uint8 [H, W, 3] RGB
    audio: np.ndarray  # int16 [block] mono at OUT_RATE: this frame's own audio


class LiveHead:
    """One live session for one framework connection: speech in as the framework's PCM, frames out
    by ``frames()`` (one reader).

    engine: an engine to share (its owner stops it); else one is built from ``names`` (plugin per
    contract: "audio", "avatar", "torso"; None picks the default) and ``values`` (plugin config by
    contract, as ``being run`` takes them), and stopped by ``aclose()``. Loading plugins blocks: build
    adapters before the event loop runs, or in a thread. margin_s: the playout margin of a built
    engine; max_speech_s: most seconds of speech that may wait (TTS runs ahead of real time)."""

    def __init__(self, engine: Engine | None = None, *, names: Mapping[str, str | None] | None = None,
                 values: Mapping[str, Mapping[str, Any]] | None = None, margin_s: float = 0.12,
                 max_speech_s: float = 120.0, label: str = "adapter") -> None:
        self._owned = engine is None
        if engine is None:
            registry = Registry.discover()
            selection = select(registry, dict(names or {}), {c: dict(v) for c, v in (values or {}).items()})
            triple = LoadedTriple.load(selection, registry)
            try:
                engine = Engine(triple, margin_s=margin_s)
            except BaseException:
                triple.close()
                raise
        elif names or values:
            raise InputError("give the adapter an engine or plugin names and config, not both",
                             hint="the engine's plugins are already chosen")
        self.engine = engine
        self.size: tuple[int, int] = tuple(engine.compositor.info().size)  # (width, height)
        self.session = LiveSession(f"{label}-{uuid.uuid4().hex[:8]}", engine, max_speech_s=max_speech_s)
        try:
            engine.attach(self.session)  # raises when the engine already stopped on an error
        except BaseException:
            if self._owned:
                engine.stop()
                engine.triple.close()
            raise
        self._blank = np.zeros((self.size[1], self.size[0], 3), np.uint8)  # before the first frame is made
        self._rate = OUT_RATE  # of the TTS audio pushed last
        self._next = 0  # the next frame index frames() yields
        self._closed = False

    def push(self, pcm: bytes | memoryview, rate: int, channels: int = 1) -> None:
        """Queue TTS speech: interleaved 16-bit PCM at ``rate`` Hz, one continuous stream per utterance."""
        self._rate = rate
        self.session.push_speech(pcm16_to_float(pcm, channels), rate, source="tts")

    def end_utterance(self) -> int:
        """The utterance is complete: its last partial frame is padded with silence and plays (it
        would otherwise wait for more speech). Returns the index of the last frame that carries its
        speech (before the next frame, if none is left to speak)."""
        s = self.session
        s.push_speech(np.zeros(0, np.float32), self._rate, source="tts", end=True)
        # whole frames are queued now, spoken at ticks ``ticks`` on. Read before ``ticks``: a frame
        # the engine takes between the two reads makes the answer one frame late, never early
        queued = math.ceil(round(s.speech.queued_s * OUT_RATE) / s.block)
        return s.ticks + queued - 1

    def interrupt(self) -> float:
        """Barge-in: the speech queued and not yet presented is dropped: the next frame is silent, the
        mouth at rest (``LiveSession.interrupt``). Returns the seconds dropped."""
        return self.session.interrupt()

    async def frames(self) -> AsyncIterator[PacedFrame]:
        """Frames from the one due now on, each at its presentation time (``session.due``), until
        the session closes; raises RuntimeError when the engine stopped on an error."""
        s = self.session
        first = True
        while not s.closed.is_set():
            now_index = math.floor((time.monotonic() - s.t0 - s.lead_s) * s.fps)
            if first or self._next < now_index - MAX_LAG_FRAMES:
                self._next, first = max(0, now_index), False
            j = self._next
            delay = s.due(j) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            image = s.take_video(j)
            audio = s.take_audio(j * s.block, s.block)
            self._next = j + 1
            yield PacedFrame(j, self._blank if image is None else image, audio)
        if self.engine.error is not None:
            raise RuntimeError(f"the live engine stopped: {self.engine.error}") from self.engine.error

    async def drain(self) -> None:
        """Wait until the speech queued so far has been presented (someone must read ``frames``)."""
        s = self.session
        if s.closed.is_set():
            return
        last = self.end_utterance()
        while self._next <= last and not s.closed.is_set():
            await asyncio.sleep(1 / s.fps)

    async def aclose(self) -> None:
        """End the session; a built engine is stopped and its plugins closed. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.session.close()
        if self._owned:
            await asyncio.to_thread(self.engine.stop)  # joins the engine's thread
            self.engine.triple.close()

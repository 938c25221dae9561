"""WebRTC media for a live session (aiortc): the video and audio tracks it sends, paced to the
session's presentation clock so that the browser locks them by time, and the microphone it may
receive."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from fractions import Fraction

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .session import OUT_RATE, LiveSession
from .speech import pcm16_to_float

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000  # RTP's video clock
AUDIO_FRAME = OUT_RATE // 50  # 20 ms, Opus's frame


class _SessionTrack(MediaStreamTrack):
    def __init__(self, session: LiveSession) -> None:
        super().__init__()
        self.session = session

    async def _wait(self, due: float) -> None:
        if self.session.closed.is_set():
            self.stop()
            raise MediaStreamError
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class SessionVideoTrack(_SessionTrack):
    """Frame ``j`` leaves at ``session.due(j)``; a track that starts or falls behind starts from the
    frame due now (the ones before are skipped)."""

    kind = "video"

    def __init__(self, session: LiveSession, size: tuple[int, int]) -> None:
        super().__init__(session)
        self._next: int | None = None
        self._blank = np.zeros((size[1], size[0], 3), np.uint8)

    async def recv(self) -> av.VideoFrame:
        s = self.session
        now_index = math.floor((time.monotonic() - s.t0 - s.lead_s) * s.fps)
        j = max(0, now_index) if self._next is None else max(self._next, now_index)
        await self._wait(s.due(j))
        image = s.take_video(j)
        frame = av.VideoFrame.from_ndarray(self._blank if image is None else image, format="rgb24")
        frame.pts, frame.time_base = round(j * VIDEO_CLOCK / s.fps), Fraction(1, VIDEO_CLOCK)
        self._next = j + 1
        return frame


class SessionAudioTrack(_SessionTrack):
    """20 ms frames of the session's audio, sample ``p`` leaving at ``t0 + lead_s + p / OUT_RATE``.
    The audio never skips: aiortc's Opus encoder numbers its RTP timestamps by the samples it was
    given, so a skip would shift the sound against the picture for the rest of the session; a track
    that fell behind sends its frames at once until it has caught up."""

    kind = "audio"

    def __init__(self, session: LiveSession) -> None:
        super().__init__(session)
        self._next: int | None = None

    async def recv(self) -> av.AudioFrame:
        s = self.session
        now_pos = math.floor((time.monotonic() - s.t0 - s.lead_s) * 50) * AUDIO_FRAME
        pos = max(0, now_pos) if self._next is None else self._next
        await self._wait(s.t0 + s.lead_s + pos / OUT_RATE)
        pcm = s.take_audio(pos, AUDIO_FRAME)
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = OUT_RATE, pos, Fraction(1, OUT_RATE)
        self._next = pos + AUDIO_FRAME
        return frame


async def consume_microphone(track: MediaStreamTrack, session: LiveSession) -> None:
    """Feed a received audio track (the browser's microphone) to the session as speech, until the
    track or the session ends."""
    while not session.closed.is_set():
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        mono = pcm16_to_float(frame.to_ndarray(), len(frame.layout.channels))  # packed s16 [1, n x channels]
        try:
            session.push_speech(mono, frame.sample_rate, source="microphone")
        except Exception as exc:  # noqa: BLE001 - a full queue or closed session ends the microphone, not the server
            log.warning("session %s: microphone audio dropped: %s", session.id, exc)
            return

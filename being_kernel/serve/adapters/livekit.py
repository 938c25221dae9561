"""LiveKit Agents: Being as the avatar of a voice agent, in-process.

``BeingVideoGenerator`` is a ``livekit.agents.voice.avatar.VideoGenerator``: the ``AvatarRunner``
pushes the agent's TTS audio into it (``push_audio``) and publishes what it yields. It yields, at
each frame's presentation time, the frame's image and then its own 1/fps s of audio, silence and the
idle head between utterances, and ``AudioSegmentEnd`` right after the last audio of each utterance
(the runner then reports playback finished to the agent). ``clear_buffer`` (the agent was
interrupted) drops the speech not yet played: the next frame is silent (``LiveHead.interrupt``)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ...errors import PluginError
from ..engine import Engine
from ..session import OUT_RATE
from .pacing import LiveHead

try:
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator
except ImportError as exc:
    raise PluginError(f"the LiveKit adapter needs livekit-agents, which did not import ({exc})",
                      hint="pip install 'being-kernel[livekit]'") from exc

__all__ = ["BeingVideoGenerator"]


class BeingVideoGenerator(VideoGenerator):
    """Being's live head as a LiveKit avatar video generator (one per agent session).

    engine: an ``Engine`` to share; else one is built from ``names``/``values`` (plugin per contract
    and their config, as ``being run`` takes them) and closed by ``aclose``. See ``LiveHead``."""

    def __init__(self, engine: Engine | None = None, *, names: Mapping[str, str | None] | None = None,
                 values: Mapping[str, Mapping[str, Any]] | None = None, margin_s: float = 0.12,
                 max_speech_s: float = 120.0) -> None:
        self._head = LiveHead(engine, names=names, values=values, margin_s=margin_s, max_speech_s=max_speech_s,
                              label="livekit")
        self._ends: deque[int] = deque()  # index of the last frame of each ended utterance not yet out

    @property
    def options(self) -> AvatarOptions:
        """The ``AvatarOptions`` for the ``AvatarRunner`` that publishes this generator's output."""
        w, h = self._head.size
        return AvatarOptions(video_width=w, video_height=h, video_fps=self._head.session.fps,
                             audio_sample_rate=OUT_RATE, audio_channels=1)

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """TTS audio (any rate, mono or interleaved channels), or the end of the utterance."""
        if isinstance(frame, AudioSegmentEnd):
            self._ends.append(self._head.end_utterance())
        else:
            self._head.push(frame.data, frame.sample_rate, frame.num_channels)

    def clear_buffer(self) -> None:
        """Barge-in: drop the speech not yet played and its pending ``AudioSegmentEnd``s (the runner
        reports the interrupted playback itself)."""
        self._head.interrupt()
        self._ends.clear()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        w, h = self._head.size
        async for f in self._head.frames():
            yield rtc.VideoFrame(w, h, rtc.VideoBufferType.RGB24, f.image.tobytes())
            yield rtc.AudioFrame(f.audio.tobytes(), OUT_RATE, 1, len(f.audio))
            while self._ends and f.index >= self._ends[0]:
                self._ends.popleft()
                yield AudioSegmentEnd()

    async def aclose(self) -> None:
        """End the session (iteration stops at the next frame); a built engine is stopped."""
        await self._head.aclose()

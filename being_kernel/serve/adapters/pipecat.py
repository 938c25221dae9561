"""pipecat: Being as the talking head of a voice pipeline, in-process.

``BeingVideoProcessor`` is a ``FrameProcessor`` placed right after the TTS service. It takes the
TTS audio (``TTSAudioRawFrame``: not passed on) and, from the ``StartFrame`` on, pushes downstream
at each frame's presentation time the frame's image (``OutputImageRawFrame``, RGB) and then its own
1/fps s of audio: a continuous stream, the idle head and silence between utterances. The audio goes
as ``SpeechOutputAudioRawFrame`` (an ``OutputAudioRawFrame`` for a stream that carries silence too),
from which the output transport tells when the bot speaks. ``TTSStartedFrame``/``TTSStoppedFrame``
close the utterance so its last partial frame plays; ``InterruptionFrame`` (barge-in) drops the
speech not yet played, the next frame silent (``LiveHead.interrupt``). All but the TTS audio is
passed on."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ...errors import PluginError
from ..engine import Engine
from ..session import OUT_RATE
from .pacing import LiveHead

try:
    from pipecat.frames.frames import (
        CancelFrame,
        EndFrame,
        Frame,
        InterruptionFrame,
        OutputImageRawFrame,
        SpeechOutputAudioRawFrame,
        StartFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
except ImportError as exc:
    raise PluginError(f"the pipecat adapter needs pipecat-ai, which did not import ({exc})",
                      hint="pip install 'being-kernel[pipecat]'") from exc

__all__ = ["BeingVideoProcessor"]


class BeingVideoProcessor(FrameProcessor):
    """Being's live head as a pipecat processor (one per pipeline).

    engine: an ``Engine`` to share; else one is built from ``names``/``values`` (plugin per contract
    and their config, as ``being run`` takes them) and closed when the pipeline ends. See
    ``LiveHead``. Other keyword arguments go to ``FrameProcessor``."""

    def __init__(self, engine: Engine | None = None, *, names: Mapping[str, str | None] | None = None,
                 values: Mapping[str, Mapping[str, Any]] | None = None, margin_s: float = 0.12,
                 max_speech_s: float = 120.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._head = LiveHead(engine, names=names, values=values, margin_s=margin_s, max_speech_s=max_speech_s,
                              label="pipecat")
        self._task: asyncio.Task | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images: the output transport's ``video_out_width``/``_height``."""
        return self._head.size

    @property
    def fps(self) -> float:
        """Frames a second: the output transport's ``video_out_framerate``."""
        return self._head.session.fps

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            self._head.push(frame.audio, frame.sample_rate, frame.num_channels)
            return
        if isinstance(frame, (TTSStartedFrame, TTSStoppedFrame)):
            self._head.end_utterance()
        elif isinstance(frame, InterruptionFrame):
            self._head.interrupt()
        elif isinstance(frame, EndFrame):
            await self._head.drain()  # the answer plays to its end before the pipeline stops
            await self._stop()
        elif isinstance(frame, CancelFrame):
            await self._stop()
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame) and self._task is None:
            self._task = self.create_task(self._stream())

    async def _stream(self) -> None:
        w, h = self._head.size
        try:
            async for f in self._head.frames():
                await self.push_frame(OutputImageRawFrame(image=f.image.tobytes(), size=(w, h), format="RGB"))
                await self.push_frame(SpeechOutputAudioRawFrame(audio=f.audio.tobytes(), sample_rate=OUT_RATE,
                                                                num_channels=1))
        except RuntimeError as exc:  # the engine stopped: the pipeline hears of it
            await self.push_error(f"Being's live engine stopped: {exc}", exception=exc, force_treat_as_permanent=True)

    async def _stop(self) -> None:
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None
        await self._head.aclose()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop()

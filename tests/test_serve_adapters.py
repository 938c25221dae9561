"""The voice-agent adapters (``being_kernel.serve.adapters``) on the fake plugins, each driven with its
framework's own frame types in-process, no server: checked against what the fakes must show (the
fake mouth opens with the loudness of its own frame's audio), so every video frame must come with
its own 1/25 s of audio; an interrupt silences the frames after it and closes the mouth. Each
framework's tests skip when it is not installed; the missing-package error is tested without it."""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time

import numpy as np
import pytest

from being_kernel.errors import InputError, PluginError
from being_kernel.serve.session import OUT_RATE

from being_kernel.serve.engine import Engine

from conftest import LIVE_FAKES as FAKES, LIVE_SIZE as SIZE
from test_serve import mouth_pixels
from test_serve import tone as float_tone

BLOCK = OUT_RATE // 25  # audio samples per video frame


def tone(seconds: float, rate: int) -> np.ndarray:
    """A 220 Hz burst as 16-bit PCM [n], what a TTS hands the frameworks."""
    return np.round(float_tone(seconds, rate) * 32767).astype(np.int16)


def loud(audio: np.ndarray) -> bool:
    """A frame of the burst (RMS 0.057): its edges after resampling count as neither loud nor silent."""
    return float(np.sqrt(np.mean((audio / 32767.0) ** 2))) > 0.03


def check_mouth(frames: list[tuple[np.ndarray, np.ndarray]]) -> int:
    """Loud frames (image, audio) show the mouth open, silent ones shut. Returns the loud ones."""
    assert all(a.shape == (BLOCK,) for _, a in frames)
    assert all(mouth_pixels(image) > 40 for image, a in frames if loud(a))
    assert all(mouth_pixels(image) <= 10 for image, a in frames if not a.any())
    return sum(loud(a) for _, a in frames)


def check_cut(after: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """The frames (image, audio) after an interrupt: all silent, the mouth shut from the third on.
    The first two may still show the image made before: the interrupt wakes the engine to make them
    again, and a frame due before that is done keeps its image."""
    assert all(not a.any() for _, a in after)
    assert all(mouth_pixels(image) <= 10 for image, _ in after[2:])


# -- without the frameworks -----------------------------------------------------------------------
@pytest.mark.parametrize("module, package", [("livekit", "livekit"), ("pipecat", "pipecat")])
def test_a_missing_framework_names_its_extra(monkeypatch: pytest.MonkeyPatch, module: str, package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)  # None: "import fails" (as when not installed)
    monkeypatch.delitem(sys.modules, f"being_kernel.serve.adapters.{module}", raising=False)
    with pytest.raises(PluginError) as err:
        importlib.import_module(f"being_kernel.serve.adapters.{module}")
    assert err.value.hint == f"pip install 'being-kernel[{module}]'"


# -- LiveKit Agents -------------------------------------------------------------------------------------
def _livekit():
    pytest.importorskip("livekit.agents", reason="needs livekit-agents: pip install 'being-kernel[livekit]'")
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd, VideoGenerator

    from being_kernel.serve.adapters.livekit import BeingVideoGenerator
    return rtc, AudioSegmentEnd, VideoGenerator, BeingVideoGenerator


def test_livekit_generator_locks_speech_to_the_mouth_ends_utterances_and_clears(live_engine: Engine) -> None:
    """What an AvatarRunner sees: per frame an RGB24 image then its 1920 samples at 48 kHz, paced at
    25 fps; AudioSegmentEnd right after the utterance's last audio; after clear_buffer, silence, the
    mouth shut (``check_cut``) and no AudioSegmentEnd for the dropped speech."""
    rtc, AudioSegmentEnd, VideoGenerator, BeingVideoGenerator = _livekit()

    async def scenario() -> None:
        gen = BeingVideoGenerator(live_engine)
        assert isinstance(gen, VideoGenerator)
        assert (gen.options.video_width, gen.options.video_height, gen.options.video_fps) == (96, 96, 25)
        assert (gen.options.audio_sample_rate, gen.options.audio_channels) == (OUT_RATE, 1)
        log: list[tuple[float, object]] = []

        async def consume() -> None:
            async for item in gen:
                log.append((time.monotonic(), item))

        def frames(items: list[tuple[float, object]]) -> list[tuple[np.ndarray, np.ndarray, int]]:
            """(image, audio, AudioSegmentEnds right after it) per frame, checking each frame's form."""
            out = []
            for _, item in items:
                if isinstance(item, rtc.VideoFrame):
                    assert (item.width, item.height, item.type) == (96, 96, rtc.VideoBufferType.RGB24)
                    out.append([np.frombuffer(item.data, np.uint8).reshape(96, 96, 3), None, 0])
                elif isinstance(item, rtc.AudioFrame):
                    assert (item.sample_rate, item.num_channels, item.samples_per_channel) == (OUT_RATE, 1, BLOCK)
                    assert out[-1][1] is None  # one audio frame per video frame, right after it
                    out[-1][1] = np.frombuffer(item.data, np.int16).copy()
                else:
                    assert isinstance(item, AudioSegmentEnd) and out[-1][1] is not None
                    out[-1][2] += 1
            return [tuple(f) for f in out]

        task = asyncio.create_task(consume())
        try:
            # an utterance at 48 kHz in 10 ms frames, as a TTS streams it
            pcm = tone(0.6, OUT_RATE)
            for chunk in np.split(pcm, 60):
                await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), OUT_RATE, 1, len(chunk)))
            await gen.push_audio(AudioSegmentEnd())
            await asyncio.sleep(1.4)
            first = frames(log)
            times = [t for t, item in log if isinstance(item, rtc.VideoFrame)]
            assert 30 <= len(first) <= 37 and np.median(np.diff(times)) == pytest.approx(0.04, abs=0.004)
            assert check_mouth([(i, a) for i, a, _ in first]) == 15  # 0.6 s
            spoken = [j for j, (_, a, _) in enumerate(first) if a.any()]
            assert len(spoken) == 15 and spoken == list(range(spoken[0], spoken[0] + 15))
            sent = np.concatenate([first[j][1] for j in spoken]).astype(np.int32)
            assert np.abs(sent - pcm).max() <= 2  # the speech itself, in order, nothing lost
            assert [j for j, (_, _, ends) in enumerate(first) if ends] == [spoken[-1]]

            # a long utterance at 24 kHz (resampled), cut after 10 loud frames
            n = len(log)
            pcm = tone(3.0, 24_000)
            for chunk in np.array_split(pcm, 150):
                await gen.push_audio(rtc.AudioFrame(chunk.tobytes(), 24_000, 1, len(chunk)))
            await gen.push_audio(AudioSegmentEnd())
            while sum(loud(a) for _, a, _ in frames(log[n:])) < 10:
                await asyncio.sleep(0.005)
            gen.clear_buffer()
            cut = len(log)
            await asyncio.sleep(0.8)
            before, after = frames(log[n:cut]), frames(log[cut:])
            assert check_mouth([(i, a) for i, a, _ in before]) == 10
            assert len(after) >= 15 and not any(ends for _, _, ends in before + after)
            check_cut([(i, a) for i, a, _ in after])
        finally:
            await gen.aclose()
            await asyncio.wait_for(task, 1.0)  # the stream ends with the session

    asyncio.run(scenario())


def test_livekit_generator_built_from_plugin_names_owns_its_engine(live_engine: Engine) -> None:
    _, _, _, BeingVideoGenerator = _livekit()

    def engines() -> int:
        return sum(t.name == "being-serve-engine" for t in threading.enumerate())

    async def scenario() -> None:
        running = engines()
        gen = BeingVideoGenerator(names=FAKES, values=SIZE)
        assert engines() == running + 1 and gen.options.video_width == 96
        items = []
        async for item in gen:
            items.append(item)
            if len(items) == 4:
                break
        await gen.aclose()
        assert engines() == running  # stopped, its plugins closed
        await gen.aclose()  # twice is fine

    asyncio.run(scenario())
    with pytest.raises(InputError, match="not both"):
        _livekit()[3](live_engine, names=FAKES)


# -- pipecat --------------------------------------------------------------------------------------------
def test_pipecat_processor_locks_speech_to_the_mouth_and_barges_in(live_engine: Engine) -> None:
    """In a pipeline: TTS audio in (24 kHz, any chunking), per frame an RGB image then its 1920
    samples at 48 kHz out, the TTS audio itself not passed on and every other frame passed on; after
    the InterruptionFrame, silence and the mouth shut (``check_cut``)."""
    pytest.importorskip("pipecat", reason="needs pipecat-ai: pip install 'being-kernel[pipecat]'")
    from pipecat.frames.frames import (
        InterruptionFrame,
        OutputAudioRawFrame,
        OutputImageRawFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
    )
    from pipecat.tests.utils import SleepFrame, run_test

    from being_kernel.serve.adapters.pipecat import BeingVideoProcessor

    def tts(pcm: np.ndarray) -> list[TTSAudioRawFrame]:
        """What a 24 kHz TTS service pushes: chunks of ~1000 samples (not frame-aligned)."""
        chunks = np.array_split(pcm, len(pcm) // 1000)
        return [TTSAudioRawFrame(audio=c.tobytes(), sample_rate=24_000, num_channels=1) for c in chunks]

    processor = BeingVideoProcessor(live_engine)
    assert processor.size == (96, 96) and processor.fps == 25
    sent = [TTSStartedFrame(), *tts(tone(0.6, 24_000)), TTSStoppedFrame(), SleepFrame(sleep=1.2),
            TTSStartedFrame(), *tts(tone(3.0, 24_000)), SleepFrame(sleep=0.8),
            InterruptionFrame(), SleepFrame(sleep=0.8)]
    down, _ = asyncio.run(run_test(processor, frames_to_send=sent))

    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
    media = [k for k, f in enumerate(down) if isinstance(f, (OutputImageRawFrame, OutputAudioRawFrame))]
    others = [type(f) for f in down if not isinstance(f, (OutputImageRawFrame, OutputAudioRawFrame))]
    assert others == [TTSStartedFrame, TTSStoppedFrame, TTSStartedFrame, InterruptionFrame]
    pairs = []  # (position of the image in down, image, audio)
    for k in media:
        f = down[k]
        if isinstance(f, OutputImageRawFrame):
            assert (f.size, f.format, len(f.image)) == ((96, 96), "RGB", 96 * 96 * 3)
            pairs.append([k, np.frombuffer(f.image, np.uint8).reshape(96, 96, 3), None])
        else:
            assert (f.sample_rate, f.num_channels, f.num_frames) == (OUT_RATE, 1, BLOCK)
            assert pairs and pairs[-1][2] is None  # one audio frame per image, right after it
            pairs[-1][2] = np.frombuffer(f.audio, np.int16)
    assert pairs[-1][2] is not None
    second = [k for k, f in enumerate(down) if isinstance(f, TTSStartedFrame)][1]
    cut = next(k for k, f in enumerate(down) if isinstance(f, InterruptionFrame))
    assert check_mouth([(i, a) for k, i, a in pairs if k < second]) in (14, 15, 16)  # 0.6 s, edges resampled
    assert check_mouth([(i, a) for k, i, a in pairs if second < k < cut]) >= 8  # 0.8 s in, less the lead
    after = [(i, a) for k, i, a in pairs if k > cut]  # an image after the cut: its frame was taken after it
    assert len(after) >= 15
    check_cut(after)

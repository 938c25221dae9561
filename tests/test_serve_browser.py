"""``being serve`` in a real browser: headless Chromium opens the page, its fake microphone plays
speech, and the page reports what it showed and heard. With the fake triple (the mouth follows the
loudness of its own frame's audio) the mouth must move with the sound that arrives, at the same time.
Chromium comes from ``scripts/install_browser.sh`` (run by ``scripts/test.sh``); without it the test
skips."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("aiortc", reason="being serve needs aiortc: pip install 'being-kernel[serve]'")

from being_kernel.media import demo_speech, resample  # noqa: E402
from being_kernel.testing.live_browser import figures, find_chromium, run_page  # noqa: E402

from test_serve import config, running  # noqa: E402

CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: bash scripts/install_browser.sh")
def test_the_page_shows_a_mouth_that_moves_with_the_sound_it_plays(tmp_path: Path) -> None:
    speech = demo_speech()
    voice = resample(speech.samples, speech.sample_rate, 48_000)
    gap = np.zeros(48_000, np.float32)
    wav = tmp_path / "microphone.wav"
    sf.write(wav, np.concatenate([gap, gap, voice, gap, voice, gap, voice, gap, voice, gap]), 48_000, subtype="PCM_16")

    async def scenario() -> dict:
        async with running(config()) as (server, url):
            report = await run_page(CHROMIUM, f"{url}/?autostart=1&source=microphone&measure=1", str(wav), 18.0,
                                    str(tmp_path / "profile"))
            return report | {"server_sessions": len(server.live)}

    report = asyncio.run(scenario())
    # the steady state: a stall of this 2-core machine at the start (Chromium starting beside the
    # server) grows the browser's audio jitter buffer, and its A/V sync takes seconds to follow
    fig = figures(report, settle_s=10.0)
    print(f"browser: {fig}")
    assert fig.frames > 120
    assert fig.correlation > 0.6  # the mouth moves with the sound
    assert abs(fig.av_offset_ms) <= 100  # locked: a session that ignored presentation time is off by its lead
    assert fig.sound_delay_ms is not None and 0 < fig.sound_delay_ms < 1500

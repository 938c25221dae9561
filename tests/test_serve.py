"""``being serve``: live sessions on the fake plugins, checked against what the fakes must show (the
fake mouth opens with the loudness of its own frame's audio), and the web API with a real WebRTC
client (aiortc): frames and sound arrive, speech pushed three ways, barge-in, and bad input."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("aiortc", reason="being serve needs aiortc: pip install 'being-kernel[serve]'")

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402

from being_kernel.discovery import Registry  # noqa: E402
from being_kernel.errors import InputError  # noqa: E402
from being_kernel.media.clip import LoadedTriple, select  # noqa: E402
from being_kernel.serve.app import Server, ServeConfig, parse_ice  # noqa: E402

from conftest import LIVE_FAKES as FAKES, LIVE_SIZE as SIZE  # noqa: E402
from being_kernel.serve.engine import Engine  # noqa: E402
from being_kernel.serve.session import OUT_RATE, LiveSession  # noqa: E402
from being_kernel.serve.speech import Resampler, SpeechQueue  # noqa: E402

MOUTH = (0.45, 0.08, 0.10)  # the fake renderer's mouth colour


def mouth_pixels(image: np.ndarray) -> int:
    """Pixels of the fake renderer's mouth colour in an RGB uint8 frame: grows as the jaw opens."""
    rgb = image.astype(np.float32) / 255
    return int((np.abs(rgb - np.array(MOUTH, np.float32)).max(axis=-1) < 0.08).sum())


def tone(seconds: float, rate: int = OUT_RATE, level: float = 0.08) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def play(session: LiveSession, frames: int, start: int | None = None, during=None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Take ``frames`` frames from ``session`` at their presentation times, as the media tracks do:
    (index, image, audio int16 [block]). ``during(index)`` runs before each frame is taken."""
    first = start if start is not None else max(0, int((time.monotonic() - session.t0 - session.lead_s) * session.fps) + 1)
    out = []
    for j in range(first, first + frames):
        if during is not None:
            during(j)
        time.sleep(max(0.0, session.due(j) - time.monotonic()))
        image = session.take_video(j)
        audio = session.take_audio(j * session.block, session.block)
        out.append((j, image, audio))
    return out


# -- the speech path ------------------------------------------------------------------------------------
def test_resampler_is_chunk_invariant_and_keeps_pitch() -> None:
    """Speech pushed in any chunking gives the same samples (one continuous stream), and a 440 Hz
    tone at 24 kHz is 440 Hz at 48 kHz (the analytic oracle: the FFT peak)."""
    rate = 24_000
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    whole = Resampler(rate, OUT_RATE)
    a = np.concatenate([whole(x), whole.flush()])
    chunked = Resampler(rate, OUT_RATE)
    cuts = np.cumsum(np.random.default_rng(0).integers(1, 900, 200))
    parts = [chunked(p) for p in np.split(x, cuts[cuts < len(x)])]
    b = np.concatenate([*parts, chunked.flush()])
    assert abs(len(a) - 2 * len(x)) <= 64 and len(a) == len(b)
    np.testing.assert_allclose(a, b, atol=1e-6)
    spectrum = np.abs(np.fft.rfft(a[:OUT_RATE] * np.hanning(min(OUT_RATE, len(a)))))
    assert abs(np.argmax(spectrum) * OUT_RATE / min(OUT_RATE, len(a)) - 440) <= 1.0


def test_speech_queue_blocks_limit_and_utterances() -> None:
    q = SpeechQueue(rate=1000, block=40, max_s=1.0)
    q.put(np.ones(50, np.float32))  # a block and a bit: the bit waits for the rest
    block, speaking = q.take()
    assert speaking and block.shape == (40,) and (block == 1).all()
    block, speaking = q.take()
    assert not speaking and (block == 0).all() and q.queued_s == pytest.approx(0.010)
    q.put(np.full(10, 2.0, np.float32), end=True)  # completes it; the end pads the last block
    block, speaking = q.take()
    assert speaking and (block[:10] == 1).all() and (block[10:20] == 2).all() and (block[20:] == 0).all()
    assert [u.position for u in q.utterances] == [0]
    with pytest.raises(InputError, match="more than 1 s"):
        q.put(np.ones(1001, np.float32))
    q.put(np.ones(400, np.float32))
    assert q.clear() == pytest.approx(0.4) and q.queued_s == 0


# -- a session on the engine --------------------------------------------------------------------------
def test_idle_session_keeps_time_with_the_mouth_closed(live_engine: Engine) -> None:
    """No speech: 25 frames a second keep coming, silent, the mouth at rest, none dropped."""
    s = LiveSession("idle", live_engine)
    live_engine.attach(s)
    try:
        t = time.monotonic()
        got = play(s, 25)
        took = time.monotonic() - t
        assert all(image is not None for _, image, _ in got)
        assert all(not audio.any() for _, _, audio in got)
        assert max(mouth_pixels(image) for _, image, _ in got) <= 10  # a closed mouth is a line; open, ~150
        assert s.stats.frames_dropped == 0 and 0.9 < took < 1.6
    finally:
        s.close()


def test_speech_opens_the_mouth_on_its_own_frames(live_engine: Engine) -> None:
    """A/V lock: the frames whose own audio is speech (the fake's jaw follows its frame's loudness)
    show the mouth open; every other frame shows it at rest; the audio sent is the speech pushed."""
    s = LiveSession("speech", live_engine)
    live_engine.attach(s)
    try:
        burst = tone(0.6)
        s.push_speech(burst, OUT_RATE, end=True)
        got = play(s, 60)
        assert s.stats.frames_dropped == 0
        loud = [j for j, _, audio in got if np.abs(audio).max() > 1000]
        opened = [j for j, image, _ in got if mouth_pixels(image) > 40]
        assert len(loud) == 15 and loud == opened  # 0.6 s at 25 fps
        sent = np.concatenate([audio for j, _, audio in got if j in loud]).astype(np.float32) / 32767
        np.testing.assert_allclose(sent, burst, atol=2 / 32767)
    finally:
        s.close()


def test_interrupt_silences_and_closes_the_mouth_at_the_next_frame(live_engine: Engine) -> None:
    s = LiveSession("barge", live_engine)
    live_engine.attach(s)
    try:
        s.push_speech(tone(3.0), OUT_RATE, end=True)
        cut, seen = {}, []

        def barge(j: int) -> None:
            seen.append(j)
            if len(seen) == 25:
                cut["dropped"], cut["at"] = s.interrupt(), j

        got = play(s, 40, during=barge)
        rest = min(mouth_pixels(image) for _, image, _ in got)
        before = [(j, image, audio) for j, image, audio in got if j < cut["at"] and np.abs(audio).max() > 1000]
        after = [(j, image, audio) for j, image, audio in got if j >= cut["at"]]
        assert before and all(mouth_pixels(image) > rest + 20 for _, image, _ in before)
        assert all(not audio.any() for _, _, audio in after)
        assert all(mouth_pixels(image) <= rest + 5 for _, image, _ in after)
        assert cut["dropped"] > 1.5 and s.speech.queued_s == 0 and s.stats.interrupts == 1
    finally:
        s.close()


def test_a_slow_renderer_drops_frames_but_never_the_sound() -> None:
    """A renderer slower than real time: frames are skipped (shown again) and counted; the audio
    keeps its time and loses nothing."""
    registry = Registry.discover()
    triple = LoadedTriple.load(select(registry, FAKES, {**SIZE, "avatar": {"size": [96, 96], "delay_s": 0.1}}),
                               registry)
    slow = Engine(triple, margin_s=0.0)
    s = LiveSession("slow", slow)
    slow.attach(s)
    try:
        assert slow.margin_s >= 0.2  # the margin grows to twice the measured frame cost
        s.push_speech(tone(1.6), OUT_RATE, end=True)
        got = play(s, 40, start=0)
        sent = np.concatenate([audio for _, _, audio in got]).astype(np.float32) / 32767
        assert np.abs(sent).max() > 0.07 and (np.abs(sent) > 0.001).sum() > 0.9 * 1.6 * OUT_RATE * 0.6
        assert 10 <= s.stats.frames_dropped <= 38 and s.stats.audio_underruns == 0
    finally:
        s.close()
        slow.stop()
        triple.close()


def test_a_machine_that_gets_busier_raises_the_lead_once_and_keeps_sound_and_picture_together() -> None:
    """The renderer turns slow mid-session (0.1 s a frame, as under a competing load): the session's
    lead grows to leave time for it, frames are made again, and the sound loses nothing."""
    registry = Registry.discover()
    triple = LoadedTriple.load(select(registry, FAKES, SIZE), registry)
    eng = Engine(triple, margin_s=0.08)
    s = LiveSession("busy", eng)
    eng.attach(s)
    try:
        first_lead = s.lead_s
        play(s, 10)
        object.__setattr__(triple.plugins["avatar"].config, "delay_s", 0.1)
        s.push_speech(tone(4.0), OUT_RATE, end=True)
        got = play(s, 100)
        assert s.lead_s >= first_lead + 0.1
        late = got[-40:]
        made = {mouth_pixels(image) for _, image, _ in late}
        assert len(made) > 1  # the picture moves again (not one frozen frame)
        assert s.stats.audio_underruns == 0
    finally:
        s.close()
        eng.stop()
        triple.close()


# -- the web API, with a real WebRTC client -----------------------------------------------------------------
@asynccontextmanager
async def running(config: ServeConfig):
    server = Server(config)
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Client:
    """A WebRTC viewer: receives the session's video and audio."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.video: list[tuple[float, object]] = []
        self.audio: list[tuple[float, object]] = []
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", lambda track: asyncio.ensure_future(self._pull(track)))

    async def _pull(self, track) -> None:  # noqa: ANN001
        store = self.video if track.kind == "video" else self.audio
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - the track ended
                return
            store.append((time.monotonic(), frame))

    async def connect(self, http: aiohttp.ClientSession, url: str, **body) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await http.post(f"{url}/api/sessions", json={"sdp": self.pc.localDescription.sdp, "type": "offer", **body})
        answer = await r.json()
        assert r.status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return answer


def config(**kw) -> ServeConfig:
    return ServeConfig(names=dict(FAKES), values=SIZE, margin_s=0.08, **kw)


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def test_a_browser_peer_gets_paced_video_and_sound_and_speech_three_ways(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    sf.write(wav, tone(0.8, 22_050), 22_050)

    async def scenario() -> None:
        async with running(config()) as (server, url), aiohttp.ClientSession() as http:
            client = Client()
            answer = await client.connect(http, url)
            sid = answer["session"]
            await asyncio.sleep(1.5)
            r = await http.post(f"{url}/api/sessions/{sid}/speech", data=wav.read_bytes())
            assert r.status == 200 and (await r.json())["seconds"] == pytest.approx(0.8, abs=0.01)
            r = await http.post(f"{url}/api/sessions/{sid}/speech", data=pcm16(tone(0.4, 16_000)),
                                headers={"Content-Type": "audio/L16; rate=16000"})
            assert r.status == 200
            async with http.ws_connect(f"{url}/api/sessions/{sid}/ws") as ws:
                await ws.send_json({"type": "start", "rate": 24_000})
                assert (await ws.receive_json())["type"] == "ok"
                for chunk in np.array_split(tone(0.4, 24_000), 7):
                    await ws.send_bytes(pcm16(chunk))
                await ws.send_json({"type": "end"})
                assert (await ws.receive_json())["type"] == "ok"
                await ws.send_json({"type": "nonsense"})
                assert (await ws.receive_json())["type"] == "error"
            await asyncio.sleep(2.5)
            stats = await (await http.get(f"{url}/api/sessions/{sid}/stats")).json()
            await client.pc.close()
            video = [f for _, f in client.video]
            assert len(video) > 80 and {(f.width, f.height) for f in video} == {(96, 96)}
            times = [t for t, _ in client.video[10:]]
            assert 22 < (len(times) - 1) / (times[-1] - times[0]) < 28  # paced at 25 fps
            opened = sum(mouth_pixels(f.to_ndarray(format="rgb24")) > 40 for f in video)
            assert 30 <= opened <= 45  # 1.6 s of speech at 25 fps, give or take codec blur at the edges
            spoken = sum(np.abs(f.to_ndarray()).max() > 1000 for _, f in client.audio)  # 20 ms frames, via Opus
            assert 78 <= spoken <= 83  # 1.6 s of speech
            assert stats["utterances"] == 1 and stats["frames_dropped"] <= 3  # the three came while speaking: one stretch
            assert stats["latency_ms"] == pytest.approx(stats["lead_ms"] + 20, abs=45)
            await asyncio.sleep(0.5)
            assert not server.live  # the client's close ended the session

    asyncio.run(scenario())


def test_bad_requests_get_clear_errors_and_leave_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(config(max_sessions=1, max_upload_bytes=64_000, max_speech_s=1.0)) as (server, url), \
                aiohttp.ClientSession() as http:
            async def expect(status: int, method: str, path: str, match: str, **kw) -> None:
                r = await http.request(method, url + path, **kw)
                body = await r.json()
                assert r.status == status and match in body["error"], (r.status, body)

            await expect(400, "POST", "/api/sessions", "not JSON", data=b"{oops")
            await expect(400, "POST", "/api/sessions", "malformed offer", json={"type": "offer", "sdp": "hello"})
            await expect(400, "POST", "/api/sessions", "malformed offer", json={"type": "offer", "sdp": "v=0\r\nm=bogus"})
            audio_only = RTCPeerConnection()
            audio_only.addTransceiver("audio", direction="recvonly")
            await audio_only.setLocalDescription(await audio_only.createOffer())
            await expect(400, "POST", "/api/sessions", "no video", json={"type": "offer",
                                                                         "sdp": audio_only.localDescription.sdp})
            await audio_only.close()
            await expect(400, "POST", "/api/sessions", "no such plugin", json={"type": "offer", "sdp": "v=0\r\n",
                                                                              "avatar": "nonexistent"})
            await expect(404, "GET", "/api/sessions/nobody/stats", "no session")
            assert not server.live
            client = Client()
            sid = (await client.connect(http, url))["session"]
            second = Client()
            await second.pc.setLocalDescription(await second.pc.createOffer())
            await expect(429, "POST", "/api/sessions", "limit", json={"type": "offer", "sdp": second.pc.localDescription.sdp})
            await second.pc.close()
            await expect(413, "POST", f"/api/sessions/{sid}/speech", "larger than", data=b"\0" * 70_000)
            await expect(400, "POST", f"/api/sessions/{sid}/speech", "empty", data=b"")
            await expect(400, "POST", f"/api/sessions/{sid}/speech", "sample rate", data=b"\0\0",
                         headers={"Content-Type": "audio/L16"})
            await expect(400, "POST", f"/api/sessions/{sid}/speech", "even number", data=b"\0\0\0",
                         headers={"Content-Type": "audio/L16; rate=16000"})
            await expect(400, "POST", f"/api/sessions/{sid}/speech", "",
                         data=b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
            await expect(400, "POST", f"/api/sessions/{sid}/speech", "more than 1 s",
                         data=pcm16(np.zeros(8_000 * 2)), params={"rate": "8000"})
            stats = await (await http.get(f"{url}/api/sessions/{sid}/stats")).json()
            assert stats["queued_s"] == 0
            r = await http.delete(f"{url}/api/sessions/{sid}")
            assert r.status == 200 and not server.live
            await client.pc.close()

    asyncio.run(scenario())


def test_a_token_guards_the_api() -> None:
    async def scenario() -> None:
        async with running(config(token="s3cret")) as (_, url), aiohttp.ClientSession() as http:
            assert (await http.get(f"{url}/api/info")).status == 401
            assert (await http.get(f"{url}/api/info", headers={"Authorization": "Bearer wrong"})).status == 401
            r = await http.get(f"{url}/api/info", headers={"Authorization": "Bearer s3cret"})
            assert r.status == 200 and (await r.json())["plugins"]["avatar"]
            assert (await http.get(f"{url}/api/info?token=s3cret")).status == 200
            page = await http.get(url + "/")  # the page itself is public; it sends the token from its #fragment
            assert page.status == 200 and "app.js" in await page.text()
            assert (await http.get(f"{url}/static/app.js")).status == 200
            assert (await http.get(f"{url}/static/../app.py")).status == 404

    asyncio.run(scenario())


VANISHING = """
import asyncio, sys, aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
async def main(url):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        answer = await (await http.post(url + "/api/sessions", json={"sdp": pc.localDescription.sdp, "type": "offer"})).json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    print("connected", flush=True)
    await asyncio.sleep(60)
asyncio.run(main(sys.argv[1]))
"""


def test_a_client_that_vanishes_mid_stream_is_cleaned_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A viewer killed without a goodbye: the connection's consent checks fail and the session, its
    tracks and its place in the engine go (aioice's 5 s check interval shortened for the test)."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    script = tmp_path / "viewer.py"
    script.write_text(VANISHING)

    async def scenario() -> None:
        async with running(config()) as (server, url):
            proc = await asyncio.create_subprocess_exec(sys.executable, str(script), url, stdout=subprocess.PIPE)
            try:
                assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"connected"
                for _ in range(100):
                    if server.live and all(lv.pc.connectionState == "connected" for lv in server.live.values()):
                        break
                    await asyncio.sleep(0.1)
                assert len(server.live) == 1
                (engine,) = server.engines.values()
                proc.send_signal(signal.SIGKILL)
                for _ in range(100):
                    if not server.live:
                        break
                    await asyncio.sleep(0.1)
                assert not server.live
                await asyncio.sleep(0.3)
                assert not engine.sessions
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()

    asyncio.run(scenario())


def test_ice_server_options() -> None:
    assert parse_ice(["stun:stun.example.org:3478", "turn:ann:pa:ss@turn.example.org:3478"]) == [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": "turn:turn.example.org:3478", "username": "ann", "credential": "pa:ss"}]
    with pytest.raises(InputError, match="expected stun"):
        parse_ice(["http://example.org"])

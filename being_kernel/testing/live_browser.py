"""What the page measures in a browser (``?measure=1``, ``window.beingReport()``), turned into figures:
whether the mouth moves with the sound that arrives, the A/V offset, and the latencies.

The oracle is the testing-kit fake triple: its renderer draws a mouth whose size follows the loudness
of that frame's own audio (frame j: audio [j/fps, (j+1)/fps)), so on a correct stream the mouth's
opening tracks the received sound's loudness, half a frame later than the frame's time. Thumbnails
are 96x96 grey; the fake head fills the frame, its mouth near the centre."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

THUMB = 96
STEP_MS = 5.0


@dataclass(frozen=True)
class BrowserFigures:
    frames: int  # video frames the page showed
    shown_fps: float  # frames shown per second
    first_frame_ms: float  # Start pressed -> first frame shown (signalling, ICE, DTLS, first frame)
    sound_delay_ms: float | None  # microphone in -> the same sound out of the session (cross-correlated)
    correlation: float | None = None  # fake triple: mouth opening vs received loudness, at the best lag
    av_offset_ms: float | None = None  # fake triple: sound later (+) or earlier (-) than the picture
    #: Chrome's own view, each second: the sender time of the video it plays minus that of the audio
    #: (inbound-rtp estimatedPlayoutTimestamp; + = the sound lags the picture)
    playout_av_ms: tuple[float, ...] = ()


def mouth_opening(thumbnails: list[str]) -> np.ndarray:
    """Dark pixels in the fake face's mouth region of each base64 96x96 grey thumbnail: [F]."""
    out = []
    for b64 in thumbnails:
        grey = np.frombuffer(base64.b64decode(b64), np.uint8).reshape(THUMB, THUMB)
        region = grey[38:66, 30:66]  # around the mouth (below the eyes, inside the face)
        out.append(float((region < 120).sum()))
    return np.asarray(out)


def _grid(times: np.ndarray, values: np.ndarray, t0: float, t1: float) -> np.ndarray:
    grid = np.arange(t0, t1, STEP_MS)
    return np.interp(grid, times, values)


def best_lag(a_t: np.ndarray, a: np.ndarray, b_t: np.ndarray, b: np.ndarray, max_ms: float) -> tuple[float, float]:
    """The lag L (ms) maximising the correlation of a(t) with b(t + L), and that correlation."""
    t0, t1 = max(a_t[0], b_t[0]) + max_ms, min(a_t[-1], b_t[-1]) - max_ms
    if t1 - t0 < 1000:
        raise ValueError("less than a second of overlap to correlate")
    x = _grid(a_t, a, t0, t1)
    x = (x - x.mean()) / (x.std() + 1e-12)
    best = (0.0, -2.0)
    for lag in np.arange(-max_ms, max_ms + STEP_MS, STEP_MS):
        y = _grid(b_t, b, t0 + lag, t1 + lag)
        y = (y - y.mean()) / (y.std() + 1e-12)
        r = float(np.mean(x * y[: len(x)]))
        if r > best[1]:
            best = (float(lag), r)
    return best


def _envelope(levels: list[list[float]], smooth: int = 8) -> tuple[np.ndarray, np.ndarray]:
    t = np.array([p[0] for p in levels]); v = np.array([p[1] for p in levels])
    kernel = np.ones(smooth) / smooth  # ~40 ms, a video frame's audio window
    return t, np.convolve(v, kernel, mode="same")


def figures(report: dict, fps: float = 25.0, fake_triple: bool = True, settle_s: float = 0.0) -> BrowserFigures:
    """Figures from a page report; the mouth and the A/V offset only for the fake triple's session.
    ``settle_s``: leave out the first seconds of frames (the A/V offset and frame rate are then
    those of the steady state, after the browser's jitter buffers and A/V sync have settled)."""
    frames = report["frames"]
    frames = [f for f in frames if f[0] >= frames[0][0] + 1000 * settle_s]
    shown = np.array([f[0] for f in frames])
    rt, remote = _envelope(report["remote"])
    delay = None
    if report.get("local"):
        lt, local = _envelope(report["local"])
        delay, _ = best_lag(lt, local, rt, remote, 1500.0)
    corr = offset = None
    if fake_triple:
        # the mouth of frame j follows audio [j/fps, (j+1)/fps): its loudness peaks half a frame after the frame
        lag, corr = best_lag(shown, mouth_opening([f[2] for f in frames]), rt, remote, 400.0)
        offset = lag - 500.0 / fps
    rate = (len(shown) - 1) / ((shown[-1] - shown[0]) / 1000) if len(shown) > 1 else 0.0
    return BrowserFigures(len(frames), rate, float(report["firstFrame"] - report["started"]), delay, corr, offset,
                          tuple(report.get("playout", ())))


def find_chromium() -> str | None:
    """Path of a Chromium on PATH (``scripts/install_browser.sh`` installs Debian's), or None."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


async def run_page(chromium: str, url: str, microphone_wav: str, seconds: float, workdir: str) -> dict:
    """Open ``url`` (the page, with ``?autostart=1&measure=1``) in headless Chromium whose fake
    microphone plays ``microphone_wav`` once; return the page's report once it has shown frames for
    ``seconds``. Chromium is driven through its DevTools protocol and always killed at the end."""
    import asyncio
    import json
    import re

    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_wav}%noloop", "--autoplay-policy=no-user-gesture-required",
        "--remote-debugging-port=0", f"--user-data-dir={workdir}", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        port = None
        while port is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            if not line:
                raise RuntimeError("chromium exited before it opened its DevTools port")
            if m := re.search(rb"DevTools listening on ws://[^:]+:(\d+)/", line):
                port = int(m.group(1))
        asyncio.ensure_future(_drain(proc.stderr))
        async with aiohttp.ClientSession() as http:
            targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            page = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                for n in range(1, 10_000):
                    await asyncio.sleep(0.5)
                    await ws.send_json({"id": n, "method": "Runtime.evaluate", "params": {
                        "expression": "JSON.stringify(window.beingReport ? window.beingReport() : null)",
                        "returnByValue": True}})
                    reply = await ws.receive_json()
                    while reply.get("id") != n:
                        reply = await ws.receive_json()
                    report = json.loads(reply["result"]["result"].get("value") or "null")
                    error = (await _page_error(ws, n)) if report is None else None
                    if error:
                        raise RuntimeError(f"the page failed: {error}")
                    if report and report["frames"] and report["frames"][-1][0] - report["frames"][0][0] >= seconds * 1000:
                        return report
                    if n * 0.5 > seconds + 60:
                        raise TimeoutError(f"the page showed no {seconds} s of video within {seconds + 60} s")
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    raise AssertionError("unreachable")


async def _page_error(ws, n: int) -> str | None:  # noqa: ANN001 - an aiohttp WebSocket
    await ws.send_json({"id": -n, "method": "Runtime.evaluate",
                        "params": {"expression": "document.getElementById('error').textContent", "returnByValue": True}})
    reply = await ws.receive_json()
    while reply.get("id") != -n:
        reply = await ws.receive_json()
    return reply["result"]["result"].get("value") or None


async def _drain(stream) -> None:  # noqa: ANN001 - keep chromium's stderr pipe from filling up
    while await stream.readline():
        pass

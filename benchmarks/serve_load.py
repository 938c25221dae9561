"""``being serve`` under load: how many live sessions one machine holds at 25 fps, and a soak.

    python benchmarks/serve_load.py --sessions 1,4,8,16 --seconds 20 --size 512 --device cuda \\
        [--soak-sessions 4 --soak-seconds 600] [--speech a.wav b.wav] [--json out.json]

The server is started as a user starts it (``being serve``); the viewers are WebRTC peers (aiortc)
in this process that receive and decode every frame, each pushing speech over the HTTP API one
utterance after another (pauses of 0.5 s between them), so every session talks most of the time.

A step of N sessions *holds* when every session's viewer received >= 24.5 frames/s over the window
and the server dropped <= 1 % of its frames. The soak samples, every 15 s: the server's RSS, the
GPU memory in use, frames dropped, audio underruns, and the drift of each viewer's frames against
its own clock (frames received vs time elapsed since its first frame)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription

FPS = 25.0


class Viewer:
    def __init__(self, http: aiohttp.ClientSession, url: str, speech: list[bytes]) -> None:
        self.http, self.url, self.speech = http, url, speech
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.frames: list[float] = []  # arrival time of each decoded video frame
        self.audio = 0
        self.pc.on("track", lambda t: asyncio.ensure_future(self._pull(t)))
        self.sid: str | None = None
        self.tasks: list[asyncio.Task] = []

    async def _pull(self, track) -> None:  # noqa: ANN001
        while True:
            try:
                await track.recv()
            except Exception:  # noqa: BLE001 - the track ended
                return
            if track.kind == "video":
                self.frames.append(time.monotonic())
            else:
                self.audio += 1

    async def start(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await self.http.post(f"{self.url}/api/sessions", json={"sdp": self.pc.localDescription.sdp, "type": "offer"})
        answer = await r.json()
        if r.status != 200:
            raise RuntimeError(f"session refused: {answer}")
        self.sid = answer["session"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        self.tasks.append(asyncio.ensure_future(self._talk()))

    async def _talk(self) -> None:
        k = 0
        while True:
            clip = self.speech[k % len(self.speech)]
            k += 1
            r = await self.http.post(f"{self.url}/api/sessions/{self.sid}/speech", data=clip,
                                     headers={"Content-Type": "audio/L16; rate=16000"})
            seconds = (await r.json()).get("seconds", 1.0)
            await asyncio.sleep(seconds + 0.5)

    async def stats(self) -> dict:
        return await (await self.http.get(f"{self.url}/api/sessions/{self.sid}/stats")).json()

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.sid:
            await self.http.delete(f"{self.url}/api/sessions/{self.sid}")
        await self.pc.close()


def received(frames: list[float], t0: float, t1: float) -> int:
    return sum(t0 <= t < t1 for t in frames)


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def gpu_mb() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return float(out.split(",")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


async def step(http: aiohttp.ClientSession, url: str, n: int, seconds: float, speech: list[bytes]) -> dict:
    viewers = [Viewer(http, url, speech) for _ in range(n)]
    try:
        for v in viewers:
            await v.start()
        await asyncio.sleep(4.0)  # connect, warm up
        before = [await v.stats() for v in viewers]
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        t1 = time.monotonic()
        after = [await v.stats() for v in viewers]
        fps = [received(v.frames, t0, t1) / (t1 - t0) for v in viewers]
        sent = [a["frames_sent"] - b["frames_sent"] for a, b in zip(after, before)]
        dropped = [a["frames_dropped"] - b["frames_dropped"] for a, b in zip(after, before)]
        under = [a["audio_underruns"] - b["audio_underruns"] for a, b in zip(after, before)]
        lat = [a["latency_ms"] for a in after if a["latency_ms"] is not None]
        row = {"sessions": n, "fps_min": round(min(fps), 2), "fps_mean": round(float(np.mean(fps)), 2),
               "dropped_pct": round(100 * sum(dropped) / max(1, sum(sent)), 2), "audio_underruns": sum(under),
               "latency_ms_median": round(float(np.median(lat)), 1) if lat else None, "lead_ms": after[0]["lead_ms"]}
        row["holds"] = row["fps_min"] >= 24.5 and row["dropped_pct"] <= 1.0
        return row
    finally:
        for v in viewers:
            await v.stop()


async def soak(http: aiohttp.ClientSession, url: str, n: int, seconds: float, speech: list[bytes], pid: int) -> list[dict]:
    viewers = [Viewer(http, url, speech) for _ in range(n)]
    samples = []
    try:
        for v in viewers:
            await v.start()
        await asyncio.sleep(4.0)
        start = time.monotonic()
        while True:
            now = time.monotonic()
            stats = [await v.stats() for v in viewers]
            drift = [1000 * ((v.frames[-1] - v.frames[0]) - (len(v.frames) - 1) / FPS) for v in viewers if v.frames]
            samples.append({"t_s": round(now - start, 1), "rss_mb": round(rss_mb(pid), 1), "gpu_mb": gpu_mb(),
                            "frames_sent": sum(s["frames_sent"] for s in stats),
                            "frames_dropped": sum(s["frames_dropped"] for s in stats),
                            "audio_underruns": sum(s["audio_underruns"] for s in stats),
                            "drift_ms_max": round(max(drift, key=abs), 1) if drift else None})
            print(json.dumps(samples[-1]), flush=True)
            if now - start >= seconds:
                return samples
            await asyncio.sleep(min(15.0, seconds - (now - start)) or 0.1)
    finally:
        for v in viewers:
            await v.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", default="1,4,8,16", help="comma-separated session counts to try")
    p.add_argument("--seconds", type=float, default=20.0, help="measured window of each step")
    p.add_argument("--soak-sessions", type=int, default=0)
    p.add_argument("--soak-seconds", type=float, default=600.0)
    p.add_argument("--size", default="512")
    p.add_argument("--device", default=None)
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--speech", nargs="*", default=[], type=Path)
    p.add_argument("--serve-arg", action="append", default=[], help="extra argument for being serve (repeatable)")
    p.add_argument("--json", type=Path)
    a = p.parse_args()

    from being_kernel.media import demo_speech, read_audio_channels, resample

    clips = []
    for path in a.speech:
        channels, rate = read_audio_channels(path)
        clips.append(resample(channels.mean(axis=0), rate, 16000))
    clips = clips or [demo_speech().samples]
    speech = [(np.clip(c, -1, 1) * 32767).astype("<i2").tobytes() for c in clips]

    cmd = [sys.executable, "-m", "being_kernel.cli", "serve", "--port", str(a.port), "--size", a.size,
           "--max-sessions", "64", "-q", *a.serve_arg] + (["--device", a.device] if a.device else [])
    server = subprocess.Popen(cmd)
    url = f"http://127.0.0.1:{a.port}"
    result: dict = {"command": " ".join(cmd), "steps": [], "soak": []}

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{url}/api/info")).status == 200:
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.5)
            for n in [int(x) for x in a.sessions.split(",") if x]:
                row = await step(http, url, n, a.seconds, speech)
                row["server_rss_mb"], row["gpu_mb"] = round(rss_mb(server.pid), 1), gpu_mb()
                print(json.dumps(row), flush=True)
                result["steps"].append(row)
            if a.soak_sessions:
                result["soak"] = await soak(http, url, a.soak_sessions, a.soak_seconds, speech, server.pid)

    try:
        asyncio.run(run())
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

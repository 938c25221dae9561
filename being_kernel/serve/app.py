"""``being serve``'s web application (aiohttp): the page, WebRTC sessions and the speech API.

    GET  /                          the page (and /static/*: its script and style, served here)
    GET  /api/info                  installed plugins, defaults, limits, ICE servers
    POST /api/sessions              {"sdp", "type": "offer", "microphone": bool, "audio"?, "avatar"?,
                                    "torso"?} -> {"session", "sdp", "type": "answer"}
    POST /api/sessions/{id}/speech  an audio file (wav, mp3, ogg, flac ...), or raw 16-bit PCM with
                                    Content-Type "audio/L16; rate=R" (or ?rate=R): one utterance
    GET  /api/sessions/{id}/ws      WebSocket: {"type": "start", "rate": R}, binary 16-bit PCM chunks,
                                    {"type": "end"} (utterance complete), {"type": "interrupt"}
    POST /api/sessions/{id}/interrupt   barge-in: drop queued speech, back to idle at the next frame
    GET  /api/sessions/{id}/stats   the session's figures;  DELETE /api/sessions/{id}  end it

With a token every /api request needs ``Authorization: Bearer TOKEN`` (or ``?token=TOKEN``).
Errors are JSON ``{"error": ..., "hint": ...}`` with a 4xx status."""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from ..discovery import Registry
from ..errors import BeingError, InputError
from ..media.audio_io import read_audio_channels
from ..media.clip import CONTRACTS, LoadedTriple, select
from .engine import Engine
from .session import LiveSession
from .speech import pcm16_to_float
from .tracks import SessionAudioTrack, SessionVideoTrack, consume_microphone

log = logging.getLogger(__name__)
PAGE_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


@dataclass
class ServeConfig:
    """Limits and choices of a server. ``values``: plugin config tables by contract (as ``being run``
    takes them); ``names``: the default plugin per contract (None: the registry's default)."""

    names: dict[str, str | None] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    token: str | None = None
    max_sessions: int = 4
    max_session_s: float = 3600.0
    max_upload_bytes: int = 20 * 1024 * 1024
    max_speech_s: float = 120.0
    max_triples: int = 2  # distinct plugin choices loaded at once
    margin_s: float = 0.12
    ice_servers: list[dict[str, Any]] = field(default_factory=list)


class HTTPError(web.HTTPException):
    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": message, "hint": hint}), content_type="application/json")


@dataclass
class _Live:
    session: LiveSession
    pc: RTCPeerConnection
    key: str
    tasks: list[asyncio.Task] = field(default_factory=list)


class Server:
    """The sessions and loaded engines of one ``being serve``."""

    def __init__(self, config: ServeConfig, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry or Registry.discover()
        self.engines: dict[str, Engine] = {}
        self.live: dict[str, _Live] = {}
        self._loading = asyncio.Lock()

    # -- plugins ---------------------------------------------------------------------------------------
    def _selection(self, body: dict) -> Any:
        names = {c: body.get(c) or self.config.names.get(c) for c in CONTRACTS}
        for c, n in names.items():
            if n is not None and not isinstance(n, str):
                raise InputError(f"'{c}' must be a plugin name")
        return select(self.registry, names, self.config.values)

    def preload(self) -> str:
        """Load the default plugins now (before serving), so that the first session starts at once and
        a bad choice fails the command instead of the first visitor. Returns what was loaded."""
        selection = self._selection({})
        key = _key(selection)
        self.engines[key] = self._start_engine(LoadedTriple.load(selection, self.registry))
        return " + ".join(f"--{c} {selection.names[c]}" for c in CONTRACTS)

    def _start_engine(self, triple: LoadedTriple) -> Engine:
        try:
            return Engine(triple, margin_s=self.config.margin_s)
        except BaseException:
            triple.close()
            raise

    async def _engine(self, body: dict) -> tuple[str, Engine]:
        selection = self._selection(body)
        key = _key(selection)
        async with self._loading:
            if key in self.engines and self.engines[key].error is not None:  # it failed: load it afresh
                log.warning("reloading plugins after an engine failure: %s", self.engines[key].error)
                await self._drop_engine(key)
            if key not in self.engines:
                busy = {lv.key for lv in self.live.values()}
                idle = [k for k in self.engines if k not in busy]
                while len(self.engines) >= self.config.max_triples and idle:
                    await self._drop_engine(idle.pop())
                if len(self.engines) >= self.config.max_triples:
                    raise HTTPError(429, f"{len(self.engines)} plugin choices are in use, the most this server loads "
                                         "at once", "use the plugins of a running session, or raise --max-loaded")
                loop = asyncio.get_running_loop()
                triple = await loop.run_in_executor(None, LoadedTriple.load, selection, self.registry)
                self.engines[key] = self._start_engine(triple)
                gc.freeze()  # as at start: the new models out of the collector's sight
            return key, self.engines[key]

    async def _drop_engine(self, key: str) -> None:
        engine = self.engines.pop(key)
        await asyncio.get_running_loop().run_in_executor(None, engine.stop)
        engine.triple.close()

    # -- sessions --------------------------------------------------------------------------------------
    def _live(self, request: web.Request) -> _Live:
        live = self.live.get(request.match_info["sid"])
        if live is None:
            raise HTTPError(404, f"no session {request.match_info['sid']}", "it ended, or was never made")
        return live

    async def close_session(self, sid: str, why: str) -> None:
        live = self.live.pop(sid, None)
        if live is None:
            return
        log.info("session %s ended: %s", sid, why)
        live.session.close()
        for task in live.tasks:
            task.cancel()
        await live.pc.close()

    async def create_session(self, request: web.Request) -> web.Response:
        body = await _json(request)
        sdp, kind = body.get("sdp"), body.get("type")
        if kind != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise HTTPError(400, "malformed offer: expected {\"type\": \"offer\", \"sdp\": \"v=0...\"}")
        if len(self.live) >= self.config.max_sessions:
            raise HTTPError(429, f"this server already runs {len(self.live)} sessions, its limit",
                            "end a session, or start the server with a larger --max-sessions")
        try:
            key, engine = await self._engine(body)
        except BeingError as exc:
            raise HTTPError(400, str(exc), exc.hint) from None
        sid = secrets.token_urlsafe(9)
        session = LiveSession(sid, engine, max_speech_s=self.config.max_speech_s, max_s=self.config.max_session_s)
        servers = [RTCIceServer(**s) for s in self.config.ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))
        live = _Live(session, pc, key)

        @pc.on("track")
        def on_track(track) -> None:  # noqa: ANN001 - aiortc's MediaStreamTrack
            if track.kind == "audio" and body.get("microphone"):
                live.tasks.append(asyncio.ensure_future(consume_microphone(track, session)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close_session(sid, f"connection {pc.connectionState}")

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            kinds = {t.kind for t in pc.getTransceivers()}
            if "video" not in kinds:
                raise ValueError("it has no video to receive (add a recvonly video transceiver)")
            pc.addTrack(SessionVideoTrack(session, engine.compositor.info().size))
            if "audio" in kinds:
                pc.addTrack(SessionAudioTrack(session))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - aiortc raises ValueError and others on a bad offer
            await pc.close()
            raise HTTPError(400, f"malformed offer: {exc}") from None
        try:
            engine.attach(session)
        except RuntimeError as exc:  # the engine stopped on an error between loading and now
            await pc.close()
            raise HTTPError(503, f"the live engine failed: {exc}", "try again: the plugins are reloaded") from None
        self.live[sid] = live
        return web.json_response({"session": sid, "sdp": pc.localDescription.sdp, "type": pc.localDescription.type,
                                  "fps": session.fps, "lead_ms": round(session.lead_s * 1000, 1)})

    async def speech(self, request: web.Request) -> web.Response:
        live = self._live(request)
        data = await request.read()
        if not data:
            raise HTTPError(400, "empty speech upload")
        ctype = request.headers.get("Content-Type", "")
        rate = _pcm_rate(ctype, request.query.get("rate"))
        try:
            if rate is not None:
                samples = pcm16_to_float(data)
            else:
                samples, rate = await asyncio.get_running_loop().run_in_executor(None, _decode, data)
            live.session.push_speech(samples, rate, source="upload", end=True)
        except BeingError as exc:
            raise HTTPError(400, str(exc), exc.hint) from None
        return web.json_response({"seconds": round(len(samples) / rate, 3),
                                  "queued_s": round(live.session.speech.queued_s, 3)})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        live = self._live(request)
        ws = web.WebSocketResponse(max_msg_size=self.config.max_upload_bytes)
        await ws.prepare(request)
        rate: int | None = None
        async for msg in ws:
            try:
                if msg.type == WSMsgType.TEXT:
                    order = json.loads(msg.data)
                    kind = order.get("type") if isinstance(order, dict) else None
                    if kind == "start":
                        rate = int(order.get("rate", 0))
                        if not 8000 <= rate <= 192_000:
                            raise InputError(f"rate {rate}: give the PCM's sample rate in Hz (8000-192000)")
                    elif kind == "end":
                        if rate:
                            live.session.push_speech(np.zeros(0, np.float32), rate, source="websocket", end=True)
                    elif kind == "interrupt":
                        live.session.interrupt()
                    elif kind == "stats":
                        await ws.send_json({"type": "stats", **live.session.summary()})
                        continue
                    else:
                        raise InputError(f"unknown message {msg.data[:80]!r}: expected type start, end, interrupt or stats")
                    await ws.send_json({"type": "ok", "queued_s": round(live.session.speech.queued_s, 3)})
                elif msg.type == WSMsgType.BINARY:
                    if rate is None:
                        raise InputError("send {\"type\": \"start\", \"rate\": R} before PCM")
                    live.session.push_speech(pcm16_to_float(msg.data), rate, source="websocket")
            except (BeingError, ValueError, TypeError) as exc:
                hint = exc.hint if isinstance(exc, BeingError) else None
                await ws.send_json({"type": "error", "error": str(exc), "hint": hint})
        return ws

    async def interrupt(self, request: web.Request) -> web.Response:
        dropped = self._live(request).session.interrupt()
        return web.json_response({"dropped_s": round(dropped, 3)})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self._live(request).session.summary())

    async def delete(self, request: web.Request) -> web.Response:
        sid = self._live(request).session.id
        await self.close_session(sid, "ended by the client")
        return web.json_response({"session": sid, "ended": True})

    async def info(self, request: web.Request) -> web.Response:
        plugins = {c: [r.name for r in self.registry.of(c) if r.ok] for c in CONTRACTS}
        defaults = {c: self.config.names.get(c) or self.registry.default(c) for c in CONTRACTS}
        c = self.config
        return web.json_response({
            "plugins": plugins, "defaults": defaults, "ice_servers": c.ice_servers,
            "limits": {"sessions": c.max_sessions, "session_s": c.max_session_s, "upload_bytes": c.max_upload_bytes,
                       "speech_s": c.max_speech_s}, "sessions": len(self.live)})

    # -- housekeeping ----------------------------------------------------------------------------------
    async def _reaper(self) -> None:
        """End sessions past their length limit or whose engine stopped."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for sid, live in list(self.live.items()):
                if live.session.expired(now):
                    await self.close_session(sid, f"longer than {self.config.max_session_s:g} s")
                elif live.session.closed.is_set():
                    await self.close_session(sid, "its engine stopped")

    async def shutdown(self) -> None:
        for sid in list(self.live):
            await self.close_session(sid, "the server stops")
        for key in list(self.engines):
            await self._drop_engine(key)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=self.config.max_upload_bytes)
        app.add_routes([
            web.get("/", _page), web.get("/static/{name}", _page),
            web.get("/api/info", self.info), web.post("/api/sessions", self.create_session),
            web.post("/api/sessions/{sid}/speech", self.speech), web.get("/api/sessions/{sid}/ws", self.websocket),
            web.post("/api/sessions/{sid}/interrupt", self.interrupt), web.get("/api/sessions/{sid}/stats", self.stats),
            web.delete("/api/sessions/{sid}", self.delete),
        ])

        reaper: list[asyncio.Task] = []

        async def start(app: web.Application) -> None:
            # what is loaded by now lives as long as the server: out of the garbage collector's sight,
            # its full collections no longer stop the event loop (and both tracks) for 100+ ms
            # (measured: a 160 ms pause grew Chrome's audio buffer and put the sound 160 ms late)
            gc.freeze()
            reaper.append(asyncio.ensure_future(self._reaper()))

        async def stop(app: web.Application) -> None:
            for task in reaper:
                task.cancel()
            await self.shutdown()

        app.on_startup.append(start)
        app.on_shutdown.append(stop)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
        if self.config.token and request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                raise HTTPError(401, "this server needs its token", "add 'Authorization: Bearer TOKEN' or ?token=TOKEN")
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            raise HTTPError(413, f"upload larger than {self.config.max_upload_bytes} bytes",
                            "send a shorter clip, or start the server with a larger --max-upload-mb") from None


def _key(selection: Any) -> str:
    return json.dumps([selection.names, selection.values], sort_keys=True, default=str)


async def _page(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "index.html")
    if name not in PAGE_FILES:
        raise web.HTTPNotFound()
    text = resources.files(__package__).joinpath("page").joinpath(name).read_text(encoding="utf-8")
    return web.Response(text=text, content_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"})


async def _json(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPError(400, "the request body must be a JSON object")
    return body


def _pcm_rate(content_type: str, query_rate: str | None) -> int | None:
    """The rate of raw 16-bit PCM (``audio/L16; rate=R`` or ``?rate=R``), None for an audio file."""
    ctype = content_type.lower()
    if not ctype.startswith("audio/l16") and query_rate is None:
        return None
    rate = query_rate
    for part in ctype.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k == "rate":
            rate = v
    try:
        value = int(rate) if rate is not None else 0
    except ValueError:
        value = 0
    if not 8000 <= value <= 192_000:
        raise HTTPError(400, f"raw PCM needs its sample rate: 'audio/L16; rate=R' or ?rate=R (8000-192000), got {rate}")
    return value


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    """An uploaded audio file -> mono float32 [n] and its rate."""
    with tempfile.TemporaryDirectory(prefix="being-serve-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        channels, rate = read_audio_channels(path)
    return channels.mean(axis=0, dtype=np.float32), rate


def parse_ice(urls: list[str]) -> list[dict[str, Any]]:
    """``--ice-server`` values (``stun:host:port`` or ``turn:user:password@host:port``) -> RTCIceServer
    keyword dicts."""
    servers = []
    for url in urls:
        scheme, _, rest = url.partition(":")
        if scheme not in ("stun", "turn", "turns") or not rest:
            raise InputError(f"--ice-server {url}: expected stun:HOST[:PORT] or turn:USER:PASSWORD@HOST[:PORT]")
        if "@" in rest:
            cred, _, host = rest.rpartition("@")
            user, _, password = cred.partition(":")
            servers.append({"urls": f"{scheme}:{host}", "username": user, "credential": password})
        else:
            servers.append({"urls": url})
    return servers

"""``being serve``: a live talking head in the browser over WebRTC, and a speech API for voice agents
(see docs/serve.md)."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Optional

import typer

from .main import app
from .options import field_option, field_values, quiet_option, say


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Any address but loopback needs "
                             "--token."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on."),
    token: Optional[str] = typer.Option(None, "--token", envvar="BEING_SERVE_TOKEN", help="Secret every API "
                                        "call must carry (Authorization: Bearer TOKEN). Open the page as "
                                        "http://HOST:PORT/#token=TOKEN. Default: $BEING_SERVE_TOKEN."),
    audio: Optional[str] = typer.Option(None, "--audio", help="Default AudioToFlame plugin (the page can pick "
                                        "another installed one). Default: viseme if installed."),
    avatar: Optional[str] = typer.Option(None, "--avatar", help="Default FlameRenderer plugin. Default: splatting."),
    torso: Optional[str] = typer.Option(None, "--torso", help="Default TorsoCompositor plugin. Default: static."),
    set_: list[str] = typer.Option([], "--set", help="Plugin config, CONTRACT.FIELD=VALUE (as in being run)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML or YAML file with tables audio, avatar, torso."),
    size: Optional[str] = field_option("--size"),
    device: Optional[str] = field_option("--device"),
    max_sessions: int = typer.Option(4, "--max-sessions", min=1, help="Sessions at once; more are refused (429)."),
    max_session_s: float = typer.Option(3600.0, "--max-session-s", min=1, help="A session ends after this long."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", min=0.01, help="Largest speech upload or "
                                        "WebSocket message (413 above)."),
    max_speech_s: float = typer.Option(120.0, "--max-speech-s", min=1, help="Most speech that may wait in a "
                                       "session (pushing more is refused until it is spoken)."),
    max_loaded: int = typer.Option(2, "--max-loaded", min=1, help="Distinct plugin choices loaded at once."),
    ice_server: list[str] = typer.Option([], "--ice-server", help="STUN/TURN server for clients behind NAT: "
                                         "stun:HOST:PORT or turn:USER:PASSWORD@HOST:PORT. Repeatable. None needed on "
                                         "a LAN or the same machine (docs/serve.md says when TURN is)."),
    margin_ms: float = typer.Option(120.0, "--margin-ms", min=0, help="Playout margin on top of the audio model's "
                                    "latency: time to render and send a frame. Larger: fewer dropped frames, more "
                                    "latency."),
    quiet: bool = quiet_option(),
) -> None:
    """Serve a live talking head: open http://HOST:PORT in a browser, speak or send a file.

    Voice agents push speech with POST /api/sessions/ID/speech or the WebSocket /api/sessions/ID/ws
    and barge in with POST /api/sessions/ID/interrupt. Ctrl-C stops the server.

    Example: being serve --port 8080
    """
    from .. import config as cfg
    from ..discovery import Registry
    from ..errors import ConfigError, InputError, PluginError

    try:
        from aiohttp import web

        from ..serve.app import Server, ServeConfig, parse_ice
    except ImportError as exc:
        raise PluginError(f"being serve needs aiortc and aiohttp ({exc})", "pip install 'being-kernel[serve]'") from None
    if not _loopback(host) and not token:
        raise ConfigError(f"--host {host} is reachable from other machines: give a --token (or $BEING_SERVE_TOKEN)",
                          "or keep the default --host 127.0.0.1")
    echo = say(quiet)
    registry = Registry.discover()
    names = {"audio": audio, "avatar": avatar, "torso": torso}
    specs = {c: registry.spec(c, n or registry.default(c)) for c, n in names.items()}
    options = field_values({"--size": size, "--device": device}, {c: s.config for c, s in specs.items()},
                           {c: f"the {c} plugin" for c in specs})
    values = cfg.merge(cfg.merge(cfg.load_file(config) if config else {}, options), cfg.parse_sets(set_))
    server = Server(ServeConfig(names=names, values=values, token=token, max_sessions=max_sessions,
                                max_session_s=max_session_s, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                                max_speech_s=max_speech_s, max_triples=max_loaded, margin_s=margin_ms / 1000,
                                ice_servers=parse_ice(ice_server)), registry)
    loaded = server.preload()
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="being serve: %(message)s")
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    where = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    echo(f"being serve: {loaded} loaded; open {where}" + ("#token=..." if token else "") + " (Ctrl-C stops)", err=True)
    try:
        web.run_app(server.app(), host=host, port=port, print=None, access_log=None, handle_signals=True)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", "pick another --port") from None

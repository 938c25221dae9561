"""Speech file to MP4 with a chosen plugin triple: what ``being run`` does for one clip and what
``being batch``'s render workers do for many, loading the plugins once.

``select`` settles the plugin names and configs (no plugin code runs), ``LoadedTriple.load``
builds and checks the three plugins, ``render`` makes one video with them. Plugins are reusable
across clips: each run opens its own streams."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import config as cfg
from ..discovery import Registry, build_plugin
from ..errors import Interrupted
from ..pipeline import RunResult, StageCheck, check_stages, close_all, run_pipeline, torso_scene
from ..spec import PluginConfig, PluginSpec

CONTRACTS = ("audio", "avatar", "torso")
Note = Callable[[str], None]


@dataclass(frozen=True)
class Selection:
    """The plugins of a run and their config values, checked against their config models.

    names:  contract -> plugin name; values: contract -> {field: value} as merged from the
    user's config file, options and --set (the torso's scene may still be filled in at load)."""

    names: dict[str, str]
    values: dict[str, dict[str, Any]]
    specs: dict[str, PluginSpec] = field(repr=False, compare=False)
    configs: dict[str, PluginConfig] = field(repr=False, compare=False)


def select(registry: Registry, names: dict[str, str | None], values: cfg.Sections,
           note: Note | None = None) -> Selection:
    """Resolve unnamed contracts to their defaults (``note`` is told when that is a fake) and build
    each config; unknown plugins and bad values raise ``PluginError``/``ConfigError``."""
    chosen = {c: names.get(c) or registry.default(c, note) for c in CONTRACTS}
    specs = {c: registry.spec(c, n) for c, n in chosen.items()}
    configs = {c: cfg.build(specs[c].config, c, values.get(c, {})) for c in CONTRACTS}
    return Selection(chosen, {c: dict(values.get(c, {})) for c in CONTRACTS}, specs, configs)


@dataclass
class LoadedTriple:
    """Built audio, avatar and torso plugins, checked to work together. ``close()`` once done."""

    selection: Selection
    plugins: dict[str, Any]
    check: StageCheck

    @classmethod
    def load(cls, selection: Selection, registry: Registry, note: Note | None = None) -> LoadedTriple:
        """Build the plugins in order (the avatar's scene can set the torso's); on any error the
        ones built so far are closed."""
        s, plugins = selection, {}
        try:
            for c in CONTRACTS:
                config = s.configs[c]
                if c == "torso" and (scene := torso_scene(plugins["avatar"].info(), s.specs[c].config, s.values[c])):
                    # the avatar was made in a scene (its photo) and the user left torso.scene unset: place the head in it
                    config = cfg.build(s.specs[c].config, c, {**s.values[c], "scene": scene})
                    if note:
                        note(f"being: note: placing the head in its avatar's scene ({scene}): the photo's background "
                             "and torso; --set torso.scene=null for the plain torso")
                plugins[c] = build_plugin(s.specs[c], config, c, s.names[c])
            names = tuple(s.names[c] for c in CONTRACTS)
            check = check_stages(plugins["audio"], plugins["avatar"], plugins["torso"], names,
                                 suggest=registry.providers)
        except BaseException:
            close_all(*plugins.values())
            raise
        return cls(selection, plugins, check)

    def num_frames(self, seconds: float) -> int:
        """Frames a clip of ``seconds`` makes at the audio plugin's rate."""
        return round(seconds * self.plugins["audio"].info().fps)

    def render(self, channels: np.ndarray, native_rate: int, out: Path, *, crf: int = 18, mode: str = "offline",
               realtime: bool = False, progress: Callable[[int], None] | None = None,
               encoder: str = "auto", preset: str | None = None) -> RunResult:
        """Make ``out`` (an MP4, written atomically) from ``channels``: float32 ``[C, N]`` at
        ``native_rate`` Hz, muxed as they are; the plugins get their mono mix at their own rate.
        ``crf``, ``encoder`` and ``preset`` go to ``Mp4Writer``. Ctrl-C raises ``Interrupted``
        with nothing written."""
        from ..types import Audio
        from .audio_io import resample
        from .video_writer import Mp4Writer

        a, r, t = (self.plugins[c] for c in CONTRACTS)
        info = a.info()
        mono = Audio(resample(channels.mean(axis=0, dtype=np.float32), native_rate, info.sample_rate), info.sample_rate)
        writer = Mp4Writer(out, info.fps, t.info().size, channels, native_rate, crf=crf, preset=preset, encoder=encoder)
        try:
            return run_pipeline(a, r, t, mono, writer, mode=mode, check=self.check, realtime=realtime,
                                progress=progress)
        except BaseException as exc:
            writer.abort()  # the bus aborts it too; this covers failures before the bus starts
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(f"interrupted; nothing was written to {out}") from None
            raise

    def close(self) -> None:
        close_all(*self.plugins.values())

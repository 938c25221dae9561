"""Cross-cutting hooks (pluggy): plugins that add features beside the three contracts.

A hook plugin registers a module or object in the entry-point group ``being.hooks``; its
functions decorated with ``@being_kernel.hooks.hookimpl`` implement the specs below. Every spec
is documented in docs/writing-a-plugin.md (a test fails when one is not).
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from typing import Mapping

import pluggy

from .discovery import PluginRecord, _dist, is_enabled

__all__ = ["HookSpecs", "hookimpl"]

PROJECT = "being"
HOOK_GROUP = "being.hooks"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    @hookspec
    def being_cli_commands(self, app) -> None:  # noqa: ANN001 - a typer.Typer
        """Add subcommands to the ``being`` CLI: ``@app.command()`` on the given ``typer.Typer``.

        Since kernel API 1."""


def load_hooks(env: Mapping[str, str] | None = None) -> tuple[pluggy.PluginManager, list[PluginRecord]]:
    """A plugin manager with every enabled ``being.hooks`` plugin registered, plus records
    (status ok, broken or disabled) for ``being plugins``."""
    env = os.environ if env is None else env
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    records: list[PluginRecord] = []
    for ep in sorted(entry_points(group=HOOK_GROUP), key=lambda e: e.name):
        dist, version = _dist(ep)
        rec = PluginRecord(ep.name, "hooks", dist, version, ep.value, "ok")
        records.append(rec)
        if not is_enabled("hooks", ep.name, env):
            rec.status, rec.error, rec.hint = "disabled", "excluded by BEING_PLUGINS/BEING_DISABLE_PLUGINS", "change those variables to enable it"
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            rec.description = "hooks: " + ", ".join(sorted(h.name for h in pm.get_hookcallers(pm.get_plugin(ep.name)) or []))
        except Exception as exc:  # noqa: BLE001 - a broken hook plugin is reported, the rest keep working
            rec.status, rec.error = "broken", f"{type(exc).__name__}: {exc}".splitlines()[0]
            rec.hint = f"pip install -U {dist}, or pip uninstall {dist}, or set BEING_DISABLE_PLUGINS=hooks:{ep.name}"
    return pm, records

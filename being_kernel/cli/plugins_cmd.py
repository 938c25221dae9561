"""``being plugins``: what is installed, what is broken, what is known but missing."""

from __future__ import annotations

import json

import typer

from ..discovery import Registry
from ..hooks import load_hooks
from .main import app


def _record_json(rec) -> dict:  # noqa: ANN001 - a PluginRecord
    return {
        "name": rec.name, "contract": rec.contract, "distribution": rec.distribution, "version": rec.version,
        "description": rec.description, "status": rec.status, "error": rec.error or None, "hint": rec.hint or None,
        "motion_spaces": list(rec.spec.motion_spaces) if rec.spec else [],
        "config_schema": rec.spec.config.model_json_schema() if rec.spec else None,
        "trainer": ({"dataset": rec.spec.trainer.dataset, "config_schema": rec.spec.trainer.config.model_json_schema()}
                    if rec.spec and rec.spec.trainer else None),
    }


@app.command("plugins")
def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output with each config schema.")) -> None:
    """List method plugins by contract (audio, avatar, torso), hook plugins, and known methods
    that are not installed, with how to install them."""
    registry = Registry.discover()
    _, hooks = load_hooks()
    missing = registry.not_installed()
    if as_json:
        typer.echo(json.dumps({
            "plugins": [_record_json(r) for r in registry.records],
            "hooks": [_record_json(r) for r in hooks],
            "not_installed": [{"name": m.name, "contract": m.contract, "distribution": m.distribution,
                               "description": m.description, "planned": m.planned,
                               "install": None if m.planned else m.install_hint} for m in missing],
        }, indent=2))
        return
    for contract in ("audio", "avatar", "torso"):
        typer.echo(f"{contract}:")
        for rec in registry.of(contract):
            if rec.ok:
                fit = (f" [being fit --{contract} {rec.name}: {rec.spec.trainer.dataset}]"
                       if rec.spec and rec.spec.trainer else "")
                typer.echo(f"  {rec.name:<11} {rec.distribution} {rec.version}  {rec.description}{fit}")
            else:
                typer.echo(f"  {rec.name:<11} {rec.status.upper()}: {rec.error} -> {rec.hint}")
        for m in missing:
            if m.contract == contract:
                state = "planned" if m.planned else "not installed"
                typer.echo(f"  {m.name:<11} {state}: {m.description} -> {m.install_hint}")
    if hooks:
        typer.echo("hooks:")
        for rec in hooks:
            state = rec.description if rec.ok else f"{rec.status.upper()}: {rec.error} -> {rec.hint}"
            typer.echo(f"  {rec.name:<11} {rec.distribution} {rec.version}  {state}")

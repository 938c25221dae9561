"""A cross-cutting hook: adds `being nod-info` to the CLI."""

import typer

from being_kernel.hooks import hookimpl


@hookimpl
def being_cli_commands(app: typer.Typer) -> None:
    @app.command("nod-info")
    def nod_info() -> None:
        """Say what the nod plugin does."""
        typer.echo("nod: the head pitches forward on loud syllables")

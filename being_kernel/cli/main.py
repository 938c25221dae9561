"""``being``: the app, global options, and error reporting (one line, traceback with --debug)."""

from __future__ import annotations

import os
import signal
import sys
import traceback

import typer

from .. import KERNEL_API_VERSION, __version__
from ..errors import BeingError, Interrupted

app = typer.Typer(
    name="being",
    help="Speech to talking-head video: audio -> FLAME motion -> Gaussian head -> torso -> MP4.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"debug": os.environ.get("BEING_DEBUG") == "1"}


def _versions() -> str:
    from ..discovery import Registry

    lines = [f"being {__version__} (kernel API {KERNEL_API_VERSION})"]
    seen = set()
    for rec in Registry.discover().records:
        if rec.distribution not in seen:
            seen.add(rec.distribution)
            lines.append(f"  {rec.distribution} {rec.version}")
    return "\n".join(lines)


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(_versions())
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version_cb, is_eager=True,
                                 help="Show the versions of being and its installed plugins, and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = _state["debug"] or debug


def _register_commands() -> None:
    # each command module registers its command on ``app`` when imported
    from . import plugins_cmd  # noqa: F401
    from . import run_cmd  # noqa: F401
    from . import fit_cmd  # noqa: F401
    from . import eval_cmd  # noqa: F401
    from . import dataset_cmd  # noqa: F401
    from . import batch_cmd  # noqa: F401
    from . import serve_cmd  # noqa: F401
    from ..hooks import load_hooks

    pm, records = load_hooks()
    for rec in records:
        if rec.status == "broken":
            typer.echo(f"being: warning: {rec.problem_line()}", err=True)
    for impl in pm.hook.being_cli_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:  # noqa: BLE001 - one bad hook plugin must not break the CLI
            typer.echo(f"being: warning: hook plugin '{impl.plugin_name}' failed to add commands: "
                       f"{type(exc).__name__}: {exc}", err=True)


def _fail(message: str, code: int) -> None:
    typer.echo(f"being: error: {message}", err=True)
    sys.exit(code)


def _stop_on(signum: int, frame) -> None:  # noqa: ANN001 - signal handler signature
    """SIGTERM and SIGHUP (kill, timeout, schedulers, a closed terminal) stop a run the way Ctrl-C
    does: as a KeyboardInterrupt in the main thread, so every stage tears down and no partial file
    is left."""
    _state["signal"] = signum
    raise KeyboardInterrupt


def _exit_interrupted(message: str) -> None:
    """Report an interrupted run and leave at once. The cleanup has run (writers aborted, plugins
    closed); skipping interpreter finalisation avoids native thread pools (torch, pocketsphinx)
    being destroyed mid-work, which aborts the process (SIGABRT) instead of exiting."""
    typer.echo(f"being: error: {message}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # 128 + the signal's number, as shells report a run a signal stopped (130, 143, 129)
    os._exit(128 + _state.get("signal", signal.SIGINT))


def _stopped() -> str:
    return "interrupted" if _state.get("signal", signal.SIGINT) == signal.SIGINT else "terminated"


def install_stop_handlers() -> None:
    """SIGTERM and SIGHUP stop a command as Ctrl-C does (see ``_stop_on``). Called at start, and
    again by commands whose libraries install their own handlers (Ray's driver aborts on SIGTERM)."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    """Console entry point: runs the app, turns errors into one line and an exit code."""
    _state["debug"] = _state["debug"] or "--debug" in sys.argv[1:]
    install_stop_handlers()
    try:
        _register_commands()
        app()  # typer reports usage errors itself (exit 2)
    except SystemExit as exc:
        # typer turns a KeyboardInterrupt that leaves a command (Ctrl-C or SIGTERM while the command
        # still imports, before its own handling) into a silent exit 130, whatever the signal
        if not isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            raise
        _exit_interrupted(_stopped())
    except KeyboardInterrupt:
        _exit_interrupted(_stopped())
    except Interrupted as exc:
        _exit_interrupted(exc.one_line())
    except BeingError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _fail(exc.one_line(), exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line unless --debug
        if _state["debug"]:
            traceback.print_exc()
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)

"""Errors the kernel reports to users as one line: what went wrong, then what to do."""

from __future__ import annotations


class BeingError(Exception):
    """A user-facing error. ``str()`` is the one-line message; ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        return f"{self}" + (f" ({self.hint})" if self.hint else "")


class InputError(BeingError):
    """Unusable input: missing, empty or corrupt media, a bad path."""

    exit_code = 2


class ConfigError(BeingError):
    """A bad plugin config field, --set value or config file."""

    exit_code = 2


class PluginError(BeingError):
    """An unknown, broken, disabled or incompatible plugin."""

    exit_code = 3


class ContractError(BeingError):
    """Stages that do not fit together (motion space, rate, size), found when the pipeline is built."""

    exit_code = 4


class StageError(BeingError):
    """A stage raised while running; the pipeline stopped and every stage was torn down."""

    exit_code = 5

    def __init__(self, stage: str, cause: BaseException) -> None:
        detail = cause.one_line() if isinstance(cause, BeingError) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"stage '{stage}' failed: {detail}")
        self.stage = stage
        self.cause = cause


class Interrupted(BeingError):
    """Ctrl-C: the run stopped cleanly and left nothing under the output name."""

    exit_code = 130

"""Options the commands share: shorthands for plugin config fields (``--seed``, ``--text``,
``--text-file``, ``--size``, ``--device``, ``--fps``), ``--overwrite`` and ``--quiet``.

A field option sets its field in the config of every selected plugin (or trainer) that has the
field and that the option may reach (``FieldOption.contracts``); a contract named in ``needs``
must have it. The values are merged like ``--set``: they win over ``--config``, and an explicit
``--set CONTRACT.FIELD=VALUE`` for the same field wins over them, so ``--set`` can refine one
plugin. An option that no selected config takes is refused before any work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel

from ..config import check_device, parse_size
from ..errors import ConfigError, InputError

Sections = dict[str, dict[str, Any]]


def check_fps(value: float) -> float:
    if not value > 0:
        raise ConfigError(f"--fps {value:g}: must be above 0")
    return value


@dataclass(frozen=True)
class FieldOption:
    """A command-line option that stands for the config field ``field``."""

    flag: str
    field: str
    noun: str  # what the field is, in "takes no NOUN"
    help: str
    contracts: tuple[str, ...] | None = None  # sections it may set; None: any that has the field
    needs: tuple[str, ...] = ()  # sections that must have the field, else the option is refused
    parse: Callable[[Any], Any] | None = None  # checks and converts the option's value
    metavar: str | None = None


FIELD_OPTIONS: dict[str, FieldOption] = {o.flag: o for o in (
    FieldOption("--seed", "seed", "seed", "Seed: the `seed` field of every selected plugin (or trainer) that has one.",
                metavar="N"),
    FieldOption("--text", "text", "transcript", "Transcript of the speech: the audio plugin's `text` (taken as is, "
                "no YAML parsing as with --set).", contracts=("audio",), needs=("audio",)),
    FieldOption("--text-file", "text_file", "transcript file", "A .txt transcript: the audio plugin's `text_file`.",
                contracts=("audio",), needs=("audio",), parse=str, metavar="PATH"),
    FieldOption("--size", "size", "size", "Video size, N (square) or WxH: the torso plugin's `size` (the output "
                "frames) and the avatar's (the head render), as in being bench.", contracts=("avatar", "torso"),
                needs=("torso",), parse=lambda text: list(parse_size(text)), metavar="WxH"),
    FieldOption("--device", "device", "device", "auto, cpu, cuda or cuda:N: the `device` field of every selected "
                "plugin (or trainer) that has one.", parse=check_device, metavar="DEVICE"),
    FieldOption("--fps", "fps", "frame rate", "Video frame rate: the audio plugin's `fps` (motion frames per "
                "second).", contracts=("audio",), needs=("audio",), parse=check_fps, metavar="FPS"),
)}


def field_option(flag: str) -> Any:
    """The ``typer.Option`` of a field option (default None: not given), its help from the table."""
    o = FIELD_OPTIONS[flag]
    return typer.Option(None, o.flag, help=o.help + " An explicit --set for the field wins.", metavar=o.metavar)


def field_values(given: Mapping[str, Any], configs: Mapping[str, type[BaseModel]],
                 labels: Mapping[str, str]) -> Sections:
    """``--set``-style values for the field options in ``given`` (flag -> value, None: not given).

    ``configs``: section -> the config model of the plugin (or trainer) selected for it;
    ``labels``: section -> how errors name it, e.g. ``"the audio plugin 'fake'"``."""
    unknown = set(given) - set(FIELD_OPTIONS)
    if unknown:
        raise ValueError(f"not field options: {sorted(unknown)}")
    if given.get("--text") is not None and given.get("--text-file") is not None:
        raise ConfigError("give --text or --text-file, not both")
    out: Sections = {}
    for flag, raw in given.items():
        if raw is None:
            continue
        o = FIELD_OPTIONS[flag]
        value = o.parse(raw) if o.parse else raw
        has = {s: o.field in model.model_fields for s, model in configs.items()
               if o.contracts is None or s in o.contracts}
        for s in o.needs:
            if s in configs and not has.get(s):
                raise ConfigError(f"{flag}: {labels[s]} takes no {o.noun}",
                                  hint=f"its config fields: {', '.join(configs[s].model_fields) or 'none'}")
        targets = [s for s, ok in has.items() if ok]
        if not targets:
            names = ", ".join(labels[s] for s in configs)
            raise ConfigError(f"{flag}: no selected plugin takes a {o.noun} (no '{o.field}' field in {names})",
                              hint="'being plugins --json' shows each plugin's config fields")
        for s in targets:
            out.setdefault(s, {})[o.field] = value
    return out


def refuse_existing(path: Path, overwrite: bool) -> None:
    """An existing output file is replaced only with ``--overwrite``: else one ``InputError`` line."""
    if path.exists() and not overwrite:
        raise InputError(f"output '{path}' already exists", hint="pass --overwrite to replace it, or choose another --out")


OVERWRITE_HELP = "Replace the output if it exists (else an existing output is an error)."


def overwrite_option(help: str = OVERWRITE_HELP) -> Any:
    """``--overwrite`` for every command that writes an output; ``--force`` (what fit and make-dataset
    first called it) stays an alias."""
    return typer.Option(False, "--overwrite", "--force", help=help)


def quiet_option() -> Any:
    return typer.Option(False, "--quiet", "-q", help="No progress bar, notes or result lines; warnings and errors "
                        "are still printed.")


def say(quiet: bool) -> Callable[..., None]:
    """``typer.echo`` unless ``quiet`` (for progress notes and result lines, never warnings or errors)."""
    return (lambda *args, **kwargs: None) if quiet else typer.echo


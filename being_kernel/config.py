"""Plugin configuration: from a TOML or YAML file and ``--set contract.field=value``, validated by
each plugin's pydantic model (``extra="forbid"``); a bad field is named in the error."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .discovery import GROUPS
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is tomli, adopted into the standard library in 3.11
    import tomli as tomllib

Sections = dict[str, dict[str, Any]]


def parse_size(text: str) -> tuple[int, int]:
    """``--size`` as a command line writes it: ``"512"`` -> (512, 512); ``"640x480"`` -> (640, 480)
    (width, height), as config ``size`` fields take it. ConfigError naming ``--size`` otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m:
        raise ConfigError(f"--size {text!r}: expected N (square) or WxH, e.g. 512 or 640x480")
    w = int(m.group(1))
    return w, int(m.group(2) or w)


def check_device(text: str, *, auto: bool = True) -> str:
    """``--device`` as a command line writes it: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (and ``"auto"``
    unless ``auto`` is False), returned as is; ConfigError naming ``--device`` otherwise."""
    if not re.fullmatch(r"(auto|cpu|cuda(:\d+)?)" if auto else r"cpu|cuda(:\d+)?", text):
        raise ConfigError(f"--device {text!r}: expected {'auto, ' if auto else ''}cpu, cuda or cuda:N")
    return text


def _set_path(target: dict[str, Any], dotted: list[str], value: Any) -> None:
    for key in dotted[:-1]:
        node = target.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set: '{key}' is a value, not a section")
        target = node
    target[dotted[-1]] = value


def parse_sets(items: list[str], sections: tuple[str, ...] = tuple(GROUPS)) -> Sections:
    """``["avatar.sh_degree=3", "torso.size=[256, 256]"]`` -> ``{"avatar": {"sh_degree": 3}, ...}``.

    Values are read as YAML scalars or lists, so ``3`` is an int, ``true`` a bool, ``[1, 2]`` a
    list; anything else stays a string. ``sections``: the allowed first parts (default: the
    contracts; ``being fit`` uses ``("fit",)``)."""
    out: Sections = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. {sections[0]}.FIELD=3")
        if parts[0] not in sections:
            raise ConfigError(f"--set {item!r}: unknown section '{parts[0]}'", f"use one of {', '.join(sections)}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_path(out.setdefault(parts[0], {}), parts[1:], value)
    return out


def read_document(path: str | Path, what: str = "config file") -> Any:
    """The data of a TOML (.toml) or YAML (.yaml, .yml) file; ConfigError naming ``what`` and the
    path when it is missing, of another format or not valid."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text())
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(path.read_text()) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not valid: {str(exc).splitlines()[0]}") from exc
    raise ConfigError(f"{what} {path}: unknown format '{path.suffix}'", "use .toml, .yaml or .yml")


def load_file(path: str | Path, sections: tuple[str, ...] = tuple(GROUPS)) -> Sections:
    """Read a config file whose top-level tables are ``sections`` (default: audio, avatar, torso)."""
    data = read_document(path)
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected tables {', '.join(sections)} at the top level")
    for key, value in data.items():
        if key not in sections or not isinstance(value, dict):
            raise ConfigError(f"config file {path}: unknown top-level entry '{key}'", f"use tables {', '.join(sections)}")
    return data


def merge(base: Sections, override: Sections) -> Sections:
    """Deep-merge ``override`` into a copy of ``base`` (``--set`` wins over the file)."""
    out: Sections = {k: dict(v) for k, v in base.items()}
    for section, values in override.items():
        for key, value in values.items():
            old = out.setdefault(section, {}).get(key)
            out[section][key] = merge({"_": old}, {"_": value})["_"] if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def build(model: type[BaseModel], section: str, values: dict[str, Any]) -> BaseModel:
    """Validate ``values`` against a plugin's config model; errors name ``section.field``."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
        fields = ", ".join(model.model_fields) or "none"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{section}.{field}: unknown field", f"valid fields: {fields}") from None
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        raise ConfigError(f"{section}.{field}: {err['msg']}{got}", f"valid fields: {fields}") from None

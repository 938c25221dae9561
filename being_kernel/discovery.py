"""Plugin discovery: one entry-point group per contract, loaded without importing heavy code.

Each record says whether a plugin is usable (``ok``) or why not (``broken``, ``incompatible``,
``disabled``), with a one-line fix. A failing plugin never stops discovery of the others.

Allow and deny lists come from the environment, as comma-separated names or ``contract:name``:
``BEING_PLUGINS`` (only these are enabled) and ``BEING_DISABLE_PLUGINS`` (these are not).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Mapping

from .errors import BeingError, PluginError
from .known import KNOWN_METHODS, KnownMethod
from .spec import KERNEL_API_VERSION, PluginSpec

GROUPS: dict[str, str] = {"audio": "being.audio", "avatar": "being.avatar", "torso": "being.torso"}
#: The plugin used for a contract when none is named (``being run``, ``being bench``): the first
#: usable one of each list. The testing kit's fakes come last: they keep ``being run`` working with
#: nothing but the kernel installed, and ``Registry.default`` says so when it picks one.
DEFAULT_PLUGINS: dict[str, tuple[str, ...]] = {"audio": ("viseme", "fake"), "avatar": ("splatting", "fake"),
                                               "torso": ("static", "fake")}


@dataclass
class PluginRecord:
    """One entry point of one contract group, as found."""

    name: str
    contract: str
    distribution: str
    version: str
    target: str  # the entry point's "module:attr"
    status: str  # ok | broken | incompatible | disabled
    description: str = ""
    error: str = ""
    hint: str = ""
    spec: PluginSpec | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def problem_line(self) -> str:
        """The one line shown for a plugin that cannot be used."""
        return f"{self.contract} plugin '{self.name}' ({self.distribution} {self.version}) is {self.status}: {self.error} -> {self.hint}"


def _name_set(value: str | None) -> set[str] | None:
    if value is None or not value.strip():
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _listed(names: set[str], contract: str, name: str) -> bool:
    return name in names or f"{contract}:{name}" in names


def is_enabled(contract: str, name: str, env: Mapping[str, str]) -> bool:
    """Apply ``BEING_PLUGINS`` (allow list) then ``BEING_DISABLE_PLUGINS`` (deny list)."""
    allow = _name_set(env.get("BEING_PLUGINS"))
    deny = _name_set(env.get("BEING_DISABLE_PLUGINS")) or set()
    if allow is not None and not _listed(allow, contract, name):
        return False
    return not _listed(deny, contract, name)


def _dist(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"], dist.version) if dist is not None else ("?", "?")


def _load(ep: EntryPoint, contract: str, env: Mapping[str, str]) -> PluginRecord:
    dist, version = _dist(ep)
    rec = PluginRecord(ep.name, contract, dist, version, ep.value, "ok")
    fix = f"pip install -U {dist}, or pip uninstall {dist}, or set BEING_DISABLE_PLUGINS={contract}:{ep.name}"
    if not is_enabled(contract, ep.name, env):
        rec.status, rec.error, rec.hint = "disabled", "excluded by BEING_PLUGINS/BEING_DISABLE_PLUGINS", "change those variables to enable it"
        return rec
    try:
        spec = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure of a third-party plugin is reported, not raised
        rec.status, rec.error, rec.hint = "broken", f"{type(exc).__name__}: {exc}".splitlines()[0], fix
        return rec
    if not isinstance(spec, PluginSpec):
        rec.status, rec.error, rec.hint = "broken", f"entry point {ep.value} is a {type(spec).__name__}, not a being_kernel PluginSpec", fix
        return rec
    if spec.contract != contract:
        rec.status, rec.error, rec.hint = "broken", f"its spec says contract '{spec.contract}' but it is registered under {GROUPS[contract]}", fix
        return rec
    rec.description, rec.spec = spec.description, spec
    if spec.api_version != KERNEL_API_VERSION:
        newer = spec.api_version > KERNEL_API_VERSION
        rec.status = "incompatible"
        rec.error = f"written for kernel API {spec.api_version}, this being has API {KERNEL_API_VERSION}"
        rec.hint = "upgrade being: pip install -U being-kernel" if newer else f"upgrade the plugin: pip install -U {dist}"
    return rec


class Registry:
    """All method plugins found, by contract and name."""

    def __init__(self, records: list[PluginRecord]) -> None:
        self.records = records

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None) -> Registry:
        env = os.environ if env is None else env
        records: list[PluginRecord] = []
        for contract, group in GROUPS.items():
            seen: dict[str, PluginRecord] = {}
            for ep in sorted(entry_points(group=group), key=lambda e: e.name):
                if ep.name in seen:
                    if seen[ep.name].target == ep.value:  # the same distribution seen twice on sys.path
                        continue
                    dist, version = _dist(ep)
                    records.append(PluginRecord(ep.name, contract, dist, version, ep.value, "broken",
                                                error=f"name clash with {seen[ep.name].distribution}",
                                                hint=f"uninstall one of {dist} and {seen[ep.name].distribution}"))
                    continue
                seen[ep.name] = _load(ep, contract, env)
                records.append(seen[ep.name])
        return cls(records)

    def of(self, contract: str) -> list[PluginRecord]:
        return [r for r in self.records if r.contract == contract]

    def problems(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status in ("broken", "incompatible")]

    def not_installed(self) -> list[KnownMethod]:
        present = {(r.contract, r.name) for r in self.records}
        return [m for m in KNOWN_METHODS if (m.contract, m.name) not in present]

    def providers(self, contract: str, motion_space: str) -> list[str]:
        """Names of usable plugins of ``contract`` whose spec declares ``motion_space``."""
        return [r.name for r in self.of(contract) if r.ok and r.spec and motion_space in r.spec.motion_spaces]

    def default(self, contract: str, note: Callable[[str], None] | None = None) -> str:
        """The plugin of ``contract`` to use when none is named: the first usable one of
        ``DEFAULT_PLUGINS[contract]`` (the first of the list when none is usable, so that
        ``spec`` says how to install it). ``note`` is told when that is the testing-kit fake."""
        usable = {r.name for r in self.of(contract) if r.ok}
        wanted = DEFAULT_PLUGINS[contract]
        choice = next((n for n in wanted if n in usable), wanted[0])
        if choice == "fake" and note is not None:
            note(f"being: note: --{contract} defaults to the testing-kit fake; install "
                 f"'{wanted[0]}' for the real method (see 'being plugins')")
        return choice

    def spec(self, contract: str, name: str) -> PluginSpec:
        """The usable spec of ``--{contract} name``, or a PluginError that says what to do."""
        for rec in self.of(contract):
            if rec.name == name:
                if rec.ok and rec.spec is not None:
                    return rec.spec
                raise PluginError(f"--{contract} {name}: plugin is {rec.status}: {rec.error}", rec.hint)
        usable = ", ".join(r.name for r in self.of(contract) if r.ok) or "none"
        known = next((m for m in KNOWN_METHODS if (m.contract, m.name) == (contract, name)), None)
        if known is not None:
            state = "is planned but not released yet" if known.planned else "is not installed"
            raise PluginError(f"--{contract} {name} {state} (installed: {usable})", known.install_hint)
        raise PluginError(f"--{contract} {name}: no such plugin (installed: {usable})", "run 'being plugins' to see what is available")


def build_plugin(spec: PluginSpec, config, contract: str, name: str):  # noqa: ANN001, ANN201 - config model -> plugin
    """Import ``spec``'s implementation and build it with ``config``; a plugin that fails to import
    or to start becomes a PluginError naming it (BeingErrors it raises pass through)."""
    try:
        cls = spec.load_class()
    except Exception as exc:  # noqa: BLE001 - an implementation that fails to import is the plugin's fault
        raise PluginError(f"--{contract} {name} failed to load: {type(exc).__name__}: {exc}",
                          "reinstall or upgrade the plugin, or see 'being plugins'") from exc
    try:
        return cls(config)
    except BeingError:
        raise
    except Exception as exc:  # noqa: BLE001 - report which plugin could not start
        raise PluginError(f"--{contract} {name} could not start: {type(exc).__name__}: {exc}") from exc


def build_named(contract: str, name: str, values: dict, device: str | None = None):  # noqa: ANN201 - a plugin
    """Build the installed plugin ``--{contract} name`` from config ``values`` (a dict, validated by
    its spec), on ``device`` when given and the plugin has that field: for tools and for plugins
    that build on another (a restorer over a base torso). Errors are one-line BeingErrors."""
    from . import config as cfg

    spec = Registry.discover().spec(contract, name)
    values = dict(values)
    if device is not None and "device" in spec.config.model_fields:
        values.setdefault("device", device)
    return build_plugin(spec, cfg.build(spec.config, contract, values), contract, name)

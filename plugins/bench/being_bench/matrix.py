"""The bench matrix: audio x avatar x torso plugins x sizes x devices x clips, as cell plans.

Everything that can be known before a cell starts is settled here: which plugins exist, whether
the device exists, each plugin's config (the user's values, then the cell's size and device), and
the warm-up. A cell that cannot run carries the reason instead. When a plugin's bench settings
change its config on the cell's device, the cell is planned twice: with ``being run``'s own
defaults, and with the settings (``tuned``), so the report never shows only a tuned figure.
"""

from __future__ import annotations

from itertools import product
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict

from being_kernel import BeingError, PluginSpec
from being_kernel.api import Registry, merge_config

from .schema import Clip

#: The image size of a cell when neither --size nor the avatar's bench settings give one.
DEFAULT_SIZE = (512, 512)
CONTRACTS = ("audio", "avatar", "torso")

Size = tuple[int, int]


class CellPlan(BaseModel):
    """One cell to run: what the worker process needs, or why it cannot run (``skip``)."""

    model_config = ConfigDict(extra="forbid")

    audio: str
    avatar: str
    torso: str
    size: Size
    device: str
    clip: Clip
    values: dict[str, dict[str, Any]] = {}  # contract -> config values to validate and build with
    tuned: str | None = None  # the plugins' bench settings in force ("avatar.batch_frames=50"); None: being run's
    warmup: int = 1
    skip: str | None = None

    @property
    def id(self) -> str:
        cell = f"{self.audio}+{self.avatar}+{self.torso}@{self.size[0]}x{self.size[1]}/{self.device}/{self.clip.name}"
        return cell + ("/tuned" if self.tuned else "")


def split_list(items: list[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: options take comma lists and may be repeated."""
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def bench_settings(spec: PluginSpec, device: str) -> dict[str, Any]:
    """The config values a plugin's bench settings give on ``device`` (empty: none)."""
    return spec.bench.config_for(device.split(":")[0]) if spec.bench else {}


def plugin_values(spec: PluginSpec, contract: str, user: Mapping[str, Any], size: Size, device: str,
                  name: str = "", plugins: tuple[str, ...] = (), tuned: bool = True) -> dict[str, Any]:
    """A plugin's config values in a cell: its bench settings (when ``tuned``), then ``user`` (--set,
    --config), then the cell's size (avatar and torso) and device, where its config has those
    fields. In ``user``, a table named after one of the contract's ``plugins`` (``--set
    avatar.flash.path=DIR``) is for that plugin only, over the contract-wide values; the plugin is ``name``."""
    bench = bench_settings(spec, device) if tuned else {}
    shared = {k: v for k, v in user.items() if not (k in plugins and isinstance(v, Mapping))}
    own = user.get(name) if isinstance(user.get(name), Mapping) else {}
    values = merge_config(merge_config({"_": bench}, {"_": shared}), {"_": dict(own)})["_"]
    fields = spec.config.model_fields
    if contract != "audio" and "size" in fields:
        values["size"] = [size[0], size[1]]
    if "device" in fields:
        values["device"] = device
    return values


def _sizes_for(spec: PluginSpec | None, sizes: list[Size]) -> list[Size]:
    if sizes:
        return sizes
    return list(spec.bench.sizes) if spec and spec.bench and spec.bench.sizes else [DEFAULT_SIZE]


def plan_cells(
    registry: Registry,
    names: Mapping[str, list[str]],
    sizes: list[Size],
    devices: list[str],
    clips: list[Clip],
    user_values: Mapping[str, Mapping[str, Any]],
    warmup: int | None,
    cuda_devices: int,
) -> list[CellPlan]:
    """Every cell of the matrix. ``names`` may say ``all`` for every usable plugin of a contract;
    ``sizes`` empty means each avatar's bench sizes; ``cuda_devices`` is how many GPUs there are."""
    chosen: dict[str, list[str]] = {}
    for c in CONTRACTS:
        usable = [r.name for r in registry.of(c) if r.ok]
        chosen[c] = list(dict.fromkeys(n for name in names[c] for n in (usable if name == "all" else [name])))
    specs: dict[tuple[str, str], PluginSpec | str] = {}
    for c in CONTRACTS:
        for name in chosen[c]:
            try:
                specs[c, name] = registry.spec(c, name)
            except BeingError as exc:
                specs[c, name] = exc.one_line()
    plans = []
    for audio, avatar, torso in product(chosen["audio"], chosen["avatar"], chosen["torso"]):
        triple = {"audio": audio, "avatar": avatar, "torso": torso}
        avatar_spec = specs["avatar", avatar]
        for size, device, clip in product(_sizes_for(avatar_spec if isinstance(avatar_spec, PluginSpec) else None, sizes),
                                          devices, clips):
            plan = CellPlan(**triple, size=size, device=device, clip=clip)
            problems = [s for c in CONTRACTS if isinstance(s := specs[c, triple[c]], str)]
            if problems:
                plans.append(plan.model_copy(update={"skip": problems[0]}))
                continue
            if device.startswith("cuda") and int((device.split(":") + ["0"])[1]) >= cuda_devices:
                reason = "CUDA is not available on this machine" if not cuda_devices else f"{device}: only {cuda_devices} CUDA device(s)"
                plans.append(plan.model_copy(update={"skip": reason}))
                continue
            cell_specs = {c: specs[c, triple[c]] for c in CONTRACTS}
            plan_warmup = warmup if warmup is not None else max(s.bench.warmup if s.bench else 1 for s in cell_specs.values())
            tuned = ", ".join(f"{c}.{k}={v}" for c, s in cell_specs.items() for k, v in bench_settings(s, device).items())
            for with_settings in ((False, True) if tuned else (False,)):
                values = {c: plugin_values(s, c, user_values.get(c, {}), size, device, triple[c], tuple(chosen[c]),
                                           tuned=with_settings) for c, s in cell_specs.items()}
                plans.append(plan.model_copy(update={"values": values, "warmup": plan_warmup,
                                                     "tuned": tuned if with_settings else None}))
    return plans

"""What a plugin's entry point names: a light ``PluginSpec``, never the heavy implementation.

A plugin registers ``name = "its_pkg.spec:SPEC"`` in the entry-point group ``being.audio``,
``being.avatar`` or ``being.torso``. Listing plugins imports only the spec module (which must stay
cheap: pydantic, no torch); the implementation named by ``factory`` is imported when used.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Mapping, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict

#: The kernel's plugin API version. Bumped on a breaking change to the contracts or the spec.
KERNEL_API_VERSION = 2

ContractName = Literal["audio", "avatar", "torso"]

#: What a trainer reads (docs/training.md#datasets):
#: "tracked-video"  a monocular video with per-frame FLAME tracking and head masks (avatars);
#: "full-frame"     the same with the whole frame kept: person/torso masks and a background (torsos);
#: "audio-motion"   a tracked video with its audio track (audio models learn motion from speech).
DatasetKind = Literal["tracked-video", "full-frame", "audio-motion"]
DATASET_KINDS: tuple[str, ...] = get_args(DatasetKind)


def _device_name(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", got {value!r}')
    return value


#: A config field naming a torch device: "auto", "cpu", "cuda" or "cuda:N" (checked, not resolved:
#: resolving needs torch, which spec modules must not import; see ``being_kernel.api.resolve_device``).
DeviceName = Annotated[str, AfterValidator(_device_name)]


def _path_name(value: str) -> str:
    if not value.strip():
        raise ValueError("a path must not be empty; leave the field unset for the default")
    return value


#: A config field naming a file or directory: a non-empty string (existence is checked where it is used).
PathName = Annotated[str, AfterValidator(_path_name)]


def _image_size(value: tuple[int, int]) -> tuple[int, int]:
    if value[0] < 8 or value[1] < 8:
        raise ValueError(f"size (width, height) must be at least 8 x 8, got {value}")
    return value


def _video_size(value: tuple[int, int]) -> tuple[int, int]:
    w, h = value
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise ValueError(f"size (width, height) must be even and >= 16 in both (H.264 yuv420p needs even sizes), got {value}")
    return value


#: (width, height) of an image a stage makes, at least 8 x 8.
ImageSize = Annotated[tuple[int, int], AfterValidator(_image_size)]
#: (width, height) of video frames: even and at least 16, as H.264 in yuv420p needs.
VideoSize = Annotated[tuple[int, int], AfterValidator(_video_size)]


class PluginConfig(BaseModel):
    """Base for plugin config models: unknown fields are refused, values validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class BenchSettings:
    """How ``being bench`` runs a plugin (all optional; a plugin without them is benched as is).

    sizes:         (width, height) image sizes to bench an avatar at when ``--size`` is not given
    warmup:        untimed runs before each timed measurement (JIT, caches, autotuning)
    config:        config values for bench runs on every device (e.g. a larger batch)
    device_config: config values per device type ("cpu", "cuda"), over ``config``
    notes:         one line for the report, e.g. what the settings trade
    The user's ``--set`` wins over ``config``; the matrix's size and device win over both.
    """

    sizes: tuple[tuple[int, int], ...] | None = None
    warmup: int = 1
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    device_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    notes: str = ""

    def config_for(self, device_type: str) -> dict[str, Any]:
        """The config values for a run on ``device_type``."""
        return {**self.config, **self.device_config.get(device_type, {})}


@dataclass(frozen=True)
class TrainerSpec:
    """A plugin's trainer as its spec names it (nothing is imported until ``being fit`` runs it).

    method:  "module:Class" of the plugin's ``being_kernel.train.FitMethod``
    config:  its pydantic config model, a subclass of ``being_kernel.train.FitConfig``
             (``--set fit.FIELD=VALUE``)
    dataset: the dataset kind it trains on (``DatasetKind``)
    """

    method: str
    config: type[BaseModel]
    dataset: DatasetKind = "tracked-video"

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_KINDS:
            raise ValueError(f"TrainerSpec.dataset must be one of {DATASET_KINDS}, got {self.dataset!r}")
        if ":" not in self.method:
            raise ValueError(f'TrainerSpec.method must be "module:Class", got {self.method!r}')

    def load_method(self) -> type:
        return _load(self.method)


@dataclass(frozen=True)
class PluginSpec:
    """A method plugin as the kernel sees it before importing it.

    contract:    "audio" (AudioToFlame), "avatar" (FlameRenderer) or "torso" (TorsoCompositor)
    description: one line, shown by ``being plugins``
    config:      the pydantic config model (subclass PluginConfig: extra="forbid")
    factory:     "module:Class" of the implementation, imported on first use
    motion_spaces: motion spaces it produces (audio) or consumes (avatar); shown by
                 ``being plugins`` and used to say which plugins would fit a mismatch
    api_version: the KERNEL_API_VERSION this plugin was written for
    trainer:     ``TrainerSpec`` when the method can be trained by ``being fit --CONTRACT NAME``
                 (any contract); see docs/training.md. None: not trainable
    bench:       how ``being bench`` runs it (``BenchSettings``); None: the defaults
    """

    contract: ContractName
    description: str
    config: type[BaseModel]
    factory: str
    motion_spaces: tuple[str, ...] = ()
    api_version: int = KERNEL_API_VERSION
    trainer: TrainerSpec | None = None
    bench: BenchSettings | None = None

    def load_class(self) -> type:
        return _load(self.factory)


def _load(target: str):  # noqa: ANN202 - "module:attr" -> the attribute
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)

"""Being's testing kit: fakes of each contract, the conformance suite and the trainer conformance suite.

Installed as a pytest plugin (entry point ``pytest11: being``, the module
``being_kernel.testing.pytest_plugin``), which provides the fixtures ``being_fake_audio``,
``being_fake_renderer``, ``being_fake_compositor`` and ``being_speech``. This module is the
public surface (its other submodules are private); ``FAKE_SPECS[contract]`` is the spec of the
fake installed as ``--CONTRACT fake``. Names are imported lazily so that the fakes' spec module
stays light for plugin listing.
"""

from __future__ import annotations

from importlib import import_module
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conformance import conformance_suite
    from .fakes import FakeAudioToFlame, FakeCompositor, FakeRenderer
    from .lpips_weights import write_alex_weights
    from .trainer_conformance import trainer_conformance_suite

_LAZY = {
    "conformance_suite": "conformance", "trainer_conformance_suite": "trainer_conformance",
    "FakeAudioToFlame": "fakes", "FakeRenderer": "fakes", "FakeCompositor": "fakes",
    "write_alex_weights": "lpips_weights",
}

__all__ = [*_LAZY, "FAKE_SPECS"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name == "FAKE_SPECS":
        from .specs import AUDIO, AVATAR, TORSO

        return MappingProxyType({"audio": AUDIO, "avatar": AVATAR, "torso": TORSO})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Being's testing kit: fakes of each contract, the conformance suite and the trainer conformance suite.

Installed as a pytest plugin (entry point ``pytest11: being``), which provides the fixtures
``being_fake_audio``, ``being_fake_renderer``, ``being_fake_compositor`` and ``being_speech``.
Names are imported lazily so that the specs module stays light for plugin listing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["conformance_suite", "trainer_conformance_suite", "FakeAudioToFlame", "FakeRenderer", "FakeCompositor"]


def __getattr__(name: str) -> Any:
    if name == "conformance_suite":
        from .conformance import conformance_suite

        return conformance_suite
    if name == "trainer_conformance_suite":
        from .trainer_conformance import trainer_conformance_suite

        return trainer_conformance_suite
    if name in ("FakeAudioToFlame", "FakeRenderer", "FakeCompositor"):
        from . import fakes

        return getattr(fakes, name)
    raise AttributeError(name)

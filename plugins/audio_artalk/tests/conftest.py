"""Fixtures shared by the artalk tests: one torch thread per module, a tiny random-weights directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from being_audio_artalk.testing import write_random_weights


@pytest.fixture(autouse=True, scope="module")
def one_thread(being_one_torch_thread):
    """The tiny models run on one torch thread (the kernel's fixture)."""


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random-weight model in the published directory layout, styles natural_0 and happy_1."""
    return write_random_weights(tmp_path_factory.mktemp("artalk") / "weights", styles=("natural_0", "happy_1"))

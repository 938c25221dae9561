"""Fixtures shared by the artalk tests: one torch thread per module, a tiny random-weights directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from being_audio_artalk.testing import write_random_weights


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny model's matrices are a few dozen wide: one thread is 10-20x faster than two
    fighting over a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random-weight model in the published directory layout, styles natural_0 and happy_1."""
    return write_random_weights(tmp_path_factory.mktemp("artalk") / "weights", styles=("natural_0", "happy_1"))

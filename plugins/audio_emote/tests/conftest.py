"""Fixtures shared by the emote tests: one torch thread per module, tiny random-weight files in the
published layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from being_audio_emote.testing import random_audio2pose, random_emote, write_emote_folder, write_sadtalker


@pytest.fixture(autouse=True, scope="module")
def one_thread(being_one_torch_thread):
    """The tiny models run on one torch thread (the kernel's fixture)."""


@pytest.fixture(scope="module")
def tiny_assets(tmp_path_factory) -> Path:
    """``EMOTE_v2/`` (cfg.yaml + checkpoints/last.ckpt) and ``SadTalker_V0.0.2_256.safetensors``, random weights."""
    root = tmp_path_factory.mktemp("emote")
    write_emote_folder(root / "EMOTE_v2", random_emote(seed=1))
    write_sadtalker(root / "SadTalker_V0.0.2_256.safetensors", random_audio2pose(seed=2))
    return root

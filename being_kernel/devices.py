"""Resolving the ``device`` config field that GPU-capable plugins share."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str, field: str = "device") -> torch.device | None:
    """``"auto"`` -> None (the plugin follows its inputs, or picks CUDA when there is one);
    ``"cpu"``/``"cuda"``/``"cuda:N"`` -> that device, or ConfigError if CUDA is asked for but absent."""
    if name == "auto":
        return None
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{field}: {name!r} asked for but CUDA is not available", 'use "auto" or "cpu"')
    return torch.device(name)


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU: what ``"auto"`` means for a stage that starts the data."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")

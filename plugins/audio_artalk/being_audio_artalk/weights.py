"""Finding and loading the published weights; never downloads.

Where the weights are looked for, first hit wins:

1. the ``weights`` config field: a directory, or the ``.pt`` file itself;
2. the directory in ``$BEING_ARTALK_DIR``;
3. the local Hugging Face cache, read offline: ``$HF_HUB_CACHE`` (or the older
   ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``,
   else ``~/.cache/huggingface/hub``; in it ``models--xg-chu--ARTalk/snapshots/<revision>/``,
   the revision named by ``refs/main`` first.

A directory holds ``ARTalk_wav2vec.pt``, ``config.json`` (without one, the published sizes are
used) and optionally ``style_motion/*.pt``. Loading is ``torch.load(..., weights_only=True)``
(memory-mapped) into a model built on the meta device, then a strict ``load_state_dict``; keys
and shapes are compared first so a wrong file is reported by its first mismatches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from being_kernel.errors import InputError

from .config import ArtalkSizes
from .model import ArtalkModel

HUB_REPO = "xg-chu/ARTalk"
CHECKPOINT = "ARTalk_wav2vec.pt"
CONFIG = "config.json"
STYLE_DIR = "style_motion"
ENV_DIR = "BEING_ARTALK_DIR"

HOW_TO_GET = (f"download {CHECKPOINT} and {CONFIG} (and {STYLE_DIR}/*.pt for styles) from the Hugging Face "
              f"repository {HUB_REPO} into one directory and pass --set audio.weights=DIR or set {ENV_DIR}=DIR, "
              f"or fetch them into the Hugging Face cache with: huggingface-cli download {HUB_REPO} --include "
              f"{CHECKPOINT} {CONFIG} '{STYLE_DIR}/*'")

# Names of the positional convolution's weight-norm tensors: older transformers/torch save the
# weight_norm hook's names, newer ones the parametrisation's. Both are accepted; this one is kept.
_WEIGHT_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
_POS_CONV = "audio_encoder.encoder.pos_conv_embed.conv."


@dataclass(frozen=True)
class WeightFiles:
    """Where a model's files are: the checkpoint, its config.json (None: published sizes), the
    style clip directory (None if absent), and how they were found (for messages)."""

    checkpoint: Path
    config: Path | None
    style_dir: Path | None
    source: str


def _in_directory(directory: Path, source: str) -> WeightFiles | None:
    checkpoint = directory / CHECKPOINT
    if not checkpoint.is_file():
        return None
    config, styles = directory / CONFIG, directory / STYLE_DIR
    return WeightFiles(checkpoint, config if config.is_file() else None, styles if styles.is_dir() else None, source)


def hub_cache(env: Mapping[str, str]) -> Path:
    """The Hugging Face hub cache directory in use, as huggingface_hub resolves it."""
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _in_hub_cache(cache: Path) -> WeightFiles | None:
    repo = cache / ("models--" + HUB_REPO.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    preferred = [snapshots / ref.read_text().strip()] if ref.is_file() else []
    others = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snapshot in preferred + others:
        found = _in_directory(snapshot, f"the Hugging Face cache ({snapshot})")
        if found is not None:
            return found
    return None


def find_weights(explicit: str | None, env: Mapping[str, str] | None = None) -> WeightFiles:
    """Locate the weights (see the module docstring); InputError naming what to do if absent."""
    env = os.environ if env is None else env
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            config, styles = path.parent / CONFIG, path.parent / STYLE_DIR
            return WeightFiles(path, config if config.is_file() else None, styles if styles.is_dir() else None,
                               "audio.weights")
        if not path.is_dir():
            raise InputError(f"audio.weights: no such file or directory: {path}", hint=HOW_TO_GET)
        found = _in_directory(path, "audio.weights")
        if found is None:
            raise InputError(f"audio.weights: {path} has no {CHECKPOINT}", hint=HOW_TO_GET)
        return found
    if env.get(ENV_DIR):
        path = Path(env[ENV_DIR]).expanduser()
        found = _in_directory(path, ENV_DIR) if path.is_dir() else None
        if found is None:
            raise InputError(f"{ENV_DIR}={path}: no {CHECKPOINT} there", hint=HOW_TO_GET)
        return found
    found = _in_hub_cache(hub_cache(env))
    if found is None:
        raise InputError(f"ARTalk weights not found (no audio.weights, no {ENV_DIR}, nothing in the Hugging Face "
                         f"cache {hub_cache(env)})", hint=HOW_TO_GET)
    return found


def canonical_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with the positional-conv weight-norm names mapped to the kept naming."""
    out = {}
    for key, value in state.items():
        if key.startswith(_POS_CONV) and key[len(_POS_CONV):] in _WEIGHT_NORM:
            key = _POS_CONV + _WEIGHT_NORM[key[len(_POS_CONV):]]
        out[key] = value
    return out


def layout_mismatches(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> list[str]:
    """Differences between a state dict and the model's: missing, unexpected, wrong shape."""
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} has shape {list(v.shape)}, expected {list(expected[k].shape)}"
                 for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    return problems


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)``, memory-mapped, as a flat tensor dict."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # the pre-zip format
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsafe file is one user error
        raise InputError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {exc})",
                         hint=f"re-download {CHECKPOINT} from {HUB_REPO}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a state dict of tensors")
    return canonical_keys(state)


def load_model(path: Path, sizes: ArtalkSizes, device: torch.device) -> ArtalkModel:
    """The model with the checkpoint's weights, in eval mode on ``device`` (float32)."""
    state = read_checkpoint(path)
    with torch.device("meta"):
        model = ArtalkModel(sizes)
    problems = layout_mismatches(state, model.state_dict())
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{path} does not fit the ARTalk model of its config.json: {shown}",
                         hint=f"use {CHECKPOINT} and {CONFIG} from {HUB_REPO}, unchanged")
    # float32 as published; a checkpoint saved in half precision is widened (mmap'd float32 stays as is)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval().requires_grad_(False)

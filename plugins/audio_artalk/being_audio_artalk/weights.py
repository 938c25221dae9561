"""Finding and loading the published weights; never downloads.

Where the weights are looked for, first hit wins (``being_kernel.api.find_weights``):

1. the ``weights`` config field: a directory, or the ``.pt`` file itself;
2. the directory in ``$BEING_ARTALK_DIR``;
3. the local Hugging Face cache, read offline: ``$HF_HUB_CACHE`` (or the older
   ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``,
   else ``~/.cache/huggingface/hub``; in it ``models--xg-chu--ARTalk/snapshots/<revision>/``,
   the revision named by ``refs/main`` first.

A directory holds ``ARTalk_wav2vec.pt``, ``config.json`` (without one, the published sizes are
used) and optionally ``style_motion/*.pt``. Loading is ``safe_torch_load`` (``weights_only=True``,
memory-mapped) into a model built on the meta device, then a strict ``load_state_dict``; keys
and shapes are compared first so a wrong file is reported by its first mismatches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from being_kernel import InputError
from being_kernel.api import find_weights as find_weight_files, load_strict, safe_torch_load
from being_kernel.audio import canonical_weight_norm

from .config import ArtalkSizes
from .model import ArtalkModel

HUB_REPO = "xg-chu/ARTalk"
CHECKPOINT = "ARTalk_wav2vec.pt"
CONFIG = "config.json"
STYLE_DIR = "style_motion"
ENV_DIR = "BEING_ARTALK_DIR"

HOW_TO_GET = (f"{CONFIG} belongs beside it (and {STYLE_DIR}/*.pt, for styles); or pass the directory with "
              f"--set audio.weights=DIR")

@dataclass(frozen=True)
class WeightFiles:
    """Where a model's files are: the checkpoint, its config.json (None: published sizes) and the
    style clip directory (None if absent)."""

    checkpoint: Path
    config: Path | None
    style_dir: Path | None

    @classmethod
    def beside(cls, checkpoint: Path) -> WeightFiles:
        """The checkpoint with the config.json and style_motion/ of its directory, where present."""
        config, styles = checkpoint.parent / CONFIG, checkpoint.parent / STYLE_DIR
        return cls(checkpoint, config if config.is_file() else None, styles if styles.is_dir() else None)


def find_weights(explicit: str | None, env: Mapping[str, str] | None = None) -> WeightFiles:
    """Locate the weights (see the module docstring); InputError naming what to do if absent.
    ``env``: the environment to read (default os.environ)."""
    if explicit is not None and Path(explicit).expanduser().is_file():
        return WeightFiles.beside(Path(explicit).expanduser())
    directory = find_weight_files("ARTalk weights", explicit=explicit, env_var=ENV_DIR, hub_repo=HUB_REPO,
                                  files=[CHECKPOINT], hint=HOW_TO_GET, env=env)
    return WeightFiles.beside(directory / CHECKPOINT)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint (``safe_torch_load``, memory-mapped) as a flat tensor dict."""
    state = safe_torch_load(path, mmap=True, what="PyTorch state dict", hint=f"re-download {CHECKPOINT} from {HUB_REPO}")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a state dict of tensors")
    return canonical_weight_norm(dict(state), "audio_encoder.")


def load_model(path: Path, sizes: ArtalkSizes, device: torch.device) -> ArtalkModel:
    """The model with the checkpoint's weights, in eval mode on ``device`` (float32)."""
    model = load_strict(lambda: ArtalkModel(sizes), read_checkpoint(path), where=str(path),
                        model="ARTalk model of its config.json", hint=f"use {CHECKPOINT} and {CONFIG} from {HUB_REPO}, unchanged")
    return model.to(device)

"""SadTalker's published audio-to-pose weights, from either release, loaded strictly.

* ``auido2pose_00140-model.pth`` (sic; release v0.0.2): a torch pickle ``{"model": state dict,
  "epoch": int, ...}``; read by ``safe_checkpoint_load`` (tensors and plain values only).
* ``SadTalker_V0.0.2_256.safetensors`` or ``_512`` (release v0.0.2-rc): every SadTalker network in
  one file; the audio-to-pose tensors are those named ``audio2pose.*`` (the same in both sizes).

Either gives the 419 tensors of ``Audio2Pose``, loaded by ``load_strict``: a wrong file is named
with its first mismatches.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from being_kernel import InputError
from being_kernel.api import load_strict, safe_checkpoint_load

from .posevae import Audio2Pose, PoseVaeSizes

LEGACY = "auido2pose_00140-model.pth"
COMBINED = ("SadTalker_V0.0.2_256.safetensors", "SadTalker_V0.0.2_512.safetensors")
PREFIX = "audio2pose."
WHERE = ("SadTalker's releases (github.com/OpenTalker/SadTalker, scripts/download_models.sh): "
         f"{COMBINED[0]} (v0.0.2-rc) or {LEGACY} (v0.0.2)")


def read_audio2pose(path: Path) -> dict[str, torch.Tensor]:
    """The audio-to-pose state dict of either published file."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            combined = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise InputError(f"{path}: not a readable safetensors file ({exc})", hint=f"download it again from {WHERE}")
        state = {k[len(PREFIX):]: v for k, v in combined.items() if k.startswith(PREFIX)}
        if not state:
            raise InputError(f"{path}: no {PREFIX}* tensors: not a SadTalker checkpoint", hint=f"use a file from {WHERE}")
        return state
    checkpoint = safe_checkpoint_load(path, what="SadTalker audio2pose checkpoint", hint=f"download it again from {WHERE}")
    state = checkpoint.get("model") if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: no 'model' state dict: not a SadTalker audio2pose checkpoint", hint=f"use {WHERE}")
    return dict(state)


def load_audio2pose(path: Path, device: torch.device) -> Audio2Pose:
    """The published PoseVAE with the file's weights, in eval mode on ``device`` (float32)."""
    return load_strict(lambda: Audio2Pose(PoseVaeSizes()), read_audio2pose(path), where=str(path),
                       model="SadTalker audio2pose", hint=f"use {WHERE}, unchanged").to(device)

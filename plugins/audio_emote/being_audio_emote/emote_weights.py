"""Finding the released EMOTE model and SadTalker's pose weights, and loading EMOTE; never downloads.

EMOTE's assets come from its project site after accepting its licence
(https://emote.is.tue.mpg.de; ``TalkingHead.zip`` unpacks to ``TalkingHead/models/EMOTE_v2/`` and
``EMOTE/``, ``MotionPrior.zip`` to ``MotionPrior/models/FLINTv2/``). A model folder holds
``cfg.yaml`` and ``checkpoints/last.ckpt`` (a PyTorch Lightning checkpoint).

Looked for, first hit wins: the ``weights`` setting (the model folder or its ``.ckpt``),
``$BEING_EMOTE_DIR`` (a model folder), then the offline cache ``$XDG_CACHE_HOME/being/emote/``
(default ``~/.cache/being/emote/``) holding ``EMOTE_v2/`` or ``EMOTE/``.

SadTalker's pose weights (``SadTalker_V0.0.2_256.safetensors`` / ``_512`` or the legacy
``auido2pose_00140-model.pth``): the ``pose_weights`` setting (the file or its folder),
``$BEING_SADTALKER_DIR``, then ``$XDG_CACHE_HOME/being/sadtalker/``.

The checkpoint is read by ``safe_checkpoint_load`` (tensors, plain values and OmegaConf/Lightning
configuration objects as inert data; anything else refused by name). Its network tensors
(``audio_model.``, ``sequence_encoder.``, ``sequence_decoder.`` but the FLAME model) load strictly;
the FLAME model's buffers it also carries (``sequence_decoder.flame.``, ``renderer.``) are FLAME's
assets, not EMOTE's network, and are not read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from being_kernel import InputError
from being_kernel.api import MissingWeights, find_weights, load_strict, safe_checkpoint_load
from being_kernel.audio import canonical_weight_norm

from .emote_config import EmoteSizes, motion_prior_path, read_cfg, sizes_from_cfg
from .emote_model import EmoteModel
from .sadtalker_weights import COMBINED, LEGACY

log = logging.getLogger(__name__)

CFG = "cfg.yaml"
ENV_DIR = "BEING_EMOTE_DIR"
POSE_ENV_DIR = "BEING_SADTALKER_DIR"
MODEL_NAMES = ("EMOTE_v2", "EMOTE")
EMOTE_SITE = "https://emote.is.tue.mpg.de"
HOW_TO_GET = (f"EMOTE's models need its licence accepted at {EMOTE_SITE}; download TalkingHead.zip there "
              f"and pass a model folder (TalkingHead/models/EMOTE_v2, with {CFG} and checkpoints/) with "
              f"--set audio.weights=DIR")
POSE_HOW_TO_GET = ("download SadTalker_V0.0.2_256.safetensors from github.com/OpenTalker/SadTalker releases "
                   "(v0.0.2-rc; scripts/download_models.sh) and pass it with --set audio.pose_weights=FILE, or set "
                   "audio.pose=none for no head motion")
NETWORK = ("audio_model.", "sequence_encoder.", "sequence_decoder.")
FLAME_ASSETS = ("sequence_decoder.flame.", "renderer.")


def cache_dir(name: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/being/NAME`` (default ``~/.cache/being/NAME``)."""
    env = os.environ if env is None else env
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "being" / name


@dataclass(frozen=True)
class EmoteFiles:
    folder: Path  # the model folder, with cfg.yaml
    checkpoint: Path


def _checkpoint_in(folder: Path) -> Path:
    """The model folder's checkpoint: ``checkpoints/last.ckpt`` (what the demo loads), else its only .ckpt."""
    last = folder / "checkpoints" / "last.ckpt"
    if last.is_file():
        return last
    found = sorted(folder.rglob("*.ckpt"))
    if len(found) == 1:
        return found[0]
    what = "no .ckpt" if not found else f"{len(found)} .ckpt files and no checkpoints/last.ckpt"
    raise MissingWeights(f"EMOTE weights: {folder} has {what}", hint=HOW_TO_GET)


def find_emote(explicit: str | None, env: Mapping[str, str] | None = None) -> EmoteFiles:
    """Locate the model (see the module docstring); MissingWeights naming where to get it if absent."""
    if explicit is not None and Path(explicit).expanduser().is_file():
        ckpt = Path(explicit).expanduser()
        folder = next((p for p in (ckpt.parent, ckpt.parent.parent) if (p / CFG).is_file()), None)
        if folder is None:
            raise MissingWeights(f"EMOTE weights: no {CFG} beside {ckpt} or its folder", hint=HOW_TO_GET)
        return EmoteFiles(folder, ckpt)
    cache = cache_dir("emote", env)
    folder = find_weights("EMOTE weights", explicit=explicit, env_var=ENV_DIR, hub_repo=None, files=[CFG],
                          hint=HOW_TO_GET, cache_dirs=[cache / n for n in MODEL_NAMES], env=env)
    return EmoteFiles(folder, _checkpoint_in(folder))


def find_pose_weights(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """SadTalker's audio-to-pose file (see the module docstring)."""
    if explicit is not None and Path(explicit).expanduser().is_file():
        return Path(explicit).expanduser()
    names = (*COMBINED, LEGACY)
    details = []
    for name in names:  # the first of the published files that is there
        try:
            folder = find_weights("SadTalker pose weights", explicit=explicit, env_var=POSE_ENV_DIR, hub_repo=None,
                                  files=[name], hint=POSE_HOW_TO_GET, cache_dirs=[cache_dir("sadtalker", env)], env=env)
            return folder / name
        except MissingWeights as exc:
            details.append(exc)
    first = details[0]
    raise MissingWeights(str(first).replace(COMBINED[0], " or ".join(names), 1), hint=first.hint)


def read_sizes(files: EmoteFiles) -> EmoteSizes:
    """The model's sizes from its cfg.yaml; FLINT's config from the file itself or, where it only
    names its path, from that folder of the unpacked assets."""
    data = read_cfg(files.folder / CFG)
    prior_cfg = None
    if not (data.get("model", {}).get("sequence_decoder", {}).get("motion_prior", {}) or {}).get("cfg"):
        relative = motion_prior_path(data)
        for root in [files.folder, *files.folder.parents]:
            if relative and (root / relative / CFG).is_file():
                prior_cfg = read_cfg(root / relative / CFG)
                break
    return sizes_from_cfg(data, str(files.folder / CFG), prior_cfg)


def split_state(state: Mapping[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The network tensors of a checkpoint's state dict; FLAME's buffers are left out, and any
    other key outside the network is named in a warning (it cannot change the network's output)."""
    network = {k: v for k, v in state.items() if k.startswith(NETWORK) and not k.startswith(FLAME_ASSETS)}
    other = sorted({k.split(".")[0] for k in state if k not in network and not k.startswith(FLAME_ASSETS)})
    if other:
        log.warning("%s: not reading tensors under %s (not part of EMOTE's network)", where, ", ".join(other))
    return canonical_weight_norm(network, "audio_model.model.")


def read_state(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = safe_checkpoint_load(path, what="EMOTE checkpoint", hint=f"download TalkingHead.zip again from {EMOTE_SITE}")
    state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: no 'state_dict' of tensors: not a Lightning checkpoint of EMOTE",
                         hint=f"use checkpoints/last.ckpt of a model folder from {EMOTE_SITE}")
    return split_state(state, str(path))


def load_emote(files: EmoteFiles, device: torch.device) -> EmoteModel:
    """The released model with its checkpoint's weights, eval mode, on ``device`` (float32)."""
    sizes = read_sizes(files)
    model = load_strict(lambda: EmoteModel(sizes), read_state(files.checkpoint), where=str(files.checkpoint),
                        model=f"EMOTE network of {files.folder / CFG}",
                        hint=f"use the model folder from {EMOTE_SITE} unchanged (cfg.yaml and checkpoints/ together)")
    return model.to(device)

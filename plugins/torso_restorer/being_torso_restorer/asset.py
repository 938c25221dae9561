"""The trained restorer on disk: ``restorer.json`` (format ``being-torso-restorer``, version 1), the
network in ``restorer.safetensors`` (no pickle), and ``base/``, the base torso it was trained over.

restorer.json: size [W, H] (the frames it was trained at); width, levels (the network); band
[torso, head] (px: how far the head is grown into the torso, and the torso into the head); crop [w, h] (px); scale
(the network's resolution over the frame's); base (the base torso's plugin name) and base_config (its config,
without the directory field, which is ``base/``: ``scene`` for static, ``path`` for the others);
source (the dataset), steps, name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from being_kernel import ConfigError, InputError
from being_kernel.api import load_strict, read_format_json

from .network import RestorerNet

FORMAT, VERSION = "being-torso-restorer", 1
META, TENSORS, BASE_DIR = "restorer.json", "restorer.safetensors", "base"
TRAIN_HINT = "train one: being fit --torso restorer --data FULL_FRAME_DATASET --out DIR (docs/training.md)"


def base_field(base: str) -> str:
    """The config field that names a base torso's directory."""
    return "scene" if base == "static" else "path"


def save_restorer(net: RestorerNet, directory: Path, base_source: Path, meta: dict) -> None:
    """Write ``net`` and a copy of the base torso's directory ``base_source`` into ``directory``.
    ``meta``: size, band, crop, scale, base, base_config, source, steps, name."""
    from safetensors.torch import save_file

    save_file({k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}, str(directory / TENSORS))
    shutil.copytree(base_source, directory / BASE_DIR)
    record = {"format": FORMAT, "format_version": VERSION, "width": net.width, "levels": net.levels, **meta}
    (directory / META).write_text(json.dumps(record, indent=2) + "\n")


def load_restorer(path: str | None) -> tuple[RestorerNet, dict]:
    """The network at ``path`` (a directory ``save_restorer`` wrote) and its restorer.json, with
    ``base_config`` completed by the base's directory. A missing path is a ConfigError naming
    ``being fit --torso restorer``; a broken or mismatched one an InputError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if path is None:
        raise ConfigError("--torso restorer needs a trained restorer: set torso.path=DIR", hint=TRAIN_HINT)
    root = Path(path).expanduser()
    if not (root / META).is_file():
        what = "no such directory" if not root.is_dir() else f"not a restorer ({META} missing)"
        raise InputError(f"torso.path {root}: {what}", hint=TRAIN_HINT)
    meta = read_format_json(root / META, FORMAT, VERSION, "upgrade being-torso-restorer")
    try:
        width, levels = int(meta["width"]), int(meta["levels"])
        meta["size"] = (int(meta["size"][0]), int(meta["size"][1]))
        meta["crop"] = (int(meta["crop"][0]), int(meta["crop"][1]))
        meta["band"] = (int(meta["band"][0]), int(meta["band"][1]))
        meta["scale"] = float(meta["scale"])
        if not 0 < meta["scale"] <= 1:
            raise ValueError(f"scale {meta['scale']} is not in (0, 1]")
        base = str(meta["base"])
        config = dict(meta["base_config"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{root / META}: malformed ({type(exc).__name__}: {exc})", hint=TRAIN_HINT) from exc
    if not (root / BASE_DIR).is_dir():
        raise InputError(f"{root / BASE_DIR}: the base torso is missing from the restorer", hint=TRAIN_HINT)
    if not (root / TENSORS).is_file():
        raise InputError(f"{root / TENSORS}: missing from the restorer", hint=TRAIN_HINT)
    try:
        tensors = load_file(str(root / TENSORS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{root / TENSORS}: unreadable ({exc})", hint=TRAIN_HINT) from exc
    net = load_strict(lambda: RestorerNet(width, levels), tensors, where=str(root / TENSORS), model=f"{META}'s",
                      hint=TRAIN_HINT)
    config[base_field(base)] = str(root / BASE_DIR)
    meta["base_config"] = config
    return net, meta


def network_dtype(device: torch.device, half: bool) -> torch.dtype:
    """float16 on CUDA when ``half``, else float32."""
    return torch.float16 if half and device.type == "cuda" else torch.float32

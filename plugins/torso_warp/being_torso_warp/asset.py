"""The trained torso on disk: ``torso.json`` (format ``being-torso-warp``, version 1), the tensors in
``torso.safetensors`` (no pickle), and the background plate ``background.png``.

torso.json: size [W, H]; K, R_ref 3x3; c_ref, root 3; box [x0, y0, x1, y1]; the network sizes
(features, hidden, uv_octaves, pose_octaves, padding); anchors (count); head_model (the dataset's);
source (the dataset directory) and steps. Tensors: ``texture`` [4 + F, Ht, Wt], ``baked`` [4, Ht, Wt],
the MLPs' ``warp_mlp.*`` and ``colour_mlp.*``, ``pose_lo`` / ``pose_hi`` [6] (the training poses'
range), ``anchors.*`` (the full mode's: rest [K, 3], target [K, 2], scale [K], weight_logit [K],
opacity_logit [K]) and ``fast_anchors.*`` (the same, distilled for the fast mode).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from being_kernel import ConfigError, InputError
from being_kernel.api import read_format_json
from being_kernel.media import read_image, write_png

from .anchors import Anchors
from .field import TorsoField
from .model import WarpModel
from .pose import TorsoCamera

FORMAT, VERSION = "being-torso-warp", 1
META, TENSORS, PLATE = "torso.json", "torso.safetensors", "background.png"
TRAIN_HINT = "train one: being fit --torso warp --data FULL_FRAME_DATASET --out DIR (docs/training.md)"


def save_torso(model: WarpModel, directory: Path, meta: dict) -> None:
    """Write ``model`` (with its baked texture) into ``directory``; ``meta``: head_model, source, steps."""
    from safetensors.torch import save_file

    f, cam = model.field, model.camera
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "plate"}
    save_file(tensors, str(directory / TENSORS))
    write_png(directory / PLATE, model.plate.detach().cpu())
    record = {"format": FORMAT, "format_version": VERSION, "size": list(cam.size),
              "K": cam.K.cpu().tolist(), "R_ref": cam.R_ref.cpu().tolist(), "c_ref": cam.c_ref.cpu().tolist(),
              "root": cam.root.cpu().tolist(), "box": list(model.box), "features": f.features,
              "hidden": f.warp_mlp.out.in_features, "uv_octaves": f.uv_octaves, "pose_octaves": f.pose_octaves,
              "padding": f.padding, "anchors": len(model.anchors), **meta}
    (directory / META).write_text(json.dumps(record, indent=2) + "\n")


def load_torso(path: str | None) -> tuple[WarpModel, dict]:
    """The torso at ``path`` (a directory ``save_torso`` wrote) and its torso.json. A missing path
    is a ConfigError naming ``being fit --torso warp``; a broken or mismatched one an InputError
    naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if path is None:
        raise ConfigError("--torso warp needs a trained torso: set torso.path=DIR", hint=TRAIN_HINT)
    root = Path(path).expanduser()
    if not (root / META).is_file():
        what = "no such directory" if not root.is_dir() else f"not a warp torso ({META} missing)"
        raise InputError(f"torso.path {root}: {what}", hint=TRAIN_HINT)
    meta = read_format_json(root / META, FORMAT, VERSION, "upgrade being-torso-warp")
    try:
        size = (int(meta["size"][0]), int(meta["size"][1]))
        camera = TorsoCamera(torch.tensor(meta["K"]).float(), size, torch.tensor(meta["R_ref"]).float(),
                             torch.tensor(meta["c_ref"]).float(), torch.tensor(meta["root"]).float())
        box = tuple(int(v) for v in meta["box"])
        field = TorsoField(size, int(meta["features"]), int(meta["hidden"]), int(meta["uv_octaves"]),
                           int(meta["pose_octaves"]), float(meta["padding"]))
        n = int(meta["anchors"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{root / META}: malformed ({type(exc).__name__}: {exc})", hint=TRAIN_HINT) from exc
    for p in (root / TENSORS, root / PLATE):
        if not p.is_file():
            raise InputError(f"{p}: missing from the torso", hint=TRAIN_HINT)
    try:
        tensors = load_file(str(root / TENSORS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{root / TENSORS}: unreadable ({exc})", hint=TRAIN_HINT) from exc
    plate = torch.from_numpy(read_image(root / PLATE)[..., :3].astype(np.float32) / 255.0)
    if tuple(plate.shape[:2]) != (size[1], size[0]):
        raise InputError(f"{root / PLATE}: {plate.shape[1]}x{plate.shape[0]}, but the torso is {size[0]}x{size[1]}",
                         hint=TRAIN_HINT)
    blank = lambda: Anchors(torch.zeros(n, 3), torch.zeros(n, 2), torch.full((n,), 0.5), torch.zeros(n))  # noqa: E731
    model = WarpModel(field, blank(), camera, box, plate, torch.zeros(4, *field.texture.shape[1:]), blank())
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "plate"}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        wrong = sorted(set(expected) ^ set(got)) or [k for k in expected if expected[k] != got[k]]
        raise InputError(f"{root / TENSORS}: does not match {META} (first difference: {wrong[0]}: "
                         f"{got.get(wrong[0])} stored, {expected.get(wrong[0])} expected)", hint=TRAIN_HINT)
    model.load_state_dict({**tensors, "plate": plate}, strict=True)
    return model, meta

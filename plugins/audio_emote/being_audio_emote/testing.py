"""Random-weight files in the published layouts, for tests and benchmarks: an EMOTE model folder
(``cfg.yaml`` + ``checkpoints/last.ckpt``, a Lightning checkpoint) and SadTalker's pose weights
(the combined ``.safetensors`` or the legacy ``.pth``)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from .emote_config import EmoteSizes, sizes_to_cfg, tiny
from .emote_model import EmoteModel
from .posevae import Audio2Pose
from .sadtalker_weights import COMBINED, LEGACY

#: FLAME's buffers as the released checkpoints carry them beside the network (shapes of FLAME 2020
#: with 300 shape and 100 expression components); the loader must leave them alone
FLAME_BUFFERS = {"v_template": (5023, 3), "shapedirs": (5023, 3, 400), "posedirs": (36, 15069),
                 "J_regressor": (5, 5023), "lbs_weights": (5023, 5)}


def _randomise(model: torch.nn.Module, seed: int, redraw: bool) -> torch.nn.Module:
    """Reproducible random weights (``redraw``: every parameter N(0, 0.2^2), else the modules' own
    fan-in-scaled initialisation, which keeps a deep convolutional stack well conditioned), with
    non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters() if redraw else ():
            p.copy_(0.2 * torch.randn_like(p))
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return model.eval().requires_grad_(False)


def random_emote(sizes: EmoteSizes | None = None, seed: int = 0) -> EmoteModel:
    """Every parameter redrawn, the norms' affine terms too (default init leaves them the identity)."""
    return _randomise(EmoteModel(sizes or tiny()), seed, redraw=True)


def random_audio2pose(seed: int = 0) -> Audio2Pose:
    torch.manual_seed(seed)
    return _randomise(Audio2Pose(), seed, redraw=False)


def lightning_state(model: EmoteModel, flame: bool = True) -> dict[str, torch.Tensor]:
    """The state dict as the released checkpoint stores it: the network, the positional
    convolution's weight norm under the older ``weight_g`` / ``weight_v`` names, and FLAME's buffers."""
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("pos_conv_embed.conv.parametrizations.weight.original0", "pos_conv_embed.conv.weight_g")
        key = key.replace("pos_conv_embed.conv.parametrizations.weight.original1", "pos_conv_embed.conv.weight_v")
        state[key] = value
    if flame:
        for name, shape in FLAME_BUFFERS.items():
            state[f"sequence_decoder.flame.{name}"] = torch.zeros(shape)
    return state


def write_emote_folder(folder: Path, model: EmoteModel, config_objects: bool = False) -> Path:
    """``folder/cfg.yaml`` and ``folder/checkpoints/last.ckpt`` for ``model``. ``config_objects``:
    the checkpoint's ``hyper_parameters`` hold an OmegaConf DictConfig, as Lightning saves them
    (needs omegaconf); else a plain dict."""
    cfg = sizes_to_cfg(model.sizes)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "cfg.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    hyper = {"cfg": cfg}
    if config_objects:
        from omegaconf import OmegaConf

        hyper = {"cfg": OmegaConf.create(cfg)}
    torch.save({"epoch": 41, "global_step": 123456, "pytorch-lightning_version": "1.8.6",
                "state_dict": lightning_state(model), "hyper_parameters": hyper}, folder / "checkpoints" / "last.ckpt")
    return folder


def write_sadtalker(path: Path, model: Audio2Pose) -> Path:
    """``model``'s weights as SadTalker publishes them: a combined ``.safetensors`` (every network of
    SadTalker; here audio2pose and a stand-in of another) or the legacy ``.pth`` (by ``path``'s name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name in COMBINED or path.suffix == ".safetensors":
        from safetensors.torch import save_file

        tensors = {f"audio2pose.{k}": v.contiguous() for k, v in model.state_dict().items()}
        tensors["audio2exp.netG.fc.weight"] = torch.zeros(3, 2)
        save_file(tensors, str(path))
    else:
        if path.name != LEGACY and path.suffix != ".pth":
            raise ValueError(f"{path}: name it {LEGACY} or a .safetensors")
        torch.save({"model": model.state_dict(), "epoch": 140}, path)
    return path


def write_random_assets(root: Path, published: bool = True, seed: int = 0) -> Path:
    """``root/EMOTE_v2/`` and ``root/SadTalker_V0.0.2_256.safetensors`` with random weights, at the
    released sizes (``published``) or the tiny test ones: what ``being bench`` and the benchmarks
    run when the real weights are not on the machine (speed does not depend on the values)."""
    sizes = EmoteSizes() if published else tiny()
    write_emote_folder(root / "EMOTE_v2", random_emote(sizes, seed))
    write_sadtalker(root / COMBINED[0], random_audio2pose(seed + 1))
    return root


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="write random-weight EMOTE and PoseVAE files in the published layouts")
    parser.add_argument("root", type=Path)
    parser.add_argument("--tiny", action="store_true", help="the tiny test sizes, not the released ones")
    args = parser.parse_args()
    print(write_random_assets(args.root, published=not args.tiny))

"""LPIPS, the learned perceptual image distance of Zhang et al. (CVPR 2018), version 0.1.

Both images go through an ImageNet backbone (AlexNet by default, or VGG-16) after the v0.1 input
scaling; at five ReLU outputs the features are unit-normalised over channels, their squared
difference is weighted per channel by a learned 1x1 linear head, averaged over space, and the
five layers are summed. The network is our own; the weights are two existing files, never
downloaded:

* the backbone: torchvision's ImageNet checkpoint (``alexnet-owt-7be5be79.pth``,
  ``vgg16-397923af.pth``), whose ``features.N.weight`` / ``features.N.bias`` keys load as is
  (its ``classifier.*`` keys are not used);
* the linear heads: the ``lpips`` package's ``weights/v0.1/alex.pth`` (``vgg.pth``), keys
  ``lin0.model.1.weight`` ... ``lin4.model.1.weight`` of shape ``[1, C, 1, 1]``.

:func:`load_lpips` looks for both in ``weights_dir``, else in ``$BEING_LPIPS_DIR`` when it is set,
else for the backbone in the torch hub cache and the heads in the installed ``lpips`` package
(``weights.find_weights``); see docs/metrics.md.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..weights import MissingWeights, find_weights, safe_torch_load

ENV_LPIPS_DIR = "BEING_LPIPS_DIR"
#: LPIPS v0.1 input scaling, applied after mapping [0, 1] to [-1, 1]: (x - shift) / scale per RGB channel.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: Added to the channel norm before dividing, so an all-zero feature vector stays zero.
NORM_EPS = 1e-10


@dataclass(frozen=True)
class _Backbone:
    """A torchvision ``features`` trunk: conv ``(out, kernel, stride, pad)`` + ReLU, or pool ``(kernel, stride)``."""

    file: str  # torchvision's checkpoint name in the hub cache
    url: str
    layers: tuple[tuple[str, tuple[int, ...]], ...]
    taps: tuple[int, ...]  # indices in ``features`` whose (ReLU) outputs LPIPS compares
    min_size: int  # smallest H and W for which every tapped layer is at least 1x1


def _vgg16_layers() -> tuple[tuple[str, tuple[int, ...]], ...]:
    layers: list[tuple[str, tuple[int, ...]]] = []
    for block, (width, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if block:
            layers.append(("pool", (2, 2)))
        layers += [("conv", (width, 3, 1, 1))] * convs
    return tuple(layers)


_BACKBONES = {
    "alex": _Backbone(
        file="alexnet-owt-7be5be79.pth",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        layers=(("conv", (64, 11, 4, 2)), ("pool", (3, 2)), ("conv", (192, 5, 1, 2)), ("pool", (3, 2)),
                ("conv", (384, 3, 1, 1)), ("conv", (256, 3, 1, 1)), ("conv", (256, 3, 1, 1))),
        taps=(1, 4, 7, 9, 11),
        min_size=31,
    ),
    "vgg": _Backbone(
        file="vgg16-397923af.pth",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        layers=_vgg16_layers(),
        taps=(3, 8, 15, 22, 29),
        min_size=16,
    ),
}


def _backbone(net: str) -> _Backbone:
    if net not in _BACKBONES:
        raise ValueError(f"unknown LPIPS network {net!r}; known: {', '.join(_BACKBONES)}")
    return _BACKBONES[net]


def _build_features(spec: _Backbone) -> tuple[nn.Sequential, list[int]]:
    """The trunk with torchvision's module indices (so checkpoint keys match), cut after the last
    tap, and the channel count at each tap."""
    modules: list[nn.Module] = []
    channels, widths = 3, {}
    for kind, args in spec.layers:
        if kind == "conv":
            out, kernel, stride, pad = args
            modules += [nn.Conv2d(channels, out, kernel, stride=stride, padding=pad), nn.ReLU()]
            channels = out
            widths[len(modules) - 1] = out  # index of this conv's ReLU
        else:
            modules.append(nn.MaxPool2d(args[0], stride=args[1]))
    return nn.Sequential(*modules[: spec.taps[-1] + 1]), [widths[t] for t in spec.taps]


class LPIPS(nn.Module):
    """The LPIPS v0.1 network. Built with random weights; :func:`load_lpips` gives the real ones."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        spec = _backbone(net)
        self.net = net
        self.min_size = spec.min_size
        self.features, widths = _build_features(spec)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in widths)
        self._taps = frozenset(spec.taps)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def expected_keys(self) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
        """Key -> shape of the backbone checkpoint (torchvision names) and of the heads file (lpips names)."""
        backbone = {f"features.{k}": tuple(v.shape) for k, v in self.features.state_dict().items()}
        heads = {f"lin{n}.model.1.weight": tuple(lin.weight.shape) for n, lin in enumerate(self.lins)}
        return backbone, heads

    def load_weights(self, backbone: Mapping[str, Tensor], heads: Mapping[str, Tensor]) -> None:
        """Copy checked state dicts (as :meth:`expected_keys` names them) into the network."""
        own = {k: v for k, v in backbone.items() if k.startswith("features.")}
        own.update({f"lins.{n}.weight": heads[f"lin{n}.model.1.weight"] for n in range(len(self.lins))})
        self.load_state_dict(own, strict=True)

    def forward(self, img: Tensor, ref: Tensor) -> Tensor:
        """img, ref: ``[B, H, W, 3]`` RGB in ``[0, 1]`` -> ``[B]`` distance (0 for identical images)."""
        if img.shape != ref.shape or img.ndim != 4 or img.shape[-1] != 3:
            raise ValueError(f"LPIPS takes two [B, H, W, 3] images of one shape, got {tuple(img.shape)} "
                             f"and {tuple(ref.shape)}")
        if min(img.shape[1:3]) < self.min_size:
            raise ValueError(f"LPIPS ({self.net}) needs images of at least {self.min_size}x{self.min_size}, "
                             f"got {img.shape[1]}x{img.shape[2]}")
        batch = img.shape[0]
        # Both images in one pass through the trunk.
        x = torch.cat([img, ref]).permute(0, 3, 1, 2).to(self.shift.dtype)
        x = (2.0 * x - 1.0 - self.shift) / self.scale
        total = x.new_zeros(batch)
        lins = iter(self.lins)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._taps:
                # vector_norm's gradient is 0 (not nan) at an all-zero feature vector.
                unit = x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + NORM_EPS)
                diff = (unit[:batch] - unit[batch:]).square()
                total = total + next(lins)(diff).mean(dim=(1, 2, 3))
        return total


# --------------------------------------------------------------------------------------------
# Finding and reading the weight files
# --------------------------------------------------------------------------------------------


def _hub_checkpoints() -> Path:
    """Where torchvision caches checkpoints: ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _lpips_package_dir() -> Path | None:
    """``weights/v0.1`` of an installed ``lpips`` package, found without importing it (it imports torchvision)."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1"


def _get_weights_hint(net: str) -> str:
    """Where the two files come from; ``find_weights`` adds where to put them."""
    spec = _backbone(net)
    return (f"nothing is downloaded automatically: save {spec.url} (torchvision's ImageNet checkpoint) in "
            f"{_hub_checkpoints()} and run 'pip install lpips' (it ships weights/v0.1/{net}.pth)")


def _locate(net: str, weights_dir: str | Path | None) -> tuple[Path, Path]:
    """(backbone checkpoint, linear heads file), or :class:`MissingWeights` saying where it looked:
    both in ``weights_dir`` or ``$BEING_LPIPS_DIR`` when given, else each in its own cache."""
    spec = _backbone(net)
    names = [spec.file, f"{net}.pth"]
    name, hint = f"LPIPS ({net}) weights", _get_weights_hint(net)
    if weights_dir is not None or os.environ.get(ENV_LPIPS_DIR):
        folder = find_weights(name, explicit=weights_dir, env_var=ENV_LPIPS_DIR, hub_repo=None, files=names, hint=hint)
        return folder / names[0], folder / names[1]
    found, missing = [], []
    for file, cache in zip(names, (_hub_checkpoints(), _lpips_package_dir())):
        try:
            found.append(find_weights(name, explicit=None, env_var=None, hub_repo=None, files=[file], hint=hint,
                                      cache_dirs=[cache] if cache else []) / file)
        except MissingWeights as exc:
            missing.append(exc.detail if cache else f"no {file} (the lpips package is not installed)")
    if missing:
        raise MissingWeights(f"{name} not found (${ENV_LPIPS_DIR} unset): {'; '.join(missing)}",
                             hint=f"{hint}; or put {' and '.join(names)} in one directory and set {ENV_LPIPS_DIR} to it")
    return found[0], found[1]


def _read_state(path: Path, expected: dict[str, tuple[int, ...]], ignored_prefix: str | None,
                what: str) -> dict[str, Tensor]:
    """Load a state dict without pickle code execution (``safe_torch_load``) and check its keys and
    shapes exactly."""
    state = safe_torch_load(path, what=what, hint="download the file again")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(f"{path}: not a {what} (expected a state dict of tensors)", hint="download the file again")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and not (ignored_prefix and k.startswith(ignored_prefix))]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {expected[k]})" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    problems = [f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    if problems:
        raise InputError(f"{path}: not a {what}: {'; '.join(problems)}", hint="download the file again")
    return dict(state)


def load_lpips(net: str = "alex", *, weights_dir: str | Path | None = None,
               device: str | torch.device = "cpu") -> LPIPS:
    """The LPIPS v0.1 network ``net`` ("alex" or "vgg") with its weights, in eval mode, frozen
    (gradients still flow to the images), on ``device``.

    ``weights_dir``: a folder holding both files (e.g. ``alexnet-owt-7be5be79.pth`` and
    ``alex.pth``); without it, the folder in ``$BEING_LPIPS_DIR`` when that is set, else the torch
    hub cache (backbone) and the installed ``lpips`` package (heads). Raises :class:`MissingWeights` when a file is not
    found, ``InputError`` when one has other keys or shapes than expected.
    """
    model = LPIPS(net)
    backbone_path, heads_path = _locate(net, weights_dir)
    want_backbone, want_heads = model.expected_keys()
    backbone = _read_state(backbone_path, want_backbone, "classifier.", f"torchvision {net} checkpoint")
    heads = _read_state(heads_path, want_heads, None, f"LPIPS v0.1 {net} linear-layer file")
    model.load_weights(backbone, heads)
    return model.eval().requires_grad_(False).to(device)


def lpips_available(net: str = "alex") -> str | None:
    """None when the weights of ``net`` are found locally (env var or caches), else one line
    saying what is missing, what to download and where to put it."""
    try:
        _locate(net, None)
    except MissingWeights as exc:
        return exc.one_line()
    return None

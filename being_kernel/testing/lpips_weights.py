"""Random LPIPS weights in the real file formats, for tests that need an LPIPS network without
the real (non-shipped) weights: torchvision's AlexNet state-dict keys and the lpips v0.1 heads."""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch

#: torchvision's AlexNet checkpoint name, as LPIPS looks it up
ALEX_FILE = "alexnet-owt-7be5be79.pth"
#: torchvision's ``features`` index -> (out channels, in channels, kernel) of AlexNet's convolutions
ALEX_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
#: channels of the five tapped layers (the widths of the lpips heads)
ALEX_TAP_WIDTHS = (64, 192, 384, 256, 256)


def write_alex_weights(folder: Path, seed: int = 0, heads: list[torch.Tensor] | None = None) -> Path:
    """Random AlexNet trunk (torchvision's state-dict keys, plus ``classifier.*`` keys that LPIPS
    ignores, kept small here) and random non-negative v0.1 heads (the lpips file's keys), in
    ``folder``; point ``weights_dir`` or ``$BEING_LPIPS_DIR`` at it."""
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    trunk: OrderedDict[str, torch.Tensor] = OrderedDict()
    for idx, (out, cin, k) in ALEX_CONVS.items():
        trunk[f"features.{idx}.weight"] = torch.randn(out, cin, k, k, generator=g) * math.sqrt(2 / (cin * k * k))
        trunk[f"features.{idx}.bias"] = 0.1 * torch.randn(out, generator=g)
    trunk["classifier.1.weight"] = torch.zeros(4, 4)
    trunk["classifier.1.bias"] = torch.zeros(4)
    torch.save(trunk, folder / ALEX_FILE)
    if heads is None:
        heads = [torch.rand(1, c, 1, 1, generator=g) for c in ALEX_TAP_WIDTHS]
    torch.save(OrderedDict((f"lin{n}.model.1.weight", w) for n, w in enumerate(heads)), folder / "alex.pth")
    return folder

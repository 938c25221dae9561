"""A random restorer for tests and speed measurements (no training): ``random_restorer(DIR)``.

The network has its trained layout and random weights (its last layer too, so it changes the band);
the base is ``static`` over a random scene: a noise plate and a torso (an opaque lower half with a
neck column) below a neck at 55 % of the height.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from .asset import save_restorer
from .network import RestorerNet


def random_restorer(directory: str | Path, size: int = 64, width: int = 8, levels: int = 3, band: tuple[int, int] = (4, 2),
                    crop: tuple[int, int] | None = None, scale: float = 1.0, seed: int = 0) -> Path:
    """Write a random restorer for ``size`` x ``size`` frames into ``directory`` (created); returns it."""
    from being_kernel.datasets import write_scene

    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = RestorerNet(width, levels)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    plate = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    torso = np.zeros((size, size, 4), dtype=np.uint8)
    torso[int(0.7 * size):, :, :3] = (40, 60, 140)
    torso[int(0.5 * size):, int(0.4 * size):int(0.6 * size), :3] = (200, 150, 120)
    torso[..., 3] = (torso[..., :3].max(-1) > 0) * 255
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        scene = write_scene(Path(tmp) / "scene", plate, torso, (0.5 * size, 0.55 * size), 4.0 * size, source="random")
        save_restorer(net, directory, scene,
                      {"size": [size, size], "band": list(band), "scale": scale, "crop": list(crop or (size // 2, size // 2)),
                       "base": "static", "base_config": {}, "source": "random", "name": directory.name})
    return directory

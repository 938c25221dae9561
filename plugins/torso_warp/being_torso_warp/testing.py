"""A random warp torso for tests and speed measurements (no training): ``random_torso(DIR)``.

Every tensor has its trained shape and a random value (the warp and colour MLPs' last layers too,
so the warp is not the identity); the camera is the full-frame synthetic set's at that size.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from .anchors import Anchors
from .asset import save_torso
from .field import POSE_DIM, TorsoField
from .model import WarpModel
from .pose import TorsoCamera


def random_torso(directory: str | Path, size: int = 64, features: int = 8, hidden: int = 32, anchors: int = 8,
                 seed: int = 0) -> Path:
    """Write a random torso of ``size`` x ``size`` into ``directory`` (created); returns it."""
    from being_kernel.datasets import full_frame_camera

    g = torch.Generator().manual_seed(seed)
    cam = full_frame_camera(size)
    root = torch.tensor([0.0, -0.13, -0.01])
    R = cam.R[0]
    c = R @ root + cam.t[0]
    camera = TorsoCamera(cam.K[0], (size, size), R, c, root)
    field = TorsoField((size, size), features, hidden, 4, 2, 0.1)
    with torch.no_grad():
        for p in field.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        field.texture[:3] = torch.rand(field.texture[:3].shape, generator=g)
    ys, xs = torch.meshgrid(torch.linspace(0.55, 0.95, anchors), torch.linspace(0.1, 0.9, anchors), indexing="ij")
    px = torch.stack([xs.reshape(-1) * size, ys.reshape(-1) * size], -1)
    rest = torch.cat([px, torch.ones_like(px[:, :1])], -1) @ torch.linalg.inv(camera.K).T * c[2]
    weights = torch.rand(len(rest), generator=g)
    box = (0, size // 2, size, size)
    plate = torch.rand(size, size, 3, generator=g)
    anchors = Anchors(rest, camera.project(rest), weights, torch.full((len(rest),), 0.01))
    model = WarpModel(field, anchors, camera, box, plate, None, copy.deepcopy(anchors))
    model.pose_lo.fill_(-0.3)
    model.pose_hi.fill_(0.3)
    model.baked = field.bake(field.pose_code(torch.zeros(1, POSE_DIM)))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_torso(model, directory, {"head_model": "demo", "source": "random", "name": directory.name})
    return directory

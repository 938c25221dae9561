"""An untrained flash avatar for the demo head with a non-zero deformation network (its output
layer drawn at random, so the network moves, turns and scales the Gaussians): what the renderer
tests and the conformance suite render without training first."""

from __future__ import annotations

from pathlib import Path

import torch

from being_avatar_flash.avatar import FlashAvatar, save_avatar
from being_avatar_flash.network import HIDDEN, LAYERS, PE_FREQUENCIES, DeformNet, condition_width
from being_avatar_flash.posing import SurfacePoints
from being_avatar_flash.train.gaussians import FlashGaussians
from being_avatar_flash.uv import head_texels
from being_kernel.api import Motion
from being_kernel.head import FlameModel, build_demo_head
from being_kernel.render import framed_camera


def random_avatar(directory: Path, uv_size: int = 48, seed: int = 0, out_scale: float = 0.02) -> Path:
    head = build_demo_head()
    g = torch.Generator().manual_seed(seed)
    face_ids, bary = head_texels(head, uv_size)
    model = FlameModel(head)
    with torch.no_grad():
        rest = model(Motion.zeros(1, 0, space=head.motion_space)).vertices[0]
    points = SurfacePoints(torch.from_numpy(face_ids), torch.from_numpy(bary), model.faces)
    canonical = points.on(rest)
    gs = FlashGaussians.start(canonical, sh_degree=1)
    gs.params["opacity_logit"].data.fill_(3.0)
    gs.params["sh_dc"].data.copy_(torch.randn(gs.params["sh_dc"].shape, generator=g))
    net = DeformNet(condition_width(head.n_expression), generator=g)
    with torch.no_grad():
        net.out.weight.copy_(out_scale * torch.randn(net.out.weight.shape, generator=g))
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    root = model(Motion.zeros(1, 0, space=head.motion_space)).joints[0, 0].double()
    t = -R @ torch.tensor([0.0, -0.02, float(root[2]) + 0.62], dtype=torch.float64)
    avatar = FlashAvatar(name="random", head_model="demo",
                         gaussians={"face_ids": points.face_ids, "bary": points.bary, "canonical": canonical,
                                    **gs.export()},
                         network={"n_expression": head.n_expression, "frequencies": PE_FREQUENCIES, "hidden": HIDDEN,
                                  "layers": LAYERS},
                         deform={k: v.detach() for k, v in net.state_dict().items()},
                         camera=framed_camera(R, t, root, 64, 64), uv_size=uv_size, motion_space=head.motion_space)
    return save_avatar(directory, avatar)

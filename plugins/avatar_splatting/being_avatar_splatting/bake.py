"""Baking the demo avatar: fit the placed Gaussians' colours, opacities and sizes to reference
renders of the procedural head's textured mesh (the kernel's mesh renderer), over a spread of
head poses and expressions.

Placed Gaussians (one texture sample each, one size) blur small features: irises, lash lines,
the lip edge, the tongue. A short photometric fit against the mesh (L1 on premultiplied RGB and
alpha, Adam, the project's differentiable CPU rasterizer) fixes that. Its result is shipped as
``data/demo_bake.safetensors`` and applied by ``demo.py``; regenerate it with
``python -m being_avatar_splatting.bake`` whenever the demo head or the placement changes.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

BAKE_FILE = Path(__file__).resolve().parent / "data" / "demo_bake.safetensors"


def _targets(size: int) -> tuple[list, object]:
    """(motion, reference rgb [1,H,W,3], alpha [1,H,W,1]) for poses x expressions, and the camera."""
    from being_kernel.api import Cameras, Motion
    from being_kernel.head import FlameModel, build_demo_head, expression_vector
    from being_kernel.render import camera_for_size, render_mesh

    from .demo import demo_camera

    data = build_demo_head()
    model = FlameModel(data)
    R, t, K = camera_for_size(demo_camera(size, size), size, size)
    cams = Cameras(R[None], t[None], K[None], size, size)
    faces, uv = torch.from_numpy(data.faces), torch.from_numpy(data.uv_coords).float()
    uv_faces, texture = torch.from_numpy(data.uv_faces), torch.from_numpy(data.texture).float()
    faces_ = [{}, {"lip_corner_up_L": 1.0, "lip_corner_up_R": 1.0}, {"lip_pucker": 1.0},
              {"eye_blink_L": 1.0, "eye_blink_R": 1.0}, {"brow_raise_L": 1.0, "brow_raise_R": 1.0}]
    out = []
    for yaw in (-35, -15, 0, 15, 35):
        for pitch in (-12, 0, 12):
            for k, (jaw, weights) in enumerate([(0.0, {}), (0.22, {}), (0.1, faces_[(yaw + pitch) % 5])]):
                m = Motion.zeros(1, data.n_expression, space=data.motion_space)
                m.global_rot[0, 0], m.global_rot[0, 1], m.jaw[0, 0] = math.radians(pitch), math.radians(yaw), jaw
                if weights:
                    m.expression[0] = torch.from_numpy(expression_vector(**weights))
                with torch.no_grad():
                    v = model(m).vertices
                    ref = render_mesh(v, faces, cams, uv_coords=uv, uv_faces=uv_faces, texture=texture)
                out.append((m, ref.rgb, ref.alpha))
    return out, cams


def bake(size: int = 320, steps: int = 400, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fit and return {"color" [N,3], "opacity" [N], "log_scale" [N,3] (added to log scale)}."""
    from being_kernel.head import FlameModel, build_demo_head
    from being_kernel.render import rasterize

    from .demo import _placed_gaussians

    targets, cams = _targets(size)
    data = build_demo_head()
    model = FlameModel(data)
    g = _placed_gaussians()
    color = torch.logit(g.color.clamp(0.02, 0.98)).requires_grad_(True)
    opacity = torch.full_like(g.opacity, math.log(0.95 / 0.05)).requires_grad_(True)
    log_scale = torch.zeros_like(g.scale).requires_grad_(True)
    opt = torch.optim.Adam([{"params": [color, opacity], "lr": 0.05}, {"params": [log_scale], "lr": 0.01}])
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        posed = [g.pose(model(m).vertices) for m, _, _ in targets]
    t0 = time.time()
    for step in range(steps):
        k = int(torch.randint(len(targets), (1,), generator=rng))
        _, ref_rgb, ref_alpha = targets[k]
        means, quats, scales = posed[k]
        img = rasterize(means[0], quats[0], scales[0] * log_scale.exp(), torch.sigmoid(opacity), torch.sigmoid(color),
                        cams, backend="cpu")
        loss = (img.rgb - ref_rgb).abs().mean() + (img.alpha - ref_alpha).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            log_scale.clamp_(-1.5, 0.3)
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  L1 {loss.item():.4f}  {time.time() - t0:.0f} s", flush=True)
    return {"color": torch.sigmoid(color).detach(), "opacity": torch.sigmoid(opacity).detach(),
            "log_scale": log_scale.detach()}


def main() -> None:
    from safetensors.torch import save_file

    p = argparse.ArgumentParser(description="Bake the demo avatar (writes data/demo_bake.safetensors).")
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--steps", type=int, default=400)
    args = p.parse_args()
    torch.manual_seed(0)
    result = bake(args.size, args.steps)
    BAKE_FILE.parent.mkdir(exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in result.items()}, str(BAKE_FILE))
    print("wrote", BAKE_FILE)


if __name__ == "__main__":
    main()

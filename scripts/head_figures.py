"""Render the procedural demo head with the mesh reference renderer and with Gaussians placed on
its surface, side by side, for named expressions; write docs/images/demo_head_mesh_vs_gaussians.png
and print the PSNR between the two renderings of each pose.

    python scripts/head_figures.py [--gaussians 80000] [--size 256] [--out docs/images]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from being_kernel.head.demo_head import build_demo_head, expression_vector, portrait_camera
from being_kernel.head.flame import FlameModel
from being_kernel.media import write_png
from being_kernel.render.gaussians import rasterize
from being_kernel.render.mesh import render_mesh
from being_kernel.render.surface import MeshGaussians
from being_kernel.types import DEMO_HEAD, Motion

BACKGROUND = torch.tensor([0.24, 0.29, 0.35])


def poses(n_expression: int) -> dict[str, Motion]:
    """The poses of the figure, by name."""
    def motion(**weights: float) -> Motion:
        m = Motion.zeros(1, n_expression, space=DEMO_HEAD)
        if weights:
            m.expression[0] = torch.from_numpy(expression_vector(**weights))
        return m

    out = {"neutral": motion(), "jaw open": motion(), "smile": motion(lip_corner_up_L=1.0, lip_corner_up_R=1.0),
           "pucker": motion(lip_pucker=1.0), "eyes closed": motion(eye_blink_L=1.0, eye_blink_R=1.0),
           "brows raised": motion(brow_raise_L=1.0, brow_raise_R=1.0), "head turned 30°": motion()}
    out["jaw open"].jaw[0, 0] = 0.3
    out["head turned 30°"].global_rot[0, 1] = math.radians(30)
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=80000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()

    data = build_demo_head()
    model = FlameModel(data)
    faces = torch.from_numpy(data.faces)
    uv, uv_faces = torch.from_numpy(data.uv_coords).float(), torch.from_numpy(data.uv_faces)
    texture = torch.from_numpy(data.texture).float()
    gaussians = MeshGaussians.from_textured_mesh(torch.from_numpy(data.v_template).float(), faces, uv, uv_faces,
                                                 texture, args.gaussians, seed=0)
    cams = portrait_camera(args.size)
    mesh_row, splat_row = [], []
    print("| pose | PSNR Gaussians vs mesh (dB) |\n| --- | --- |")
    for name, motion in poses(data.n_expression).items():
        with torch.no_grad():
            vertices = model(motion).vertices
            mesh = render_mesh(vertices, faces, cams, uv_coords=uv, uv_faces=uv_faces, texture=texture,
                               background=BACKGROUND).rgb[0]
            means, quats, scales = gaussians.pose(vertices)
            splat = rasterize(means[0], quats[0], scales[0], gaussians.opacity, gaussians.color, cams,
                              background=BACKGROUND, backend="cpu").rgb[0]
        print(f"| {name} | {psnr(mesh, splat):.1f} |")
        mesh_row.append(mesh)
        splat_row.append(splat)
    args.out.mkdir(parents=True, exist_ok=True)
    sheet = torch.cat([torch.cat(mesh_row, 1), torch.cat(splat_row, 1)], 0)
    print("wrote", write_png(args.out / "demo_head_mesh_vs_gaussians.png", sheet))


if __name__ == "__main__":
    main()

"""The project's renderer (backend="cpu", run here on CUDA tensors) against gsplat on the GPU:
images on random and head-like scenes, gradients, spherical harmonics. Needs CUDA and gsplat;
prints the figures it checks (run with ``pytest -s``)."""

from __future__ import annotations

import pytest
import torch

from being_kernel.cameras import Cameras
from being_kernel.render.gaussians import ellipsoid_shell_scene, eval_sh, rasterize, shell_camera

pytestmark = pytest.mark.gpu
gsplat = pytest.importorskip("gsplat", reason="needs gsplat (pip install gsplat)")

DEV = "cuda"
F = ("means", "quats", "scales", "opacities", "colors")


def random_scene(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sc = {"means": torch.randn(n, 3, generator=g) * torch.tensor([0.5, 0.4, 0.4]),
          "quats": torch.randn(n, 4, generator=g),
          "scales": torch.exp(torch.randn(n, 3, generator=g) * 0.6) * 0.02,
          "opacities": torch.rand(n, generator=g) * 0.9 + 0.1,
          "colors": torch.rand(n, 3, generator=g)}
    sc["opacities"][: n // 20] = 1.0  # some hit the 0.999 cap
    return {k: v.to(DEV) for k, v in sc.items()}


def demo_head_scene() -> tuple[dict[str, torch.Tensor], Cameras]:
    """80k Gaussians on the procedural demo head, skinned with the jaw open, a smile and a turn."""
    from being_kernel.head.demo_head import build_demo_head, expression_vector, portrait_camera
    from being_kernel.head.flame import FlameModel
    from being_kernel.render.surface import MeshGaussians
    from being_kernel.types import DEMO_HEAD, Motion

    data = build_demo_head()
    g = MeshGaussians.from_textured_mesh(torch.from_numpy(data.v_template).float(), torch.from_numpy(data.faces),
                                         torch.from_numpy(data.uv_coords).float(), torch.from_numpy(data.uv_faces),
                                         torch.from_numpy(data.texture).float(), 80_000, seed=0)
    m = Motion.zeros(1, data.n_expression, space=DEMO_HEAD)
    m.expression[0] = torch.from_numpy(expression_vector(lip_corner_up_L=0.7, lip_corner_up_R=0.7))
    m.jaw[0, 0], m.global_rot[0, 1] = 0.2, 0.3
    means, quats, scales = g.pose(FlameModel(data)(m).vertices.detach())
    sc = {"means": means[0], "quats": quats[0], "scales": scales[0], "opacities": g.opacity, "colors": g.color}
    return {k: v.to(DEV) for k, v in sc.items()}, portrait_camera(512, DEV)


def random_cameras(b: int, seed: int, W: int, H: int) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    Rs, ts, Ks = [], [], []
    for _ in range(b):
        aa = torch.randn(3, generator=g) * 0.2
        Rs.append(torch.linalg.matrix_exp(torch.tensor([[0, -aa[2], aa[1]], [aa[2], 0, -aa[0]], [-aa[1], aa[0], 0]])))
        ts.append(torch.tensor([0.0, 0.0, 2.0]) + 0.1 * torch.randn(3, generator=g))
        f = 0.9 * W
        Ks.append(torch.tensor([[f, 0, W / 2 + 0.3], [0, f, H / 2 - 0.2], [0, 0, 1]]))
    return Cameras(torch.stack(Rs), torch.stack(ts), torch.stack(Ks), W, H).to(DEV)


def compare(name: str, a, b) -> dict[str, float]:
    d_rgb = (a.rgb - b.rgb).abs()
    d_alpha = (a.alpha - b.alpha).abs()
    both = (a.alpha > 0.5) & (b.alpha > 0.5)
    d_depth = ((a.depth - b.depth).abs() / b.depth.clamp_min(1e-6))[both]
    fig = {"rgb_mean": d_rgb.mean().item(), "rgb_max": d_rgb.max().item(), "alpha_mean": d_alpha.mean().item(),
           "alpha_max": d_alpha.max().item(), "depth_rel_mean": d_depth.mean().item() if d_depth.numel() else 0.0,
           "coverage": b.alpha.mean().item()}
    print(f"\n[{name}] " + " ".join(f"{k}={v:.3g}" for k, v in fig.items()))
    return fig


def check(fig: dict[str, float]) -> None:
    assert fig["rgb_mean"] <= 2e-3 and fig["rgb_max"] <= 2e-2, fig
    assert fig["alpha_mean"] <= 2e-3 and fig["alpha_max"] <= 2e-2, fig
    assert fig["depth_rel_mean"] <= 1e-3, fig
    assert fig["coverage"] > 0.05, fig  # the scene is really in view


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scenes_match_gsplat(seed: int) -> None:
    sc = random_scene(3000, seed)
    cams = random_cameras(2, seed, 320, 240)
    bg = torch.tensor([[0.1, 0.2, 0.3], [0.8, 0.7, 0.6]], device=DEV)
    ours = rasterize(**sc, cameras=cams, background=bg, backend="cpu")
    ref = rasterize(**sc, cameras=cams, background=bg, backend="gsplat")
    assert ref.backend == "gsplat" and ours.backend == "cpu"
    check(compare(f"random seed={seed}", ours, ref))


def test_per_frame_gaussians_match_gsplat() -> None:
    sc = random_scene(2000, 5)
    frames = {k: torch.stack([v, v]) for k, v in sc.items()}
    frames["means"] = frames["means"] + torch.tensor([[[0.0, 0.0, 0.0]], [[0.1, -0.05, 0.2]]], device=DEV)
    cams = random_cameras(2, 5, 256, 256)
    check(compare("per-frame", rasterize(**frames, cameras=cams, backend="cpu"),
                  rasterize(**frames, cameras=cams, backend="gsplat")))


@pytest.mark.parametrize("scene", ["shell", "demo head"])
def test_head_scenes_match_gsplat(scene: str) -> None:
    if scene == "shell":
        sc, cams = ellipsoid_shell_scene(20000, seed=3, device=DEV), shell_camera(512, 512, device=DEV)
    else:
        sc, cams = demo_head_scene()
    bg = torch.tensor([0.2, 0.25, 0.3], device=DEV)
    check(compare(f"{scene} 512x512", rasterize(**sc, cameras=cams, background=bg, backend="cpu"),
                  rasterize(**sc, cameras=cams, background=bg, backend="gsplat")))


@pytest.mark.parametrize("scene", ["random", "shell", "demo head"])
def test_gradients_match_gsplat(scene: str) -> None:
    if scene == "random":
        sc, cams = random_scene(2000, 7), random_cameras(2, 7, 256, 192)
    elif scene == "shell":
        sc, cams = ellipsoid_shell_scene(20000, seed=4, device=DEV), shell_camera(512, 512, device=DEV)
    else:
        sc, cams = demo_head_scene()
    g = torch.Generator(device=DEV).manual_seed(0)
    weights = torch.rand(len(cams), cams.height, cams.width, 3, generator=g, device=DEV)
    grads = {}
    for backend in ("cpu", "gsplat"):
        params = {k: v.clone().requires_grad_(True) for k, v in sc.items()}
        out = rasterize(**params, cameras=cams, backend=backend)
        (out.rgb * weights).sum().backward()
        grads[backend] = {k: params[k].grad.flatten() for k in F}
    cos = {k: torch.nn.functional.cosine_similarity(grads["cpu"][k], grads["gsplat"][k], dim=0).item() for k in F}
    print(f"\n[gradients {scene}] " + " ".join(f"{k}={v:.5f}" for k, v in cos.items()))
    for k in F:
        assert cos[k] > 0.99, (k, cos)


def test_eval_sh_matches_gsplat() -> None:
    from gsplat import spherical_harmonics

    g = torch.Generator(device=DEV).manual_seed(1)
    dirs = torch.randn(1000, 3, generator=g, device=DEV)
    for degree in range(4):
        sh = torch.randn(1000, (degree + 1) ** 2, 3, generator=g, device=DEV) * 0.3
        ref = torch.clamp_min(spherical_harmonics(degree, dirs, sh) + 0.5, 0.0)
        diff = (eval_sh(sh, dirs) - ref).abs().max().item()
        print(f"\n[eval_sh degree {degree}] max diff vs gsplat {diff:.3g}")
        assert diff < 1e-5


def test_auto_backend_picks_gsplat_on_cuda() -> None:
    sc = random_scene(100, 0)
    assert rasterize(**sc, cameras=random_cameras(1, 0, 64, 64)).backend == "gsplat"

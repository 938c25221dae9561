"""Gaussian rasterization on CPU: the renderer against an independent brute-force reference,
analytic cases, batching, gradients, spherical harmonics, the API's errors."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import torch

from being_kernel.render import gaussians_cpu
from being_kernel.cameras import Cameras
from being_kernel.render.gaussians import (SH_C0, GaussianImages, ellipsoid_shell_scene, eval_sh, rasterize, sh_basis,
                                           shell_camera, view_dirs)

D = torch.float64


# --------------------------------------------------------------------------------------------
# brute-force reference: float64, one pixel at a time, every Gaussian in depth order, with the
# formulas of the 3DGS paper and gsplat's constants written out (see docs/rendering.md)


def reference_render(means, quats, scales, opacities, colors, R, t, K, W, H, background=None, near=0.01, far=1e3):
    """One image. Arrays are numpy float64: means [N,3], quats [N,4] wxyz, scales [N,3], opacities [N],
    colors [N,3], R [3,3], t [3], K [3,3]. Returns rgb [H,W,3], alpha [H,W], depth [H,W] and
    the mask [H,W] of pixels that stopped early (transmittance would have fallen to <= 1e-4)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    splats = []
    for i in range(len(means)):
        x, y, z = R @ means[i] + t
        if z < near or z > far or opacities[i] < 1 / 255:
            continue
        w, a, b, c = quats[i] / np.linalg.norm(quats[i])
        rot = np.array([[1 - 2 * (b * b + c * c), 2 * (a * b - w * c), 2 * (a * c + w * b)],
                        [2 * (a * b + w * c), 1 - 2 * (a * a + c * c), 2 * (b * c - w * a)],
                        [2 * (a * c - w * b), 2 * (b * c + w * a), 1 - 2 * (a * a + b * b)]])
        cov_world = rot @ np.diag(scales[i] ** 2) @ rot.T
        cov_cam = R @ cov_world @ R.T
        # Jacobian of the perspective projection, x/z and y/z clamped to 1.3x the half field of view
        tan_x, tan_y = W / (2 * fx), H / (2 * fy)
        u = min(max(x / z, -cx / fx - 0.3 * tan_x), (W - cx) / fx + 0.3 * tan_x)
        v = min(max(y / z, -cy / fy - 0.3 * tan_y), (H - cy) / fy + 0.3 * tan_y)
        J = np.array([[fx / z, 0, -fx * u / z], [0, fy / z, -fy * v / z]])
        cov2d = J @ cov_cam @ J.T + 0.3 * np.eye(2)
        if np.linalg.det(cov2d) <= 0:
            continue
        mean2d = np.array([fx * x / z + cx, fy * y / z + cy])
        splats.append((z, i, mean2d, np.linalg.inv(cov2d), opacities[i], colors[i]))
    splats.sort(key=lambda s: (s[0], s[1]))
    bg = np.zeros(3) if background is None else background
    rgb, alpha, depth, stopped = np.zeros((H, W, 3)), np.zeros((H, W)), np.zeros((H, W)), np.zeros((H, W), bool)
    for row in range(H):
        for col in range(W):
            p = np.array([col + 0.5, row + 0.5])
            T, acc, dacc = 1.0, np.zeros(3), 0.0
            for z, _, mean2d, conic, o, c in splats:
                dx, dy = mean2d - p
                sigma = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
                a = min(0.999, o * math.exp(-sigma))
                if sigma < 0 or a < 1 / 255:
                    continue
                if T * (1 - a) <= 1e-4:
                    stopped[row, col] = True
                    break
                acc += a * T * c
                dacc += a * T * z
                T *= 1 - a
            rgb[row, col] = acc + T * bg
            alpha[row, col] = 1 - T
            depth[row, col] = dacc / max(1 - T, 1e-10)
    return rgb, alpha, depth, stopped


def random_scene(n: int, seed: int, dtype=D, opaque: bool = False) -> dict[str, torch.Tensor]:
    """Gaussians in front of the cameras of random_cameras, a few of them culled or off-screen."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=D) * torch.tensor([0.35, 0.3, 0.3], dtype=D)
    means[: n // 10, 2] = -3.5  # behind the cameras
    means[n // 10: n // 5, 0] = 1.8 + torch.rand(n // 10, generator=g, dtype=D)  # far outside the field of view
    quats = torch.randn(n, 4, generator=g, dtype=D) * 2  # unnormalised on purpose
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=D) * 0.5) * 0.06
    scales[n // 10: n // 5] *= 8  # big, so the clamped Jacobian matters at the image edge
    if opaque:
        scales *= 2  # overlapping opaque Gaussians: many pixels stop early
    opacities = torch.rand(n, generator=g, dtype=D) * (0.25 if not opaque else 0.02) + (0.7 if not opaque else 0.98)
    opacities[0] = 1.0  # hits the 0.999 cap
    opacities[1] = 0.5 / 255  # culled: never reaches 1/255
    colors = torch.rand(n, 3, generator=g, dtype=D)
    return {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "colors": colors}


def random_cameras(b: int, seed: int, W: int = 27, H: int = 21, dtype=D) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    Rs, ts, Ks = [], [], []
    for _ in range(b):
        aa = torch.randn(3, generator=g, dtype=D) * 0.15
        Rs.append(torch.linalg.matrix_exp(torch.tensor([[0, -aa[2], aa[1]], [aa[2], 0, -aa[0]], [-aa[1], aa[0], 0]],
                                                       dtype=D)))
        ts.append(torch.tensor([0.05, -0.03, 2.0], dtype=D) + 0.05 * torch.randn(3, generator=g, dtype=D))
        f = 30.0 + 5 * torch.rand((), generator=g, dtype=D)
        Ks.append(torch.tensor([[f, 0, W / 2 + 0.7], [0, f * 1.05, H / 2 - 0.4], [0, 0, 1]], dtype=D))
    return Cameras(torch.stack(Rs).to(dtype), torch.stack(ts).to(dtype), torch.stack(Ks).to(dtype), W, H)


def reference_batch(scene, cams: Cameras, background=None, per_frame: bool = False):
    outs = []
    for b in range(len(cams)):
        arrs = {k: (v[b] if per_frame and v.dim() > (2 if k != "opacities" else 1) else v).detach().double().numpy()
                for k, v in scene.items()}
        bg = None if background is None else background.reshape(-1, 3)[b if background.dim() == 2 else 0]
        bg = None if bg is None else bg.double().numpy()
        outs.append(reference_render(arrs["means"], arrs["quats"], arrs["scales"], arrs["opacities"], arrs["colors"],
                                     cams.R[b].double().numpy(), cams.t[b].double().numpy(),
                                     cams.K[b].double().numpy(), cams.width, cams.height, bg))
    return [torch.from_numpy(np.stack(x)) for x in zip(*outs)]


# --------------------------------------------------------------------------------------------
# agreement with the reference


@pytest.mark.parametrize("seed, n, opaque", [(0, 40, False), (1, 60, False), (2, 60, True)])
def test_matches_brute_force_reference(seed: int, n: int, opaque: bool) -> None:
    scene = random_scene(n, seed, opaque=opaque)
    cams = random_cameras(2, seed + 100)
    bg = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]], dtype=D)
    out = rasterize(**scene, cameras=cams, background=bg, backend="cpu")
    rgb, alpha, depth, stopped = reference_batch(scene, cams, bg)
    assert isinstance(out, GaussianImages) and out.backend == "cpu"
    assert out.rgb.shape == (2, 21, 27, 3) and out.alpha.shape == out.depth.shape == (2, 21, 27, 1)
    assert alpha.max() > 0.9 and (opaque or (alpha < 1e-12).any())  # covers (part of) the frame, opaquely
    assert (out.rgb - rgb).abs().max() < 1e-4
    assert (out.alpha[..., 0] - alpha).abs().max() < 1e-4
    assert (out.depth[..., 0] - depth).abs().max() < 1e-4
    if opaque:  # early termination really happened, in many pixels
        assert stopped.sum() > 20


def test_early_termination_excludes_the_gaussian_that_ends_it() -> None:
    # five opaque Gaussians (o = 0.95) on the axis, coloured R, G, B, R, G front to back: after
    # three, T = 0.05³ = 1.25e-4; the fourth would take it to 6.25e-6 <= 1e-4, so the pixel stops
    # there and the fourth is *not* composited (gsplat's rule)
    n = 5
    z = torch.linspace(1.0, 1.4, n, dtype=D)
    scene = {"means": torch.stack([torch.zeros(n, dtype=D), torch.zeros(n, dtype=D), z], -1),
             "quats": torch.tensor([[1.0, 0, 0, 0]], dtype=D).repeat(n, 1),
             "scales": torch.full((n, 3), 0.05, dtype=D), "opacities": torch.full((n,), 0.95, dtype=D),
             "colors": torch.eye(3, dtype=D).repeat(2, 1)[:n]}
    cams = Cameras(torch.eye(3, dtype=D)[None], torch.zeros(1, 3, dtype=D),
                   torch.tensor([[[50.0, 0, 8.5], [0, 50.0, 8.5], [0, 0, 1]]], dtype=D), 17, 17)
    out = rasterize(**scene, cameras=cams, backend="cpu")
    expect = torch.tensor([0.95, 0.05 * 0.95, 0.05 ** 2 * 0.95], dtype=D)
    assert torch.allclose(out.rgb[0, 8, 8], expect, atol=1e-12)
    assert torch.allclose(out.alpha[0, 8, 8, 0], torch.tensor(1 - 0.05 ** 3, dtype=D), atol=1e-12)
    ref = reference_batch(scene, cams)[0][0]
    assert (out.rgb[0] - ref).abs().max() < 1e-12


# --------------------------------------------------------------------------------------------
# analytic cases


def _one_gaussian(z: float, opacity: float = 0.8, s: float = 0.02, f: float = 60.0, size: int = 33):
    scene = {"means": torch.tensor([[0.0, 0.0, z]], dtype=D), "quats": torch.tensor([[1.0, 0, 0, 0]], dtype=D),
             "scales": torch.full((1, 3), s, dtype=D), "opacities": torch.tensor([opacity], dtype=D),
             "colors": torch.tensor([[0.9, 0.3, 0.1]], dtype=D)}
    c = size / 2  # the mean projects onto the centre of pixel (size // 2, size // 2)
    cams = Cameras(torch.eye(3, dtype=D)[None], torch.zeros(1, 3, dtype=D),
                   torch.tensor([[[f, 0, c], [0, f, c], [0, 0, 1]]], dtype=D), size, size)
    return scene, cams


def test_single_gaussian_centre_pixel_and_apparent_size() -> None:
    bg = torch.tensor([0.1, 0.5, 0.7], dtype=D)
    sigma2 = {}
    for z in (1.0, 2.0):
        scene, cams = _one_gaussian(z)
        out = rasterize(**scene, cameras=cams, background=bg, backend="cpu")
        centre = out.rgb[0, 16, 16]
        assert torch.allclose(centre, 0.8 * scene["colors"][0] + 0.2 * bg, atol=1e-12)
        assert torch.allclose(out.depth[0, 16, 16, 0], torch.tensor(z, dtype=D), atol=1e-12)
        # alpha profile along the row: o·exp(-d²/(2 var)) with var = (f s / z)² + 0.3 (low-pass)
        a0, a2 = out.alpha[0, 16, 16, 0], out.alpha[0, 16, 18, 0]
        var = -4.0 / (2 * torch.log(a2 / a0))
        assert torch.allclose(var, torch.tensor((60 * 0.02 / z) ** 2 + 0.3, dtype=D), rtol=1e-9)
        sigma2[z] = var - 0.3
    # apparent radius scales as 1 / depth
    assert torch.allclose(sigma2[1.0].sqrt() / sigma2[2.0].sqrt(), torch.tensor(2.0, dtype=D), rtol=1e-9)


def test_opacity_cap_and_threshold() -> None:
    scene, cams = _one_gaussian(1.0, opacity=1.0)
    out = rasterize(**scene, cameras=cams, backend="cpu")
    assert torch.allclose(out.alpha[0, 16, 16, 0], torch.tensor(0.999, dtype=D))  # min(0.999, o)
    a = out.alpha[0, 16, :, 0]
    assert a[a > 0].min() >= 1 / 255  # nothing fainter than 1/255 is drawn
    scene["opacities"][:] = 0.9 / 255
    assert rasterize(**scene, cameras=cams, backend="cpu").alpha.abs().max() == 0


@pytest.mark.parametrize("swap", [False, True])
def test_occlusion_follows_depth_not_input_order(swap: bool) -> None:
    scene = {"means": torch.tensor([[0.0, 0.0, 1.0], [0.01, 0.0, 2.0]], dtype=D),
             "quats": torch.tensor([[1.0, 0, 0, 0], [0.9, 0.1, 0.2, 0.3]], dtype=D),
             "scales": torch.tensor([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]], dtype=D),
             "opacities": torch.tensor([0.99, 0.99], dtype=D),
             "colors": torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=D)}
    if swap:
        scene = {k: v.flip(0) for k, v in scene.items()}
    _, cams = _one_gaussian(1.0)
    out = rasterize(**scene, cameras=cams, backend="cpu")
    c = out.rgb[0, 16, 16]
    assert c[0] > 0.98 and c[2] < 0.02  # the near red one hides the far blue one
    assert abs(out.depth[0, 16, 16, 0].item() - 1.0) < 0.02
    ref = reference_batch(scene, cams)[0][0]
    assert (out.rgb[0] - ref).abs().max() < 1e-12


def test_background() -> None:
    cams = random_cameras(2, 3)
    scene = random_scene(10, 3)
    scene["means"][:, 2] = -5.0  # everything behind the cameras
    out = rasterize(**scene, cameras=cams, backend="cpu")
    assert out.rgb.abs().max() == 0 and out.alpha.abs().max() == 0 and out.depth.abs().max() == 0
    bg = torch.tensor([[0.2, 0.3, 0.4], [1.0, 0.0, 0.5]], dtype=D)
    out = rasterize(**scene, cameras=cams, background=bg, backend="cpu")
    assert torch.equal(out.rgb, bg[:, None, None, :].expand(2, 21, 27, 3))
    out = rasterize(**scene, cameras=cams, background=bg[1], backend="cpu")
    assert torch.equal(out.rgb, bg[1].expand(2, 21, 27, 3))
    empty = {k: v[:0] for k, v in scene.items()}
    assert rasterize(**empty, cameras=cams, background=bg, backend="cpu").rgb.shape == (2, 21, 27, 3)


# --------------------------------------------------------------------------------------------
# batching


def test_batches_match_separate_calls() -> None:
    B = 3
    cams = random_cameras(B, 7)
    base = random_scene(30, 7)
    g = torch.Generator().manual_seed(8)
    frames = {k: torch.stack([v + (0.03 * torch.randn(v.shape, generator=g, dtype=D) if k in ("means", "quats")
                                   else 0) for _ in range(B)]) for k, v in base.items()}
    frames["colors"] = frames["colors"].clamp(0, 1)
    bg = torch.rand(B, 3, generator=g, dtype=D)
    out = rasterize(**frames, cameras=cams, background=bg, backend="cpu")
    for b in range(B):
        cam_b = Cameras(cams.R[b:b + 1], cams.t[b:b + 1], cams.K[b:b + 1], cams.width, cams.height)
        one = rasterize(**{k: v[b] for k, v in frames.items()}, cameras=cam_b, background=bg[b], backend="cpu")
        for name in ("rgb", "alpha", "depth"):
            assert torch.allclose(getattr(out, name)[b], getattr(one, name)[0], atol=1e-12), name
    # shared Gaussians [N, ...] broadcast over the cameras; mixed per-frame colours
    shared = rasterize(**base, cameras=cams, backend="cpu")
    mixed = rasterize(**{**base, "colors": frames["colors"]}, cameras=cams, backend="cpu")
    for b in range(B):
        cam_b = Cameras(cams.R[b:b + 1], cams.t[b:b + 1], cams.K[b:b + 1], cams.width, cams.height)
        assert torch.allclose(shared.rgb[b], rasterize(**base, cameras=cam_b, backend="cpu").rgb[0], atol=1e-12)
        one = rasterize(**{**base, "colors": frames["colors"][b]}, cameras=cam_b, backend="cpu")
        assert torch.allclose(mixed.rgb[b], one.rgb[0], atol=1e-12)


def test_tile_and_chunk_sizes_do_not_change_the_result() -> None:
    scene = random_scene(60, 11, opaque=True)
    cams = random_cameras(2, 11, W=45, H=37)
    args = [v[None].expand(2, *v.shape) for v in scene.values()] + [cams.R, cams.t, cams.K, 45, 37]
    ref = gaussians_cpu.rasterize_cpu(*args)
    for tile, chunk, group in ((16, 32, 1 << 18), (4, 3, 100), (8, 1, 1 << 20), (32, 1000, 1 << 16)):
        other = gaussians_cpu.rasterize_cpu(*args, tile=tile, chunk=chunk, group_elems=group)
        for a, b in zip(ref, other):
            assert (a - b).abs().max() < 1e-10


def test_no_grad_fast_path_is_bitwise_identical() -> None:
    sc = ellipsoid_shell_scene(3000, seed=1)
    cams = shell_camera(64, 48)
    params = {k: v.clone().requires_grad_(True) for k, v in sc.items()}
    with_grad = rasterize(**params, cameras=cams, background=torch.tensor([0.1, 0.2, 0.3]), backend="cpu")
    with torch.no_grad():
        fast = rasterize(**sc, cameras=cams, background=torch.tensor([0.1, 0.2, 0.3]), backend="cpu")
    assert with_grad.rgb.requires_grad
    for name in ("rgb", "alpha", "depth"):
        assert torch.equal(getattr(with_grad, name).detach(), getattr(fast, name)), name
    # and the float32 result agrees with the float64 reference path
    sc64 = {k: v.double() for k, v in sc.items()}
    cams64 = Cameras(cams.R.double(), cams.t.double(), cams.K.double(), 64, 48)
    with torch.no_grad():
        exact = rasterize(**sc64, cameras=cams64, background=torch.tensor([0.1, 0.2, 0.3], dtype=D), backend="cpu")
    assert (fast.rgb.double() - exact.rgb).abs().max() < 2e-4


# --------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("opaque", [False, True])
def test_gradcheck_all_parameters(opaque: bool) -> None:
    g = torch.Generator().manual_seed(5)
    n = 4
    means = torch.tensor([[0.0, 0.0, 2.0], [0.1, 0.05, 2.3], [-0.12, 0.02, 1.9], [0.05, -0.1, 2.6]], dtype=D)
    quats = torch.randn(n, 4, generator=g, dtype=D)
    scales = torch.tensor([[0.08, 0.05, 0.06], [0.1, 0.07, 0.04], [0.05, 0.09, 0.07], [0.12, 0.1, 0.08]], dtype=D)
    opacities = torch.tensor([0.8, 0.6, 0.7, 0.9], dtype=D)
    if opaque:  # four layers of o ≈ 0.99: the pixels at the centre stop early
        means[:, :2] *= 0.2
        scales = scales * 2
        opacities = torch.tensor([0.993, 0.99, 0.995, 0.992], dtype=D)
    colors = torch.rand(n, 3, generator=g, dtype=D)
    cams = Cameras(torch.eye(3, dtype=D)[None], torch.zeros(1, 3, dtype=D),
                   torch.tensor([[[40.0, 0, 7.3], [0, 41.0, 6.1], [0, 0, 1]]], dtype=D), 14, 12)
    weights = torch.rand(1, 12, 14, 5, generator=g, dtype=D)
    bg = torch.tensor([0.3, 0.2, 0.1], dtype=D)

    def loss(m, q, s, o, c):
        out = rasterize(m, q, s, o, c, cams, background=bg, backend="cpu")
        return (torch.cat([out.rgb, out.alpha, out.depth], -1) * weights).sum()

    inputs = [x.clone().requires_grad_(True) for x in (means, quats, scales, opacities, colors)]
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
    loss(*inputs).backward()
    for x in inputs:
        assert x.grad is not None and x.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# spherical harmonics


def test_eval_sh_degree0_and_shapes() -> None:
    g = torch.Generator().manual_seed(0)
    sh = torch.randn(2, 5, 1, 3, generator=g, dtype=D)
    dirs = torch.randn(2, 5, 3, generator=g, dtype=D)
    assert torch.allclose(eval_sh(sh, dirs), torch.clamp_min(SH_C0 * sh[..., 0, :] + 0.5, 0))
    sh16 = torch.randn(5, 16, 3, generator=g, dtype=D)
    assert eval_sh(sh16, dirs[0]).shape == (5, 3)
    assert torch.allclose(eval_sh(sh16, dirs[0], degree=0), eval_sh(sh16[:, :1], dirs[0]))
    assert torch.allclose(eval_sh(sh16, dirs[0] * 7.0), eval_sh(sh16, dirs[0]))  # directions are normalised
    with pytest.raises(ValueError):
        eval_sh(torch.zeros(5, 5, 3), dirs[0])
    with pytest.raises(ValueError):
        eval_sh(sh16[:, :4], dirs[0], degree=2)


def test_sh_basis_is_rotation_invariant_per_band() -> None:
    g = torch.Generator().manual_seed(1)
    dirs = torch.nn.functional.normalize(torch.randn(500, 3, generator=g, dtype=D), dim=-1)
    Y = sh_basis(dirs, 3)
    # addition theorem: Σ_m Y_lm(d)² = (2l+1)/(4π) for every direction
    for l in range(4):
        band = Y[:, l * l:(l + 1) ** 2]
        assert torch.allclose((band ** 2).sum(-1), torch.full((500,), (2 * l + 1) / (4 * math.pi), dtype=D))
    # each band is closed under rotation: Y_l(Q d) = D_l(Q) Y_l(d) with D_l orthogonal
    Q = torch.linalg.matrix_exp(torch.tensor([[0, -0.4, 0.3], [0.4, 0, -0.7], [-0.3, 0.7, 0]], dtype=D))
    Yr = sh_basis(dirs @ Q.T, 3)
    for l in range(1, 4):
        sl = slice(l * l, (l + 1) ** 2)
        Dl = torch.linalg.lstsq(Y[:, sl], Yr[:, sl]).solution.T
        assert torch.allclose(Y[:, sl] @ Dl.T, Yr[:, sl], atol=1e-10)
        assert torch.allclose(Dl @ Dl.T, torch.eye(2 * l + 1, dtype=D), atol=1e-10)
    # and the rotated function is what eval_sh gives for the rotated coefficients
    sh = torch.randn(500, 16, 3, generator=g, dtype=D) * 0.1
    sh_rot = sh.clone()
    for l in range(1, 4):
        sl = slice(l * l, (l + 1) ** 2)
        Dl = torch.linalg.lstsq(Y[:, sl], Yr[:, sl]).solution.T
        sh_rot[:, sl] = torch.einsum("mk,nmc->nkc", Dl, sh[:, sl])  # f(Q d) = Σ_k (Σ_m D_mk c_m) Y_k(d)
    assert torch.allclose(eval_sh(sh_rot, dirs), eval_sh(sh, dirs @ Q.T), atol=1e-10)


def test_view_dirs() -> None:
    cams = random_cameras(2, 0)
    centre = -(cams.R[0].T @ cams.t[0])
    m = torch.randn(4, 3, dtype=D)
    assert torch.allclose(view_dirs(m, cams)[0], m - centre)


# --------------------------------------------------------------------------------------------
# API


def test_argument_errors() -> None:
    scene = random_scene(10, 0)
    cams = random_cameras(2, 0)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        rasterize(**scene, cameras=cams, backend="gsplat")
    with pytest.raises(ValueError, match="backend"):
        rasterize(**scene, cameras=cams, backend="opengl")
    with pytest.raises(ValueError, match="quats"):
        rasterize(**{**scene, "quats": scene["quats"][:, :3]}, cameras=cams)
    with pytest.raises(ValueError, match="3 cameras|batch 3"):
        rasterize(**{**scene, "means": scene["means"].expand(3, 10, 3)}, cameras=cams)
    with pytest.raises(ValueError, match="Gaussians"):
        rasterize(**{**scene, "opacities": scene["opacities"][:5]}, cameras=cams)
    with pytest.raises(ValueError, match="background"):
        rasterize(**scene, cameras=cams, background=torch.zeros(4, dtype=D))
    assert rasterize(**scene, cameras=cams).backend == "cpu"  # auto on CPU tensors


def test_gsplat_adapter_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter's calls follow gsplat's layout contract ([..., N, ·] Gaussians with
    [..., C, 4, 4] cameras), checked with a stand-in that renders with the CPU renderer."""
    from being_kernel.render import gaussians_gsplat

    calls = []

    def fake_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane,
                           far_plane, eps2d, radius_clip, packed, tile_size, rasterize_mode, render_mode,
                           backgrounds=None):
        batch, n, c = means.shape[:-2], means.shape[-2], viewmats.shape[-3]
        assert quats.shape == batch + (n, 4) and scales.shape == batch + (n, 3) and opacities.shape == batch + (n,)
        assert viewmats.shape == batch + (c, 4, 4) and Ks.shape == batch + (c, 3, 3)
        assert colors.shape in (batch + (n, 3), batch + (c, n, 3))
        assert backgrounds is None or backgrounds.shape == batch + (c, 3)
        assert (packed, rasterize_mode, render_mode, eps2d) == (False, "classic", "RGB+ED", 0.3)
        assert all(x.dtype == torch.float32 for x in (means, quats, scales, opacities, colors, viewmats, Ks))
        calls.append(batch)
        bm = means.reshape(-1, n, 3)
        imgs, alps = [], []
        for i in range(bm.shape[0]):
            for j in range(c):
                col = colors.reshape(-1, *colors.shape[len(batch):])[i]
                col = col[j] if col.dim() == 3 else col
                vm = viewmats.reshape(-1, c, 4, 4)[i, j, None]
                cam = Cameras(vm[:, :3, :3], vm[:, :3, 3], Ks.reshape(-1, c, 3, 3)[i, j, None], width, height)
                bg = None if backgrounds is None else backgrounds.reshape(-1, c, 3)[i, j]
                out = rasterize(bm[i], quats.reshape(-1, n, 4)[i], scales.reshape(-1, n, 3)[i],
                                opacities.reshape(-1, n)[i], col, cam, background=bg, backend="cpu",
                                near=near_plane, far=far_plane)
                imgs.append(torch.cat([out.rgb, out.depth], -1)[0])
                alps.append(out.alpha[0])
        shape = batch + (c, height, width)
        return torch.stack(imgs).reshape(*shape, 4), torch.stack(alps).reshape(*shape, 1), {}

    monkeypatch.setitem(sys.modules, "gsplat", types.SimpleNamespace(rasterization=fake_rasterization,
                                                                      __version__="1.5.3"))
    scene = {k: v.float() for k, v in random_scene(20, 4).items()}
    cams = random_cameras(2, 4, dtype=torch.float32)
    bg = torch.tensor([0.1, 0.2, 0.3])
    frames = {k: torch.stack([v, v.flip(0)]) for k, v in scene.items()}
    for inputs in (scene, {**scene, "colors": frames["colors"]}, frames):
        expect = rasterize(**inputs, cameras=cams, background=bg, backend="cpu")
        args = [inputs[k] if inputs[k].dim() == scene[k].dim() + 1 else inputs[k][None]
                for k in ("means", "quats", "scales", "opacities", "colors")]
        rgb, alpha, depth = gaussians_gsplat.rasterize_gsplat(*args, cams, bg, 0.01, 1e3)
        assert torch.allclose(rgb, expect.rgb, atol=1e-6) and torch.allclose(alpha, expect.alpha, atol=1e-6)
        assert torch.allclose(depth, expect.depth, atol=1e-5)
    assert calls == [(), (), (2,)]  # shared Gaussians: C = B cameras; per-frame: batch dim B, C = 1
    monkeypatch.setitem(sys.modules, "gsplat", types.SimpleNamespace(rasterization=fake_rasterization,
                                                                      __version__="1.4.0"))
    rgb, _, _ = gaussians_gsplat.rasterize_gsplat(*[frames[k] for k in ("means", "quats", "scales", "opacities",
                                                                         "colors")], cams, bg, 0.01, 1e3)
    assert torch.allclose(rgb, rasterize(**frames, cameras=cams, background=bg, backend="cpu").rgb, atol=1e-6)


def test_missing_gsplat_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from being_kernel.render import gaussians_gsplat

    monkeypatch.setitem(sys.modules, "gsplat", None)  # makes `import gsplat` raise ImportError
    with pytest.raises(ImportError, match="pip install gsplat"):
        gaussians_gsplat._import_gsplat()

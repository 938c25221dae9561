"""Gaussian rasterization: one API, two backends (gsplat on CUDA, the project's own renderer anywhere).

    images = rasterize(means, quats, scales, opacities, colors, cameras)   # -> GaussianImages
    images.rgb    # [B, H, W, 3] composited over the background
    images.alpha  # [B, H, W, 1]
    images.depth  # [B, H, W, 1] expected camera z (gsplat's "ED"), 0 where nothing was drawn

Conventions: OpenCV cameras (``being_kernel.cameras.Cameras``: x right, y down, z forward,
``R, t`` world->camera, pixel centres at ``+0.5``); quaternions ``wxyz`` (normalised here);
``scales`` are linear standard deviations (not log); ``opacities`` in [0, 1]; ``colors`` are
post-activation RGB (use :func:`eval_sh` for spherical harmonics). The math, the constants and
where they come from are in ``docs/rendering.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..cameras import Cameras

__all__ = ["GaussianImages", "rasterize", "eval_sh", "sh_basis", "view_dirs", "available_backends",
           "ellipsoid_shell_scene", "shell_camera", "SH_C0", "SH_C1", "SH_C2", "SH_C3"]

BACKENDS = ("auto", "cpu", "gsplat")


@dataclass
class GaussianImages:
    """Rendered images of a batch of B cameras.

    rgb [B,H,W,3]: Σ_i w_i c_i + (1 - alpha)·background, with w_i = alpha_i Π_{j<i} (1 - alpha_j)
    alpha [B,H,W,1]: Σ_i w_i (= 1 - final transmittance)
    depth [B,H,W,1]: Σ_i w_i z_i / max(alpha, 1e-10), z_i the camera-space z of Gaussian i's mean
        (gsplat's "ED" expected depth); exactly 0 where no Gaussian touched the pixel
    backend: "cpu" or "gsplat", the backend that produced the images
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    backend: str


# --------------------------------------------------------------------------------------------
# spherical harmonics (real SH, the constants and sign conventions of 3DGS / gsplat)

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
         1.445305721320277, -0.5900435899266435)


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Real SH basis of ``degree`` 0..3 at unit directions [..., 3] -> [..., (degree+1)²], in the
    coefficient order of 3DGS and gsplat (band by band, m = -l..l)."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * x * z,
                SH_C2[4] * (xx - yy)]
    if degree >= 3:
        out += [SH_C3[0] * y * (3 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4 * zz - xx - yy),
                SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), SH_C3[4] * x * (4 * zz - xx - yy),
                SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3 * yy)]
    return torch.stack(out, -1)


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor, degree: int | None = None) -> torch.Tensor:
    """View-dependent colour from spherical harmonics, as 3DGS and gsplat compute it.

    sh [..., N, K, 3] with K = (d+1)² for d in 0..3; dirs [..., N, 3] from the camera centre to the
    Gaussian (normalised here; see :func:`view_dirs`); ``degree`` uses only the first bands
    (default: all of them). Returns ``max(Σ_k Y_k(dir) sh_k + 0.5, 0)`` [..., N, 3]; like 3DGS
    and gsplat, only negative values are clamped.
    """
    k = sh.shape[-2]
    full = round(math.sqrt(k)) - 1
    if sh.shape[-1] != 3 or (full + 1) ** 2 != k or not 0 <= full <= 3:
        raise ValueError(f"eval_sh: sh [..., N, K, 3] with K in (1, 4, 9, 16) expected, got {tuple(sh.shape)}")
    degree = full if degree is None else degree
    if not 0 <= degree <= full:
        raise ValueError(f"eval_sh: degree {degree} not in 0..{full} for K={k}")
    d = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(d, degree)  # [..., N, (degree+1)²]
    rgb = (basis[..., None] * sh[..., : (degree + 1) ** 2, :]).sum(-2)
    return torch.clamp_min(rgb + 0.5, 0.0)


def view_dirs(means: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """Directions from each camera's centre to each Gaussian: means [N,3] or [B,N,3] -> [B,N,3]."""
    centres = -(cameras.R.transpose(1, 2) @ cameras.t[..., None])[..., 0]  # [B,3]
    return means - centres[:, None, :]


# --------------------------------------------------------------------------------------------
# rasterization


def _gsplat_importable() -> bool:
    try:
        import gsplat  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return False
    return True


def available_backends() -> list[str]:
    """Backends that can run here: always "cpu"; "gsplat" when CUDA and gsplat are present."""
    return ["cpu"] + (["gsplat"] if torch.cuda.is_available() and _gsplat_importable() else [])


def _batched(x: torch.Tensor, name: str, tail: tuple[int, ...], B: int, N: int | None) -> torch.Tensor:
    """[N, *tail] or [B', N, *tail] (B' in {1, B}) -> [B', N, *tail]."""
    want = len(tail) + 2
    if x.dim() == want - 1:
        x = x.unsqueeze(0)
    if x.dim() != want or tuple(x.shape[2:]) != tail:
        shape = ",".join(["N", *map(str, tail)])
        raise ValueError(f"rasterize: {name} must be [{shape}] or [B,{shape}], got {tuple(x.shape)}")
    if x.shape[0] not in (1, B):
        raise ValueError(f"rasterize: {name} has batch {x.shape[0]} but there are {B} cameras")
    if N is not None and x.shape[1] != N:
        raise ValueError(f"rasterize: {name} has {x.shape[1]} Gaussians, means has {N}")
    return x


def rasterize(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
              colors: torch.Tensor, cameras: Cameras, background: torch.Tensor | None = None, backend: str = "auto",
              near: float = 0.01, far: float = 1e3) -> GaussianImages:
    """Render 3D Gaussians into the B images of ``cameras``.

    means [N,3] or [B,N,3] (world), quats [N,4] or [B,N,4] (wxyz, any norm), scales [N,3] or
    [B,N,3] (linear std. deviations), opacities [N] or [B,N] in [0,1], colors [N,3] or [B,N,3]
    (RGB; a leading B gives per-frame values, [N,...] is shared by all B cameras);
    background [3] or [B,3] or None (black). Gaussians whose camera z is outside [near, far]
    are culled. ``backend``: "auto" (gsplat when every tensor is on CUDA and gsplat imports,
    else "cpu"), "gsplat" (CUDA tensors only), or "cpu" (the PyTorch renderer, on any device).
    Differentiable w.r.t. means, quats, scales, opacities and colors on both backends.
    """
    if backend not in BACKENDS:
        raise ValueError(f"rasterize: backend must be one of {BACKENDS}, got {backend!r}")
    B = len(cameras)
    if means.dim() not in (2, 3) or means.shape[-1] != 3:
        raise ValueError(f"rasterize: means must be [N,3] or [B,N,3], got {tuple(means.shape)}")
    N = means.shape[-2]
    means = _batched(means, "means", (3,), B, None)
    quats = _batched(quats, "quats", (4,), B, N)
    scales = _batched(scales, "scales", (3,), B, N)
    opacities = _batched(opacities, "opacities", (), B, N)
    colors = _batched(colors, "colors", (3,), B, N)
    tensors = [means, quats, scales, opacities, colors, cameras.R, cameras.t, cameras.K]
    if background is not None:
        background = torch.as_tensor(background, dtype=means.dtype, device=means.device)
        if background.shape not in ((3,), (B, 3)):
            raise ValueError(f"rasterize: background must be [3] or [B,3], got {tuple(background.shape)}")
        tensors.append(background)
    if not means.is_floating_point():
        raise ValueError(f"rasterize: means must be floating point, got {means.dtype}")
    devices = {x.device for x in tensors}
    if len(devices) != 1:
        raise ValueError("rasterize: all tensors (and the cameras) must be on one device, got "
                         f"{sorted(map(str, devices))}")
    on_cuda = means.device.type == "cuda"
    if backend == "auto":
        backend = "gsplat" if on_cuda and _gsplat_importable() else "cpu"
    if backend == "gsplat":
        if not on_cuda:
            raise ValueError(f"rasterize: backend='gsplat' needs CUDA tensors, got tensors on {means.device}; "
                             "use backend='cpu' (or 'auto') for CPU tensors")
        from .gaussians_gsplat import rasterize_gsplat

        rgb, alpha, depth = rasterize_gsplat(means, quats, scales, opacities, colors, cameras, background, near, far)
        return GaussianImages(rgb, alpha, depth, "gsplat")

    from .gaussians_cpu import rasterize_cpu

    def full(x: torch.Tensor) -> torch.Tensor:
        return x.expand(B, *x.shape[1:])

    cams = [c.to(means.dtype) for c in (cameras.R, cameras.t, cameras.K)]
    col, alpha, dsum = rasterize_cpu(full(means), full(quats), full(scales), full(opacities), full(colors), *cams,
                                     cameras.width, cameras.height, near=near, far=far)
    rgb = col if background is None else col + (1.0 - alpha) * background.reshape(-1, 1, 1, 3)
    depth = dsum / alpha.clamp_min(1e-10)
    return GaussianImages(rgb, alpha, depth, "cpu")


# --------------------------------------------------------------------------------------------
# a synthetic, head-sized scene for tests and benchmarks


def ellipsoid_shell_scene(n: int, seed: int = 0, radii: tuple[float, float, float] = (0.08, 0.11, 0.1),
                          dtype: torch.dtype = torch.float32,
                          device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``n`` flat Gaussians spread over an ellipsoid shell the size of a head (metres, centred at
    the origin), each lying in the surface's tangent plane, scaled to cover it with some overlap,
    with smooth colours and opacities in [0.5, 1]. Returns means, quats, scales, opacities,
    colors ([N,...]), deterministic for a given seed. View it with :func:`shell_camera`."""
    g = torch.Generator().manual_seed(seed)
    a = torch.tensor(radii, dtype=torch.float64)
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    means = d * a
    normal = torch.nn.functional.normalize(means / a**2, dim=-1)
    # rotation whose third column is the surface normal: tangent plane spanned by the first two
    ref = torch.where(normal[:, 1:2].abs() < 0.9, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64),
                      torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    t1 = torch.nn.functional.normalize(torch.linalg.cross(ref, normal), dim=-1)
    t2 = torch.linalg.cross(normal, t1)
    spin = torch.rand(n, 1, generator=g, dtype=torch.float64) * 2 * math.pi
    u1 = torch.cos(spin) * t1 + torch.sin(spin) * t2
    u2 = torch.linalg.cross(normal, u1)
    Rm = torch.stack([u1, u2, normal], -1)
    quats = _rotmat_to_quat(Rm)
    p = 1.6  # Knud Thomsen's approximation of an ellipsoid's area
    area = 4 * math.pi * (((a[0] * a[1]) ** p + (a[0] * a[2]) ** p + (a[1] * a[2]) ** p).item() / 3) ** (1 / p)
    s = math.sqrt(area / n) * 0.75
    aniso = torch.exp(0.35 * torch.randn(n, 2, generator=g, dtype=torch.float64))
    scales = torch.cat([s * aniso, torch.full((n, 1), s * 0.08, dtype=torch.float64)], -1)
    opacities = 0.5 + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)
    colors = (0.5 + 0.35 * torch.sin(means * torch.tensor([41.0, 29.0, 37.0], dtype=torch.float64) + 1.0)
              + 0.1 * torch.rand(n, 3, generator=g, dtype=torch.float64)).clamp(0, 1)
    out = {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "colors": colors}
    return {k: v.to(dtype=dtype, device=device) for k, v in out.items()}


def shell_camera(width: int, height: int, distance: float = 0.45, fov_y_deg: float = 35.0, yaw_deg: float = 20.0,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Cameras:
    """A camera ``distance`` metres from the origin, turned ``yaw_deg`` about the world y axis,
    looking at the :func:`ellipsoid_shell_scene` (which then fills most of the frame)."""
    yaw = math.radians(yaw_deg)
    eye = torch.tensor([distance * math.sin(yaw), 0.02, distance * math.cos(yaw)], dtype=torch.float64)
    cam = Cameras.look_at(eye, torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
                          fov_y_deg, width, height)
    return Cameras(cam.R.to(dtype), cam.t.to(dtype), cam.K.to(dtype), width, height).to(device)


def _rotmat_to_quat(Rm: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [N,3,3] -> unit quaternions [N,4] wxyz (Shepperd's method)."""
    m = Rm
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cands = torch.stack([
        torch.stack([1 + tr, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], -1),
        torch.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], m[:, 0, 1] + m[:, 1, 0],
                     m[:, 0, 2] + m[:, 2, 0]], -1),
        torch.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
                     m[:, 1, 2] + m[:, 2, 1]], -1),
        torch.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1],
                     1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1),
    ], 1)  # [N,4 candidates,4]; candidate k is 4·q·q_k, best conditioned where its k-th entry is largest
    diag = torch.stack([1 + tr, 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
                        1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], -1)
    best = diag.argmax(-1)
    q = cands[torch.arange(m.shape[0]), best]
    q = torch.nn.functional.normalize(q, dim=-1)
    return q * torch.where(q[:, :1] < 0, -1.0, 1.0)

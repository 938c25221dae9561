"""Quaternions (w, x, y, z), rotation matrices and axis-angle vectors, batched over leading dimensions."""

from __future__ import annotations

import torch


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """quats [..., 4] wxyz (any norm) -> rotation matrices [..., 3, 3]."""
    w, x, y, z = (quats / quats.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(quats.shape[:-1] + (3, 3))


def rotmat_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> unit quats [..., 4] wxyz with w >= 0.

    Picks, per matrix, the best-conditioned of the four standard formulas (largest of
    1 + trace, 1 + 2 m00 - trace, ...) so it is accurate for every angle."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    s = 2 * torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22],
                        -1).clamp_min(1e-12).sqrt()  # [..., 4]: 4 x each formula's leading component
    d = lambda i, j: m[..., i, j] - m[..., j, i]  # noqa: E731
    p = lambda i, j: m[..., i, j] + m[..., j, i]  # noqa: E731
    s0, s1, s2, s3 = s.unbind(-1)
    cands = torch.stack([
        torch.stack([s0 / 4, d(2, 1) / s0, d(0, 2) / s0, d(1, 0) / s0], -1),
        torch.stack([d(2, 1) / s1, s1 / 4, p(0, 1) / s1, p(0, 2) / s1], -1),
        torch.stack([d(0, 2) / s2, p(0, 1) / s2, s2 / 4, p(1, 2) / s2], -1),
        torch.stack([d(1, 0) / s3, p(0, 2) / s3, p(1, 2) / s3, s3 / 4], -1),
    ], -2)  # [..., 4 formulas, 4 components]
    best = s.argmax(-1)[..., None, None].expand(*s.shape[:-1], 1, 4)
    q = cands.gather(-2, best).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of quats [..., 4] wxyz (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> axis-angle [..., 3] with angle in [0, pi]."""
    q = rotmat_to_quat(matrix)  # w >= 0
    w, v = q[..., :1], q[..., 1:]
    sin_half = v.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, w)
    # angle / sin(angle / 2) -> 2 / w as the angle -> 0; the exact branch only sees safe values
    small = sin_half < 1e-6
    safe = torch.where(small, torch.ones_like(sin_half), sin_half)
    scale = torch.where(small, 2.0 / w.clamp_min(1e-12), angle / safe)
    return v * scale


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """The 6D rotation representation (Zhou et al., CVPR 2019) as PyTorch3D defines it: the first two
    rows of the matrix, decoded by Gram-Schmidt. [..., 6] -> rotation matrices [..., 3, 3] (rows: b1, b2,
    b1 x b2)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.linalg.cross(b1, b2, dim=-1)], dim=-2)

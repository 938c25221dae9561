"""Posing FlashAvatar's Gaussians for a batch of frames: each sits on the posed mesh at its texel's
surface point, moved by the network's offset in the head's frame; its rotation is the base rotation
composed with the network's delta, then turned with the head; its scale is the base scale times
the network's factor.

The public code multiplies the *log* scale by the factor (``exp(log s x f)``), so a factor above 1
shrinks a Gaussian; here the factor multiplies the scale itself, as the paper describes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from being_kernel.render import quat_multiply, rotmat_to_quat

from .network import split_outputs

#: FLAME's joints: 0 root (neck base), 1 neck. The network's offsets live in the neck joint's frame.
HEAD_JOINT = 1


@dataclass
class SurfacePoints:
    """N points on a mesh: face_ids [N] int64 triangles, bary [N, 3] barycentric coordinates, and
    faces [F, 3] the mesh's triangles (all on one device)."""

    face_ids: torch.Tensor
    bary: torch.Tensor
    faces: torch.Tensor

    def on(self, vertices: torch.Tensor) -> torch.Tensor:
        """Vertices [T, V, 3] (or [V, 3]) -> the points [T, N, 3] (or [N, 3])."""
        corners = vertices[..., self.faces[self.face_ids], :]  # [..., N, 3, 3]
        return (self.bary[..., :, :, None] * corners).sum(-2)


def pose_gaussians(points: SurfacePoints, vertices: torch.Tensor, head_rotation: torch.Tensor, raw: torch.Tensor,
                   rotation: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """vertices [T, V, 3] posed mesh, head_rotation [T, 3, 3] the head joint's world rotation, raw
    [T, N, 10] network outputs, rotation [N, 4] base wxyz, scale [N, 3] base scale ->
    means [T, N, 3], quats [T, N, 4] (unit, wxyz), scales [T, N, 3]."""
    offset, dq, factor = split_outputs(raw)
    means = points.on(vertices) + offset @ head_rotation.transpose(1, 2)
    local = quat_multiply(rotation[None].expand_as(dq), dq)
    head_q = rotmat_to_quat(head_rotation)[:, None].expand_as(local)
    quats = torch.nn.functional.normalize(quat_multiply(head_q, local), dim=-1)
    return means, quats, scale[None] * factor

"""The 6D rotation representation (Zhou et al., CVPR 2019) as PyTorch3D defines it, which
metrical-tracker stores: the first two ROWS of the rotation matrix, ``[r00 r01 r02 r10 r11 r12]``,
decoded by Gram-Schmidt with the rows stacked (``pytorch3d.transforms.rotation_6d_to_matrix``).
The matrix rotates column vectors (``x' = R x``), like FLAME's Rodrigues matrices, so its axis-angle
is the FLAME pose."""

from __future__ import annotations

import torch

from ..head.flame import axis_angle_to_matrix
from ..render.rotations import matrix_to_axis_angle, rotation_6d_to_matrix


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] -> [..., 6] (the first two rows)."""
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


def axis_angle_to_rotation_6d(rotvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle [..., 3] -> [..., 6]."""
    return matrix_to_rotation_6d(axis_angle_to_matrix(rotvec))


def rotation_6d_to_axis_angle(d6: torch.Tensor) -> torch.Tensor:
    """[..., 6] -> axis-angle [..., 3]; ValueError if a 6D value has a zero or two parallel halves
    (no rotation: Gram-Schmidt has nothing to orthogonalise)."""
    m = rotation_6d_to_matrix(d6)
    if not bool((torch.linalg.det(m) > 0.5).all()):
        raise ValueError("not a 6D rotation (a zero or two parallel 3-vectors)")
    return matrix_to_axis_angle(m)

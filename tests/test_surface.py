"""Mesh-embedded Gaussians follow their triangles: checked against rigid-motion and scaling oracles."""

from __future__ import annotations

import math

import torch

from being_kernel.render.rotations import quat_to_rotmat, rotmat_to_quat
from being_kernel.render.surface import MeshGaussians

TRI = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
FACES = torch.tensor([[0, 1, 2], [1, 3, 2]])
UV = TRI[:, :2].clone()


def _gaussians(count: int = 64) -> MeshGaussians:
    tex = torch.zeros(8, 8, 3)
    tex[:, :4, 0] = 1.0  # left half red (u < 0.5), right half green
    tex[:, 4:, 1] = 1.0
    g = MeshGaussians.from_textured_mesh(TRI, FACES, UV, FACES, tex, count, seed=1)
    g.offset = torch.linspace(-0.1, 0.1, count)
    g.rotation = rotmat_to_quat(quat_to_rotmat(torch.randn(count, 4, generator=torch.Generator().manual_seed(2))))
    return g


def _rigid(angle: float) -> tuple[torch.Tensor, torch.Tensor]:
    c, s = math.cos(angle), math.sin(angle)
    R = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]])
    return R, torch.tensor([0.3, -0.2, 1.5])


def test_rest_pose_places_gaussians_on_the_surface_plus_offset() -> None:
    g = _gaussians()
    means, quats, scales = g.pose(TRI[None])
    foot = (g.bary[:, :, None] * TRI[FACES[g.face_ids]]).sum(1)
    torch.testing.assert_close(means[0, :, :2], foot[:, :2])
    torch.testing.assert_close(means[0, :, 2], g.offset)  # the plane's normal is +z
    clear = (foot[:, 0] - 0.5).abs() > 1 / 8  # away from the texture's red/green boundary
    assert torch.equal((g.color[clear, 0] > 0.5), (foot[clear, 0] < 0.5))


def test_rigid_motion_moves_means_and_rotations_with_the_mesh() -> None:
    g = _gaussians()
    rest_means, rest_quats, rest_scales = g.pose(TRI[None])
    R, t = _rigid(0.7)
    means, quats, scales = g.pose((TRI @ R.T + t)[None])
    torch.testing.assert_close(means[0], rest_means[0] @ R.T + t, atol=1e-5, rtol=0)
    torch.testing.assert_close(quat_to_rotmat(quats[0]), R @ quat_to_rotmat(rest_quats[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(scales, rest_scales)


def test_scale_follows_the_triangle_size() -> None:
    g = _gaussians()
    _, _, rest_scales = g.pose(TRI[None])
    _, _, scales = g.pose((2.5 * TRI)[None])
    torch.testing.assert_close(scales, 2.5 * rest_scales)
    # discs lie in the surface: thin along the normal, equal in the plane
    assert torch.allclose(rest_scales[0, :, 2], 0.1 * rest_scales[0, :, 0])
    assert math.isclose(float(rest_scales[0, 0, 0]), 0.7 * math.sqrt(1.0 / 64), rel_tol=1e-5)


def test_sampling_is_seeded_and_spread_by_area() -> None:
    a, b = _gaussians(4000), _gaussians(4000)
    assert torch.equal(a.face_ids, b.face_ids) and torch.equal(a.bary, b.bary)
    assert abs(float((a.face_ids == 0).float().mean()) - 0.5) < 0.05  # two triangles of equal area
    assert torch.allclose(a.bary.sum(1), torch.ones(4000)) and (a.bary >= 0).all()

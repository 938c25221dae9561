"""Gaussians embedded in a triangle mesh, the SplattingAvatar representation (Shao et al., CVPR 2024).

Each Gaussian lives on one triangle: barycentric coordinates give its foot point, and it sits
``offset`` metres along the interpolated vertex normal. Its rotation is stored in the frame of
its triangle (tangent, bitangent, normal), so it turns with the deforming triangle, and its scale
is stored relative to sqrt(triangle area), so it grows and shrinks with the triangle. Posing is
therefore a pure function of the posed vertices; any head model's skinning drives it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..head.geometry import triangle_frames, vertex_normals
from .mesh import sample_texture
from .rotations import quat_multiply, rotmat_to_quat


@dataclass
class MeshGaussians:
    """N Gaussians on a mesh with faces [F, 3].

    face_ids   [N]     int64 triangle of each Gaussian
    bary       [N, 3]  barycentric coordinates in that triangle (rows sum to 1)
    offset     [N]     metres along the interpolated, normalised vertex normal
    rotation   [N, 4]  wxyz, relative to the triangle frame (tangent, bitangent, normal)
    scale      [N, 3]  per-axis scale divided by sqrt(area) of the triangle at rest
    opacity    [N]     in [0, 1]
    color      [N, 3]  RGB in [0, 1]
    faces      [F, 3]  int64; rest_area [F] triangle areas of the rest mesh
    """

    face_ids: torch.Tensor
    bary: torch.Tensor
    offset: torch.Tensor
    rotation: torch.Tensor
    scale: torch.Tensor
    opacity: torch.Tensor
    color: torch.Tensor
    faces: torch.Tensor
    rest_area: torch.Tensor

    def __len__(self) -> int:
        return int(self.face_ids.shape[0])

    def to(self, device: torch.device | str) -> MeshGaussians:
        return MeshGaussians(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def pose(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posed vertices [T, V, 3] -> means [T, N, 3], quats [T, N, 4] wxyz, scales [T, N, 3]."""
        normals, tangents, bitangents, areas = triangle_frames(vertices, self.faces)
        corner_ids = self.faces[self.face_ids]  # [N, 3] vertex ids of each Gaussian's triangle
        corners = vertices[:, corner_ids]  # [T, N, 3 corners, 3]
        foot = (self.bary[None, :, :, None] * corners).sum(-2)
        vn = vertex_normals(vertices, self.faces)[:, corner_ids]  # [T, N, 3, 3]
        n = torch.nn.functional.normalize((self.bary[None, :, :, None] * vn).sum(-2), dim=-1)
        means = foot + self.offset[None, :, None] * n
        # each face's frame as a quaternion, then one per Gaussian: faces are fewer than Gaussians
        face_quats = rotmat_to_quat(torch.stack([tangents, bitangents, normals], dim=-1))  # columns: [T, F, 4]
        quats = quat_multiply(face_quats[:, self.face_ids], self.rotation[None].expand(vertices.shape[0], -1, -1))
        rest = self.rest_area[self.face_ids]
        growth = (areas[:, self.face_ids] / rest).clamp_min(1e-12).sqrt()
        scales = self.scale[None] * (rest.sqrt() * growth)[..., None]
        return means, quats, scales

    @classmethod
    def from_textured_mesh(cls, vertices: torch.Tensor, faces: torch.Tensor, uv_coords: torch.Tensor,
                           uv_faces: torch.Tensor, texture: torch.Tensor, count: int, *, seed: int = 0,
                           thickness: float = 0.1, coverage: float = 0.7) -> MeshGaussians:
        """``count`` flat Gaussians spread over the rest mesh by area, coloured from the texture.

        vertices [V, 3], faces [F, 3], uv_coords [Vt, 2], uv_faces [F, 3], texture [Ht, Wt, 3].
        Each is a disc of radius ``coverage`` x sqrt(total area / count) in its triangle's plane,
        ``thickness`` times as thin along the normal."""
        g = torch.Generator().manual_seed(seed)
        _, _, _, areas = triangle_frames(vertices[None], faces)
        areas = areas[0]
        face_ids = torch.multinomial(areas, count, replacement=True, generator=g)
        r1, r2 = torch.rand(count, generator=g), torch.rand(count, generator=g)
        s = r1.sqrt()  # uniform over the triangle
        bary = torch.stack([1 - s, s * (1 - r2), s * r2], dim=-1)
        uv = (bary[:, :, None] * uv_coords[uv_faces[face_ids]]).sum(1)
        color = sample_texture(texture.permute(2, 0, 1).float(), uv[:, 0], uv[:, 1]).T.contiguous()
        radius = coverage * (areas.sum() / count).sqrt()
        local = torch.tensor([1.0, 1.0, thickness]) * radius
        rest = areas.clamp_min(1e-12)
        return cls(face_ids, bary, torch.zeros(count), torch.tensor([1.0, 0, 0, 0]).repeat(count, 1),
                   local[None] / rest[face_ids].sqrt()[:, None], torch.ones(count), color, faces, rest)

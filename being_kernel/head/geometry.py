"""Mesh geometry on batches of frames: per-triangle frames, vertex normals, named regions.

Triangle frames are what mesh-bound primitives (e.g. Gaussians attached to FLAME triangles) ride
on: each triangle's orthonormal frame (tangent, bitangent, normal) and area per frame.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import HeadModelData

_EPS = 1e-12  # guards degenerate (zero-area) triangles; their frames are then arbitrary but finite


def _corners(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    faces = faces.to(vertices.device, torch.int64)
    return vertices[:, faces[:, 0]], vertices[:, faces[:, 1]], vertices[:, faces[:, 2]]  # each [T, F, 3]


def triangle_frames(vertices: torch.Tensor, faces: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Orthonormal frame and area of every triangle.

    vertices [T, V, 3], faces [F, 3] (counter-clockwise seen from outside) ->
      normals    [T, F, 3]  unit, (v1 − v0) × (v2 − v0) direction (outward for CCW faces)
      tangents   [T, F, 3]  unit, along the first edge v1 − v0
      bitangents [T, F, 3]  normal × tangent (unit; completes a right-handed frame)
      areas      [T, F]     triangle areas
    """
    v0, v1, v2 = _corners(vertices, faces)
    e1, e2 = v1 - v0, v2 - v0
    cross = torch.cross(e1, e2, dim=-1)
    double_area = cross.norm(dim=-1)
    normals = cross / double_area.clamp_min(_EPS)[..., None]
    tangents = e1 / e1.norm(dim=-1).clamp_min(_EPS)[..., None]
    bitangents = torch.cross(normals, tangents, dim=-1)
    return normals, tangents, bitangents, 0.5 * double_area


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals: vertices [T, V, 3], faces [F, 3] -> [T, V, 3].

    Each triangle adds its unnormalised cross product (length = 2 × area) to its three corners,
    so large triangles weigh more; vertices on no triangle get a zero normal.
    """
    v0, v1, v2 = _corners(vertices, faces)
    cross = torch.cross(v1 - v0, v2 - v0, dim=-1)  # [T, F, 3]
    f = faces.to(vertices.device, torch.int64)
    acc = torch.zeros_like(vertices)
    for k in range(3):
        acc = acc.index_add(1, f[:, k], cross)
    return acc / acc.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def region(data: HeadModelData, name: str) -> np.ndarray:
    """Vertex indices (int64) of the region ``name``; KeyError listing the available names."""
    try:
        return data.regions[name]
    except KeyError:
        available = ", ".join(sorted(data.regions)) or "none"
        raise KeyError(f"head model '{data.name}' has no region '{name}'; available: {available}") from None

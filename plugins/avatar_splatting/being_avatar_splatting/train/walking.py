"""Triangle walking: a Gaussian whose barycentric coordinates leave its triangle moves on to the
neighbouring triangle across the edge it crossed (SplattingAvatar, Sec. 3.2), so Gaussians can
slide over the whole mesh surface while staying embedded in it. Walking happens on the rest mesh.
"""

from __future__ import annotations

import torch


def edge_neighbours(faces: torch.Tensor) -> torch.Tensor:
    """faces [F, 3] -> [F, 3] int64: the face across the edge opposite each corner (-1 on a border).

    Edge k of face f joins corners (k+1) % 3 and (k+2) % 3, the edge a point crosses when its
    k-th barycentric coordinate turns negative. On a non-manifold edge (3+ faces) each face is
    paired with one other face of that edge."""
    faces = faces.to(torch.int64)
    F = faces.shape[0]
    a = faces[:, [1, 2, 0]].reshape(-1)
    b = faces[:, [2, 0, 1]].reshape(-1)
    key = torch.minimum(a, b) * (int(faces.max()) + 1) + torch.maximum(a, b)  # [3F], edge f*3+k
    key_sorted, order = torch.sort(key, stable=True)
    same = key_sorted[1:] == key_sorted[:-1]
    out = torch.full((3 * F,), -1, dtype=torch.int64, device=faces.device)
    first, second = order[:-1][same], order[1:][same]
    out[first] = second // 3
    out[second] = first // 3
    return out.view(F, 3)


def barycentric(points: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Barycentric coordinates of points [N, 3] projected onto the planes of triangles [N, 3, 3]
    (corners along dim 1) -> [N, 3], summing to 1 (negative outside the triangle)."""
    e0, e1, d = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], points - tri[:, 0]
    d00, d01, d11 = (e0 * e0).sum(-1), (e0 * e1).sum(-1), (e1 * e1).sum(-1)
    d20, d21 = (d * e0).sum(-1), (d * e1).sum(-1)
    denom = (d00 * d11 - d01 * d01).clamp_min(1e-30)
    v = (d11 * d20 - d01 * d21) / denom
    w = (d00 * d21 - d01 * d20) / denom
    return torch.stack([1 - v - w, v, w], dim=-1)


def walk(face_ids: torch.Tensor, bary: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor,
         neighbours: torch.Tensor, max_steps: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move Gaussians that left their triangle to the triangle they walked into.

    face_ids [N] int64, bary [N, 3] (rows sum to 1, may be negative), vertices [V, 3] (rest mesh),
    faces [F, 3], neighbours [F, 3] from :func:`edge_neighbours`. Each step crosses the edge of
    the most negative coordinate and re-expresses the same surface point in the neighbour (in
    its plane); after ``max_steps`` (or at a border) the coordinates are clamped into the
    triangle. Returns (face_ids [N], bary [N, 3] inside their triangles, moved [N] bool).
    """
    face_ids, bary = face_ids.clone(), bary.clone()
    moved = torch.zeros_like(face_ids, dtype=torch.bool)
    for _ in range(max_steps):
        low, k = bary.min(dim=-1)
        out = torch.nonzero(low < 0).squeeze(1)
        if out.numel() == 0:
            break
        nxt = neighbours[face_ids[out], k[out]]
        ok = nxt >= 0
        out, nxt = out[ok], nxt[ok]
        if out.numel() == 0:
            break
        point = (bary[out, :, None] * vertices[faces[face_ids[out]]]).sum(1)
        bary[out] = barycentric(point, vertices[faces[nxt]])
        face_ids[out] = nxt
        moved[out] = True
    inside = bary.clamp_min(0.0)
    bary = inside / inside.sum(-1, keepdim=True).clamp_min(1e-12)
    return face_ids, bary, moved

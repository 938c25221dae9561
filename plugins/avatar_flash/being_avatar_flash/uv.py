"""Where FlashAvatar's Gaussians live: one at the centre of every texel of a UV map that a
triangle of the head mesh covers (Xiang et al., CVPR 2024: a 128 x 128 map), minus the triangles
at the neck's cut edge, which only ever show as a seam."""

from __future__ import annotations

import numpy as np

from being_kernel import InputError
from being_kernel.head import HeadModelData

#: The head-model region whose triangles get no Gaussians (FLAME_masks.pkl's "boundary" ring,
#: the demo head's last neck row).
CUT_REGION = "neck_boundary"


def uv_texels(uv_coords: np.ndarray, uv_faces: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize the UV layout at ``size`` x ``size``.

    uv_coords [Vt, 2] in [0, 1] (v up), uv_faces [F, 3] -> (face_ids [N] int64, bary [N, 3] float32),
    one row per covered texel in row-major order from the top-left texel. A texel two triangles
    cover (a shared edge, overlapping charts) goes to the lower triangle index."""
    tri = uv_coords[uv_faces].astype(np.float64) * size  # [F, 3, 2] in texel units, v up
    tri[..., 1] = size - tri[..., 1]  # row axis down
    lo = np.clip(np.floor(tri.min(1) - 0.5), 0, size - 1).astype(np.int64)  # texel-centre bounds [F, 2]
    hi = np.clip(np.ceil(tri.max(1) - 0.5), 0, size - 1).astype(np.int64)
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    count = nx * ny
    face = np.repeat(np.arange(len(tri)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # candidate index within its box
    col = lo[face, 0] + k % nx[face]
    row = lo[face, 1] + k // nx[face]
    p = np.stack([col + 0.5, row + 0.5], -1)
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    w0 = 1.0 - w1 - w2
    inside = ok & (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
    texel = (row * size + col)[inside]
    face, bary = face[inside], np.stack([w0, w1, w2], -1)[inside]
    order = np.lexsort((face, texel))  # by texel, then by face: the first of a texel is kept
    texel, face, bary = texel[order], face[order], bary[order]
    first = np.ones(len(texel), bool)
    first[1:] = texel[1:] != texel[:-1]
    bary = np.clip(bary[first], 0.0, 1.0)
    return face[first].astype(np.int64), (bary / bary.sum(1, keepdims=True)).astype(np.float32)


def head_texels(head: HeadModelData, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussians' triangles and barycentric coordinates on ``head`` (see ``uv_texels``), without
    the triangles that touch the neck's cut edge (region CUT_REGION, when the model names it)."""
    if head.uv_coords is None or head.uv_faces is None:
        raise InputError(f"head model '{head.name}' has no texture coordinates: FlashAvatar places its "
                         "Gaussians on the UV map", hint="use a head model with uv_coords and uv_faces "
                         "(FLAME's head_template.obj, or the demo head), or --avatar splatting")
    face_ids, bary = uv_texels(head.uv_coords, head.uv_faces, size)
    if CUT_REGION in head.regions:
        cut = np.zeros(head.num_vertices, bool)
        cut[head.regions[CUT_REGION]] = True
        keep = ~cut[head.faces[face_ids]].any(1)
        face_ids, bary = face_ids[keep], bary[keep]
    if len(face_ids) == 0:
        raise InputError(f"head model '{head.name}': its UV map covers no texel at {size} x {size}")
    return face_ids, bary

"""Landmark embeddings: where each mediapipe face-mesh landmark lies on the head model's surface.

An embedding is a triangle and barycentric coordinates per landmark, in the file format MICA and
metrical-tracker publish for FLAME (``mediapipe_landmark_embedding.npz``: ``lmk_face_idx`` [L],
``lmk_b_coords`` [L, 3], ``landmark_indices`` [L], the mediapipe index of each row). Files are
read with ``allow_pickle=False``.

FLAME's embedding comes with MICA and metrical-tracker (it may not be redistributed with Being);
the demo head's is built in: ``build_embedding`` renders the head from several directions, runs
the face mesh on each render, lifts every detected landmark onto the surface through the
renderer's face ids, and keeps the landmarks whose lifted points agree across the views (the
face-outline landmarks, which slide over the surface as the head turns, do not, and are left
out, as in MICA's embedding). ``scripts/build_demo_embedding.py`` writes the shipped file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from being_kernel import InputError
from being_kernel.head import HeadModelData

FILENAME = "mediapipe_landmark_embedding.npz"
DEMO_FILE = "demo_mediapipe_embedding.npz"
ENV = "BEING_LANDMARK_EMBEDDING"
#: views the demo embedding is built from: (yaw, pitch) degrees
VIEWS = ((0.0, 0.0), (-22.0, 0.0), (22.0, 0.0), (0.0, -12.0), (0.0, 12.0), (-15.0, 8.0), (15.0, -8.0))
#: a landmark is kept when its lifted points from every view lie within this of their medoid
AGREE_M = 0.004
MIN_VIEWS = 5


@dataclass(frozen=True)
class LandmarkEmbedding:
    """L landmarks on a mesh: face_idx [L] int64, bary [L, 3] float32, mediapipe [L] int64."""

    face_idx: np.ndarray
    bary: np.ndarray
    mediapipe: np.ndarray

    def vertex_ids(self, faces: np.ndarray) -> np.ndarray:
        """The distinct vertices the landmarks need, [V'] int64, sorted."""
        return np.unique(faces[self.face_idx].reshape(-1))

    def points(self, vertices: torch.Tensor, faces: np.ndarray, vertex_ids: np.ndarray | None = None) -> torch.Tensor:
        """Landmark positions [T, L, 3] from posed vertices [T, V, 3] (or [T, V', 3] of
        ``vertex_ids`` only)."""
        corners = faces[self.face_idx]  # [L, 3]
        if vertex_ids is not None:
            corners = np.searchsorted(vertex_ids, corners)
        idx = torch.as_tensor(corners, device=vertices.device)
        bary = torch.as_tensor(self.bary, device=vertices.device, dtype=vertices.dtype)
        return (vertices[:, idx] * bary[None, :, :, None]).sum(dim=2)


def load_embedding(path: str | Path, head: HeadModelData) -> LandmarkEmbedding:
    """Read an embedding file (MICA's format) and check it against ``head``; InputError otherwise."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in ("lmk_face_idx", "lmk_b_coords", "landmark_indices")}
    except KeyError as e:
        raise InputError(f"{path}: not a landmark embedding (missing array {e})",
                         hint="give MICA's / metrical-tracker's mediapipe_landmark_embedding.npz") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read the landmark embedding ({e})",
                         hint="give MICA's / metrical-tracker's mediapipe_landmark_embedding.npz") from None
    face_idx = arrays["lmk_face_idx"].astype(np.int64).reshape(-1)
    bary = arrays["lmk_b_coords"].astype(np.float32).reshape(-1, 3)
    mp_idx = arrays["landmark_indices"].astype(np.int64).reshape(-1)
    if not len(face_idx) == len(bary) == len(mp_idx) or len(face_idx) == 0:
        raise InputError(f"{path}: lmk_face_idx, lmk_b_coords and landmark_indices must have the same, "
                         f"non-zero length (got {len(face_idx)}, {len(bary)}, {len(mp_idx)})")
    if face_idx.min() < 0 or face_idx.max() >= len(head.faces) or mp_idx.min() < 0 or mp_idx.max() >= 478:
        raise InputError(f"{path}: indices out of range for head model '{head.name}' ({len(head.faces)} faces) "
                         "and mediapipe's 478 landmarks", hint="the embedding was made for another head model")
    if not np.all(np.isfinite(bary)) or np.abs(bary.sum(1) - 1).max() > 1e-3:
        raise InputError(f"{path}: lmk_b_coords rows must be barycentric coordinates (summing to 1)")
    return LandmarkEmbedding(face_idx, bary, mp_idx)


def demo_embedding(head: HeadModelData) -> LandmarkEmbedding:
    """The demo head's built-in embedding (``being_prepare/data/demo_mediapipe_embedding.npz``)."""
    with resources.as_file(resources.files("being_prepare") / "data" / DEMO_FILE) as p:
        return load_embedding(p, head)


def find_embedding(head: HeadModelData, head_ref: str, explicit: str | Path | None = None,
                   flame_dir: Path | None = None) -> LandmarkEmbedding:
    """The embedding for ``head``: ``explicit``, then ``$BEING_LANDMARK_EMBEDDING``, then (FLAME)
    ``mediapipe_landmark_embedding.npz`` beside the FLAME file; the demo head's built-in one."""
    for candidate in (explicit, os.environ.get(ENV) or None):
        if candidate is not None:
            p = Path(candidate).expanduser()
            if not p.is_file():
                raise InputError(f"landmark embedding {p} not found",
                                 hint=f"fix --embedding or ${ENV}, or remove it to use the default")
            return load_embedding(p, head)
    if head_ref == "demo":
        return demo_embedding(head)
    if flame_dir is not None and (flame_dir / FILENAME).is_file():
        return load_embedding(flame_dir / FILENAME, head)
    raise InputError(
        f"no landmark embedding for head model '{head.name}'",
        hint=f"get {FILENAME} (published with MICA, github.com/Zielon/MICA, and metrical-tracker: "
             f"data/FLAME2020/{FILENAME}) and put it beside the FLAME file"
             f"{f' in {flame_dir}' if flame_dir else ''}, or pass --embedding PATH",
    )


def _view_cameras(size: int):  # noqa: ANN202 - being_kernel.cameras.Cameras
    from being_kernel.head import portrait_camera
    from being_kernel.head import axis_angle_to_matrix
    from being_kernel.api import Cameras

    cam = portrait_camera(size)
    R, t, K = cam.R.double(), cam.t.double(), cam.K.double()
    rs, ts = [], []
    for yaw, pitch in VIEWS:
        rot = axis_angle_to_matrix(torch.tensor([np.radians(pitch), 0, 0], dtype=torch.float64)) @ \
            axis_angle_to_matrix(torch.tensor([0, np.radians(yaw), 0], dtype=torch.float64))
        rs.append(R[0] @ rot)
        ts.append(t[0])
    n = len(VIEWS)
    return Cameras(torch.stack(rs), torch.stack(ts), K.expand(n, 3, 3).clone(), size, size)


def build_embedding(head: HeadModelData, detect, size: int = 768) -> tuple[LandmarkEmbedding, np.ndarray]:  # noqa: ANN001
    """Build an embedding for a textured head model by lifting detected landmarks onto its
    surface (see the module doc). ``detect(rgb uint8 [H, W, 3]) -> [478, 2] pixels or None``.
    Returns the embedding and each kept landmark's spread across the views (metres, [L])."""
    from being_kernel.render import render_mesh

    cams = _view_cameras(size)
    verts = torch.from_numpy(head.v_template).double()
    faces = torch.from_numpy(head.faces)
    shading = {k: torch.from_numpy(getattr(head, k)) for k in ("uv_coords", "uv_faces", "texture")}
    images = render_mesh(verts, faces, cams, background=(0.35, 0.4, 0.45), supersample=3, **shading)
    lifted = np.full((len(VIEWS), 478, 3), np.nan)
    samples: dict[tuple[int, int], tuple[int, np.ndarray]] = {}
    cam_pts, _ = cams.project(verts[None].expand(len(VIEWS), -1, -1))  # [B, V, 2]
    depth = (verts @ cams.R.transpose(1, 2) + cams.t[:, None])[..., 2]  # [B, V]
    for b in range(len(VIEWS)):
        rgb = (images.rgb[b].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        found = detect(rgb)
        if found is None:
            continue
        for k, (x, y) in enumerate(found):
            ix, iy = int(x), int(y)
            if not (0 <= ix < size and 0 <= iy < size):
                continue
            f = int(images.face_ids[b, iy, ix])
            if f < 0:
                continue
            corners = head.faces[f]
            p = cam_pts[b, corners].numpy()  # [3, 2]
            m = np.array([[p[0, 0] - p[2, 0], p[1, 0] - p[2, 0]], [p[0, 1] - p[2, 1], p[1, 1] - p[2, 1]]])
            try:
                l01 = np.linalg.solve(m, np.array([x - p[2, 0], y - p[2, 1]]))
            except np.linalg.LinAlgError:
                continue
            screen = np.clip(np.array([l01[0], l01[1], 1 - l01.sum()]), 0, 1)
            persp = screen / depth[b, corners].numpy()  # perspective-correct barycentrics
            bary = persp / persp.sum()
            lifted[b, k] = bary @ head.v_template[corners].astype(np.float64)
            samples[(b, k)] = (f, bary)
    keep, spreads, face_idx, barys = [], [], [], []
    for k in range(478):
        pts = lifted[:, k]
        views = np.flatnonzero(np.isfinite(pts[:, 0]))
        if len(views) < MIN_VIEWS:
            continue
        d = np.linalg.norm(pts[views, None] - pts[None, views], axis=-1)  # [n, n]
        medoid = views[int(np.argmin(d.sum(1)))]
        spread = float(np.linalg.norm(pts[views] - pts[medoid], axis=-1).max())
        if spread > AGREE_M:
            continue
        f, bary = samples[(int(medoid), k)]
        keep.append(k)
        spreads.append(spread)
        face_idx.append(f)
        barys.append(bary)
    emb = LandmarkEmbedding(np.array(face_idx, np.int64), np.array(barys, np.float32), np.array(keep, np.int64))
    return emb, np.array(spreads)


def save_embedding(emb: LandmarkEmbedding, path: str | Path) -> Path:
    """Write ``emb`` in MICA's file format."""
    path = Path(path)
    np.savez(path, lmk_face_idx=emb.face_idx, lmk_b_coords=emb.bary, landmark_indices=emb.mediapipe)
    return path

"""What FlashAvatar training reads once and keeps on the device: the frames and head masks (the
kernel's FrameStore), the posed meshes and head rotations (the kernel's pose_tracking), the
network's condition per frame, and a mouth mask per frame.

The public code takes the mouth mask from a face-parsing network. Datasets here carry head masks
only, so the mask is derived from the tracking instead: the pixels where the tracked mesh's
nearest surface is a triangle touching the lips or the mouth interior (the head model's regions),
which is the parsing network's "mouth" class wherever the tracking fits.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

from being_kernel.datasets import TrackedVideo
from being_kernel.head import HeadModelData
from being_kernel.render import Cameras, render_mesh
from being_kernel.train import FrameStore, PosedTracking, pose_tracking

from ..network import condition
from ..posing import HEAD_JOINT

#: Head-model regions whose triangles make the mouth mask.
MOUTH_REGIONS = ("lips", "mouth_interior")
#: Frames per mesh render when making the masks.
MASK_CHUNK = 16


@dataclass
class TrainingData:
    """frames: images, head masks and cameras of all T frames; track: the posed tracking; head_rotation
    [T, 3, 3]; cond [T, C]; mouth [T, H, W, 1] uint8 (0 or 255; None when the head model names no
    mouth region); train / test [N] int64 dataset indices; all on one device."""

    frames: FrameStore
    track: PosedTracking
    head_rotation: torch.Tensor
    cond: torch.Tensor
    mouth: torch.Tensor | None
    train: torch.Tensor
    test: torch.Tensor

    def mouth_mask(self, idx: torch.Tensor) -> torch.Tensor | None:
        """[B, H, W, 1] float in {0, 1} for dataset frames ``idx`` [B] (None without a mouth region)."""
        return None if self.mouth is None else self.mouth[idx].float() / 255.0


def mouth_triangles(head: HeadModelData) -> torch.Tensor | None:
    """[F] bool: triangles with a vertex in a MOUTH_REGIONS region (None when the model has none)."""
    names = [r for r in MOUTH_REGIONS if r in head.regions]
    if not names:
        return None
    on = np.zeros(head.num_vertices, bool)
    for r in names:
        on[head.regions[r]] = True
    return torch.from_numpy(on[head.faces].any(1))


def mouth_masks(vertices: torch.Tensor, faces: torch.Tensor, mouth: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """vertices [T, V, 3] posed meshes seen by ``cameras`` (T) -> [T, H, W, 1] uint8 masks (255 where
    the nearest surface at the pixel centre is a ``mouth`` [F] triangle)."""
    out = []
    lookup = torch.cat([mouth.to(vertices.device), torch.zeros(1, dtype=torch.bool, device=vertices.device)])
    for a in range(0, vertices.shape[0], MASK_CHUNK):
        b = min(a + MASK_CHUNK, vertices.shape[0])
        ids = render_mesh(vertices[a:b], faces, cameras[a:b], supersample=1).face_ids  # [B, H, W], -1 empty
        out.append(lookup[ids].to(torch.uint8)[..., None] * 255)  # index -1 reads the trailing False
    return torch.cat(out)


def load_data(video: TrackedVideo, n_expression: int, device: torch.device) -> TrainingData:
    """Read every frame of ``video`` onto ``device`` and derive the conditions and mouth masks."""
    track = pose_tracking(video, device)
    frames = FrameStore.read(video, device)
    mouth = mouth_triangles(track.head)
    masks = None if mouth is None else mouth_masks(track.posed.vertices, track.model.faces, mouth, frames.cameras)
    train, test = video.split()
    return TrainingData(frames=frames, track=track, head_rotation=track.posed.transforms[:, HEAD_JOINT, :3, :3],
                        cond=condition(video.motion.to(device), n_expression), mouth=masks,
                        train=torch.tensor(train, dtype=torch.int64, device=device),
                        test=torch.tensor(test, dtype=torch.int64, device=device))

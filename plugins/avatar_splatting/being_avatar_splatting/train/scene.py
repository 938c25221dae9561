"""What SplattingAvatar training reads once and keeps on the device: the tracked video's frames and
masks (the kernel's FrameStore), posed meshes, and the head model's rest mesh (for triangle areas
and walking).

Posed vertices of every frame are computed once: the tracking is fixed during training, so
skinning need not run per step.
"""

from __future__ import annotations

from dataclasses import dataclass
import torch

from being_kernel.datasets import TrackedVideo
from being_kernel.head import HeadModelData, triangle_frames
from being_kernel.train import FrameStore, pose_tracking

from .walking import edge_neighbours


@dataclass
class Scene:
    """frames (images, masks, cameras of all T frames), vertices [T, V, 3] posed meshes, roots
    [T, 3] posed root joints (neck base), rest_vertices [V, 3], faces [F, 3], rest_area [F],
    neighbours [F, 3] (walking), train / test frame indices; all on one device."""

    frames: FrameStore
    vertices: torch.Tensor
    roots: torch.Tensor
    rest_vertices: torch.Tensor
    faces: torch.Tensor
    rest_area: torch.Tensor
    neighbours: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor
    motion_space: str
    shape: torch.Tensor
    head: HeadModelData  # the tracking's head model (its regions name the demo head's parts)


def load_scene(video: TrackedVideo, device: torch.device) -> Scene:
    """Read every frame of ``video`` (images, masks, meshes) onto ``device``."""
    track = pose_tracking(video, device)
    faces = track.model.faces.to(device)
    rest = track.rest_vertices
    train, test = video.split()
    return Scene(frames=FrameStore.read(video, device),
                 vertices=track.posed.vertices, roots=track.posed.joints[:, 0],
                 rest_vertices=rest, faces=faces, rest_area=triangle_frames(rest[None], faces)[3][0].clamp_min(1e-12),
                 neighbours=edge_neighbours(faces), train=torch.tensor(train, dtype=torch.int64, device=device),
                 test=torch.tensor(test, dtype=torch.int64, device=device), motion_space=video.motion.space,
                 shape=track.shape, head=track.head)

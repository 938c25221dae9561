"""A tracked video's meshes, posed once: the tracking is fixed during training, so a trainer need
not run the skinning per step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..head import FlameModel, FlameOutput, HeadModelData
from ..types import Motion


@dataclass
class PosedTracking:
    """Every frame of a tracked video posed on one device.

    head: the tracking's head model; model: its skinning; shape [S] identity (CPU, may be empty);
    posed: FlameOutput of all T frames (vertices [T, V, 3], joints [T, J, 3], transforms [T, J, 4, 4]);
    rest_vertices [V, 3]: the rest mesh with the shape applied."""

    head: HeadModelData
    model: FlameModel
    shape: torch.Tensor
    posed: FlameOutput
    rest_vertices: torch.Tensor


def pose_tracking(video, device: torch.device, chunk: int = 64) -> PosedTracking:  # noqa: ANN001 - a TrackedVideo
    """Pose ``video``'s motion (in chunks of ``chunk`` frames) and its rest mesh on ``device``."""
    head = video.head()
    model = FlameModel(head).to(device).eval()
    shape = video.shape.to(device) if video.shape.numel() else None
    with torch.no_grad():
        parts = [model(video.motion.slice(a, min(a + chunk, len(video))).to(device), shape)
                 for a in range(0, len(video), chunk)]
        rest = model(Motion.zeros(1, 0, space=video.motion.space, device=device), shape).vertices[0]
    posed = FlameOutput(*(torch.cat([getattr(p, k) for p in parts]) for k in ("vertices", "joints", "transforms")))
    return PosedTracking(head=head, model=model, shape=video.shape.float().cpu(), posed=posed, rest_vertices=rest)

"""Photometric refinement: the landmark fit corrected by the pixels themselves.

Landmarks pin the face's outline and features but leave what they do not see: small pitch errors
(the vertical foreshortening of a nearly flat landmark set), the exact lip and eyelid positions.
Here the face region of the head model is drawn as flat Gaussians, one per triangle, each with a
colour learned for the clip (the person's appearance), with the kernel's differentiable Gaussian
rasteriser (gsplat on a GPU, the project's own renderer on the CPU), composited over the video
frame itself, and pose, expression, jaw, eyes and eyelids follow the L1 difference to the frame
together with the landmark term and the priors of the landmark fit. Coarse to fine: first at
``scales[0]`` pixels, then at each next size; each step takes a random minibatch of frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from being_kernel.head import FlameModel
from being_kernel.render import MeshGaussians, rasterize

from .tracking import Tracker

#: triangles within this distance (rest pose) of a landmark take part: the face the landmarks see
FACE_RADIUS_M = 0.012
#: each Gaussian is a disc of this radius relative to sqrt(triangle area), a tenth as thick
DISC = (0.8, 0.8, 0.08)


def face_triangles(tracker: Tracker) -> np.ndarray:
    """Triangles [F'] whose rest centroid lies within FACE_RADIUS_M of an embedded landmark."""
    head = tracker.head
    centroids = head.v_template[head.faces].mean(1)  # [F, 3]
    rest = tracker.rest.detach().cpu().numpy()  # [L, 3]
    d = np.min(((centroids[:, None] - rest[None]) ** 2).sum(-1), axis=1)
    return np.flatnonzero(d < FACE_RADIUS_M**2)


class PhotometricRefiner:
    """Refines ``tracker``'s parameters on ``frames(ids) -> float [B, H, W, 3]`` in [0, 1]
    (the output images, ``tracker.size`` square)."""

    def __init__(self, tracker: Tracker, frames: Callable[[Sequence[int]], torch.Tensor], *, seed: int = 0,
                 lr_scale: float = 0.5) -> None:
        self.tr, self.frames = tracker, frames
        head, dev = tracker.head, tracker.device
        tri = face_triangles(tracker)
        self.vertex_ids = np.unique(head.faces[tri].reshape(-1))
        self.model = FlameModel(head, vertex_ids=self.vertex_ids).to(dev)
        local_faces = torch.from_numpy(np.searchsorted(self.vertex_ids, head.faces[tri])).to(dev)
        rest = torch.from_numpy(head.v_template[self.vertex_ids]).float().to(dev)
        e1, e2 = rest[local_faces[:, 1]] - rest[local_faces[:, 0]], rest[local_faces[:, 2]] - rest[local_faces[:, 0]]
        rest_area = 0.5 * torch.linalg.cross(e1, e2).norm(dim=-1).clamp_min(1e-12)
        n = len(tri)
        self.gaussians = MeshGaussians(
            face_ids=torch.arange(n, device=dev), bary=torch.full((n, 3), 1 / 3, device=dev),
            offset=torch.zeros(n, device=dev), rotation=torch.tensor([1.0, 0, 0, 0], device=dev).repeat(n, 1),
            scale=torch.tensor(DISC, device=dev).repeat(n, 1), opacity=torch.ones(n, device=dev),
            color=torch.zeros(n, 3, device=dev), faces=local_faces, rest_area=rest_area)
        if tracker.demo_identity:
            self.basis = tracker.full_basis[torch.from_numpy(self.vertex_ids)].to(dev)
        self.color = torch.zeros(n, 3, device=dev, requires_grad=True)
        self.gen = torch.Generator().manual_seed(seed)
        self.lr_scale = lr_scale

    def vertices(self, ids: torch.Tensor) -> torch.Tensor:
        tr = self.tr
        if tr.demo_identity:
            return self.model(tr.motion(ids)).vertices + tr.identity_offsets(self.basis)[None]
        return self.model(tr.motion(ids), tr.p["ident"]).vertices

    def render(self, ids: torch.Tensor, size: int, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The face drawn over ``background`` [B, size, size, 3] for frames ``ids``, and its
        coverage [B, size, size, 1]."""
        from being_kernel.api import Cameras

        tr = self.tr
        means, quats, scales = self.gaussians.pose(self.vertices(ids))
        s = size / tr.size
        f = tr.focal() * s
        K = torch.zeros(len(ids), 3, 3, device=tr.device)
        K[:, 0, 0], K[:, 1, 1] = f, f
        K[:, :2, 2] = tr.pp * s
        K[:, 2, 2] = 1
        cams = Cameras(tr.cameras_R(ids), tr.translation(ids), K, size, size)
        out = rasterize(means, quats, scales, self.gaussians.opacity, self.color, cams)
        return out.rgb + (1 - out.alpha) * background, out.alpha

    def _frames_at(self, size: int, chunk: int = 32) -> torch.Tensor:
        """Every frame area-resampled to ``size`` x ``size``, uint8 [T, size, size, 3] on the device."""
        out = []
        for a in range(0, self.tr.T, chunk):
            imgs = self.frames(list(range(a, min(a + chunk, self.tr.T)))).to(self.tr.device)
            if imgs.shape[1] != size:
                imgs = torch.nn.functional.interpolate(imgs.permute(0, 3, 1, 2), size=(size, size),
                                                       mode="area").permute(0, 2, 3, 1)
            out.append((imgs * 255).round().clamp(0, 255).to(torch.uint8))
        return torch.cat(out)

    def _init_colors(self) -> None:
        """Each Gaussian's colour: the median of the frames' pixels where it lands, over up to
        16 frames spread through the clip, from frames where its triangle faces the camera."""
        tr = self.tr
        ids = torch.linspace(0, tr.T - 1, min(16, tr.T)).round().long().unique()
        with torch.no_grad():
            imgs = self.frames(ids.tolist()).to(tr.device)  # [B, H, W, 3]
            means, _, _ = self.gaussians.pose(self.vertices(ids))
            px = tr.project(means, ids)  # [B, N, 2] output pixels
            grid = (px / tr.size * 2 - 1)[:, :, None]  # [B, N, 1, 2]
            samples = torch.nn.functional.grid_sample(imgs.permute(0, 3, 1, 2), grid, align_corners=False)[..., 0]
            samples = samples.permute(0, 2, 1)  # [B, N, 3]
            self.color.copy_(samples.median(dim=0).values.clamp(0, 1))

    def refine(self, scales: Sequence[int] = (128, 256), epochs: float = 3.0, batch: int | None = None,
               progress=None, min_steps: int = 1) -> None:  # noqa: ANN001 - progress(stage, step, steps) or None
        """``epochs``: how often each frame is seen at each scale, in at least ``min_steps`` steps
        per scale (a photo is one frame); ``batch``: frames per step (default 32 on a GPU, whose
        cost per step hardly grows with it, 8 on the CPU)."""
        tr = self.tr
        batch = batch or (32 if tr.device.type == "cuda" else 8)
        self._init_colors()
        names = ["rot", "trans", "expr", "jaw", "eyes", "lids"]
        for size in scales:
            opt = tr._optimizer(names, scale=self.lr_scale)
            opt.add_param_group({"params": [self.color], "lr": 0.02})
            frames = self._frames_at(size)  # uint8 [T, size, size, 3] on the device: each PNG read once per scale
            steps = max(min_steps, int(np.ceil(epochs * tr.T / batch)))
            for step in range(steps):
                ids = torch.randperm(tr.T, generator=self.gen)[:batch].sort().values
                target = frames[ids.to(frames.device)].float() / 255
                opt.zero_grad()
                image, alpha = self.render(ids.to(tr.device), size, target)
                # mean L1 over the pixels the face covers, in [0, 1] colour units
                photo = (image - target).abs().sum(-1).sum() / alpha.sum().clamp_min(1.0)
                landmarks = tr.landmark_loss(tr.project(tr.landmarks3d()))
                loss = tr.cfg.photometric_weight * photo + landmarks + tr.rigid_prior() + tr.face_prior()
                loss.backward()
                opt.step()
                tr.clamp()
                if progress:
                    progress(f"photometric {size}px", step + 1, steps)

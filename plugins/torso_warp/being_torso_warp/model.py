"""A trained warped torso: the torso layer for a batch of head poses, in either mode, and the frame.

The layer is computed only inside ``box`` (x0, y0, x1, y1 pixels: where the torso was seen in
training, with a margin); elsewhere the frame is the background plate. A frame is
``plate <- torso layer (straight rgb, alpha) <- head (premultiplied RGBA)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .anchors import Anchors, apply_homography, fit_homography
from .field import POSE_DIM, TorsoField
from .pose import TorsoCamera


class WarpModel(nn.Module):
    """field: the texture and MLPs; anchors (the full mode's); camera; box; plate [H, W, 3]; baked
    [4, Ht, Wt] and fast_anchors, or None: the fast mode's texture and anchors, made at export."""

    def __init__(self, field: TorsoField, anchors: Anchors, camera: TorsoCamera, box: tuple[int, int, int, int],
                 plate: torch.Tensor, baked: torch.Tensor | None = None, fast_anchors: Anchors | None = None) -> None:
        super().__init__()
        self.field, self.anchors, self.camera, self.box = field, anchors, camera, tuple(int(v) for v in box)
        self.fast_anchors = fast_anchors
        self.register_buffer("plate", plate.float())
        self.register_buffer("baked", baked if baked is not None else torch.zeros(0))
        # the range of the training frames' relative poses: the MLPs see poses clamped to it, so a pose
        # beyond training changes the torso by the anchors' geometry alone, not by MLP extrapolation
        self.register_buffer("pose_lo", torch.full((POSE_DIM,), -1e3))
        self.register_buffer("pose_hi", torch.full((POSE_DIM,), 1e3))
        self._grid: torch.Tensor | None = None

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - keep the camera and the grid on the module's device
        out = super()._apply(fn, recurse)
        self.camera = self.camera.to(self.plate.device)
        self._grid = None
        return out

    def resized(self, size: tuple[int, int]) -> WarpModel:
        """The same torso drawn at output ``size`` (W, H) of the trained aspect ratio: intrinsics, box and
        plate scaled; texture, MLPs and anchors unchanged (they work in frame-relative coordinates)."""
        w0, h0 = self.camera.size
        sx, sy = size[0] / w0, size[1] / h0
        K = self.camera.K.clone()
        K[0] *= sx
        K[1] *= sy
        K[2] = torch.tensor([0.0, 0.0, 1.0], device=K.device)
        cam = TorsoCamera(K, tuple(size), self.camera.R_ref, self.camera.c_ref, self.camera.root)
        x0, y0, x1, y1 = self.box
        box = (int(x0 * sx), int(y0 * sy), min(size[0], math.ceil(x1 * sx)), min(size[1], math.ceil(y1 * sy)))
        plate = F.interpolate(self.plate.permute(2, 0, 1)[None], size=(size[1], size[0]), mode="bilinear",
                              align_corners=False, antialias=True)[0].permute(1, 2, 0)
        out = WarpModel(self.field, self.anchors, cam, box, plate, self.baked if self.baked.numel() else None,
                        self.fast_anchors)
        out.pose_lo.copy_(self.pose_lo)
        out.pose_hi.copy_(self.pose_hi)
        return out

    @property
    def box_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0

    def grid(self) -> torch.Tensor:
        """[P, 2] normalised image coordinates of the box's pixel centres, row by row."""
        if self._grid is None or self._grid.device != self.plate.device:
            x0, y0, x1, y1 = self.box
            w, h = self.camera.size
            dev = self.plate.device
            ys, xs = torch.meshgrid((torch.arange(y0, y1, device=dev) + 0.5) / h,
                                    (torch.arange(x0, x1, device=dev) + 0.5) / w, indexing="ij")
            self._grid = torch.stack([xs, ys], -1).reshape(-1, 2)
        return self._grid

    def anchor_homography(self, R_hc: torch.Tensor, c: torch.Tensor, fast: bool = False) -> torch.Tensor:
        """[B, 3, 3]: per frame, the homography taking the posed anchors' image positions (those inside
        the frame) to their texture positions (``fast``: the fast mode's anchors)."""
        anchors = self.fast_anchors if fast and self.fast_anchors is not None else self.anchors
        seen = anchors.image(R_hc, c, self.camera)
        inside = ((seen > 0) & (seen < 1)).all(-1).float()
        return fit_homography(seen, anchors.target, inside)

    def pose_code(self, R_hc: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The MLPs' pose input [B, C]: the relative pose, clamped to the training range, encoded."""
        pose = self.camera.code(R_hc, c)
        return self.field.pose_code(torch.maximum(torch.minimum(pose, self.pose_hi), self.pose_lo))

    def texture_coords(self, R_hc: torch.Tensor, c: torch.Tensor, points: torch.Tensor, warp: bool = True,
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The full mode's texture coordinates [B, P, 2] of image points [P, 2]: the anchors' homography,
        plus the warp MLP's delta (when ``warp``; returned too, else None)."""
        base = apply_homography(self.anchor_homography(R_hc, c), points)
        if not warp:
            return base, None
        delta = self.field.warp(points, self.pose_code(R_hc, c))
        return base + delta, delta

    def layer(self, R_hc: torch.Tensor, c: torch.Tensor, mode: str, warp: bool = True, colour: bool = True,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The torso inside the box for head rotations R_hc [B, 3, 3] and neck bases c [B, 3]:
        (rgb [B, P, 3] straight, alpha [B, P, 1], delta [B, P, 2] or None). ``mode`` "full" (the
        anchors' homography, the warp MLP's delta, the colour MLP) or "fast" (the homography and the
        baked texture); ``warp`` / ``colour``: whether the full mode's MLPs are on yet (training stages)."""
        grid = self.grid()
        if mode == "fast":
            if not self.baked.numel():
                raise RuntimeError("this torso has no distilled (fast) texture")
            uv = apply_homography(self.anchor_homography(R_hc, c, fast=True), grid)
            texels = self.field.sample(uv, self.baked)
            return texels[..., :3], torch.sigmoid(texels[..., 3:4]), None
        uv, delta = self.texture_coords(R_hc, c, grid, warp)
        rgb, alpha = self.field.shade(self.field.sample(uv), self.pose_code(R_hc, c) if colour else None)
        return rgb, alpha, delta

    def in_frame(self, layer: torch.Tensor) -> torch.Tensor:
        """A layer's values inside the box [B, P, C] -> [B, H, W, C] over the whole frame (0 outside)."""
        B, _, C = layer.shape
        x0, y0, x1, y1 = self.box
        bw, bh = self.box_size
        w, h = self.camera.size
        out = layer.new_zeros(B, h, w, C)
        out[:, y0:y1, x0:x1] = layer.reshape(B, bh, bw, C)
        return out

    def frames(self, rgb: torch.Tensor, alpha: torch.Tensor, heads: torch.Tensor | None) -> torch.Tensor:
        """[B, H, W, 3]: the plate, the layer (rgb [B, P, 3], alpha [B, P, 1]) in the box, then
        ``heads`` [B, H, W, 4] premultiplied over it (None: no head)."""
        B = rgb.shape[0]
        x0, y0, x1, y1 = self.box
        bw, bh = self.box_size
        out = self.plate.expand(B, -1, -1, -1)
        plate_box = out[:, y0:y1, x0:x1]
        torso = plate_box + alpha.reshape(B, bh, bw, 1) * (rgb.reshape(B, bh, bw, 3) - plate_box)
        out = out.clone()
        out[:, y0:y1, x0:x1] = torso
        if heads is not None:
            out = heads[..., :3] + (1 - heads[..., 3:]) * out
        return out

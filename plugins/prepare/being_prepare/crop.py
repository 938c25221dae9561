"""One square crop for the whole clip, around the head.

The crop is fixed for the clip rather than following the head: a fixed crop is a fixed camera
(what the trackers and avatar methods assume: one intrinsic matrix, the head moving in front of
it) and keeps the background plate still. It covers every position the face takes, with a margin
(and more room below for the shoulders with ``full_frame``), and is shifted to stay inside the
video frame; when the margin does not fit, the crop shrinks to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .landmarks import CHIN, FOREHEAD

#: crop side in face heights (forehead-to-chin): the head with hair and a little neck ...
HEAD_SIDE = 2.4
#: ... or head, neck and shoulders; the face then sits in the upper part of the crop
FULL_FRAME_SIDE = 4.0
FULL_FRAME_DROP = 0.6  # the crop centre lies this many face heights below the face centre


@dataclass(frozen=True)
class Crop:
    """A square window of the source frame, resized to ``size`` x ``size``.

    x0, y0: top-left corner in source pixels; side: its side in source pixels (may be fractional).
    """

    x0: float
    y0: float
    side: float
    size: int

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return self.size / self.side

    def to_output(self, points: np.ndarray) -> np.ndarray:
        """Source pixel coordinates [..., 2] to output pixel coordinates."""
        return (np.asarray(points) - np.array([self.x0, self.y0])) * self.scale

    def principal_point(self, width: int, height: int) -> np.ndarray:
        """Where the source frame's centre (the principal point assumed for a phone or webcam
        video) lies in the output image, [2] pixels."""
        return self.to_output(np.array([width / 2.0, height / 2.0]))

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The crop of an RGB uint8 [H, W, 3] source frame, resized to [size, size, 3] (area
        filtering when shrinking, bilinear when enlarging; outside the frame is black)."""
        src = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        h, w = rgb.shape[:2]
        # the output pixel centres in source coordinates, for grid_sample (align_corners=False)
        c = (torch.arange(self.size, dtype=torch.float64) + 0.5) / self.scale
        xs, ys = self.x0 + c, self.y0 + c
        if self.scale < 1:  # shrinking: pre-filter with an area average so edges do not alias
            k = 2 * int(0.5 / self.scale) + 1  # odd, so the average stays centred
            src = torch.nn.functional.avg_pool2d(src, k, stride=1, padding=k // 2, count_include_pad=False)
            src = src[..., :h, :w]
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)  # [S, S, 2] as (x, y)
        grid = torch.stack([grid[..., 0] / w * 2 - 1, grid[..., 1] / h * 2 - 1], dim=-1).float()[None]
        out = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def choose_crop(points: np.ndarray, found: np.ndarray, width: int, height: int, size: int,
                full_frame: bool = False) -> Crop:
    """The clip's crop from the landmarks points [T, 478, 2] (source pixels) of the frames where
    ``found`` [T]: centred on the middle of the face's range of positions, side = the face
    height times HEAD_SIDE (FULL_FRAME_SIDE) plus that range."""
    pts = points[found]
    face_h = float(np.median(np.linalg.norm(pts[:, FOREHEAD] - pts[:, CHIN], axis=-1)))
    centres = pts.mean(axis=1)  # [T', 2]
    lo, hi = np.percentile(centres, 2, axis=0), np.percentile(centres, 98, axis=0)
    centre = (lo + hi) / 2
    side = face_h * (FULL_FRAME_SIDE if full_frame else HEAD_SIDE) + float(np.max(hi - lo))
    if full_frame:
        centre = centre + np.array([0.0, FULL_FRAME_DROP * face_h])
    side = min(side, float(width), float(height))
    x0 = float(np.clip(centre[0] - side / 2, 0, width - side))
    y0 = float(np.clip(centre[1] - side / 2, 0, height - side))
    return Crop(x0, y0, side, size)

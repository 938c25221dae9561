"""The compositor: each head frame placed by its Placement, over a colour, with a soft shadow
shifted by the head's yaw (read from the HeadPose every head frame carries)."""

from typing import Sequence

import torch

from being_kernel.api import FramewiseStream, Frame, TorsoCompositor, TorsoCompositorInfo

SHADOW_PX_PER_RAD = 40.0  # how far the shadow slides per radian of yaw


class PlainTorso(TorsoCompositor):
    def info(self) -> TorsoCompositorInfo:
        return TorsoCompositorInfo(size=tuple(self.config.size))

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        return [self._one(head) for head in heads]

    def open_stream(self) -> FramewiseStream:
        return FramewiseStream(self.composite)  # each frame on its own: streaming equals batch

    def _one(self, head: Frame) -> Frame:
        if head.placement is None or not head.has_alpha:
            raise ValueError(f"plain torso: head frame {head.index} needs premultiplied RGBA and a placement")
        w, h = self.config.size
        canvas = torch.tensor(self.config.color, device=head.image.device).expand(h, w, 3).clone()
        ax, ay = head.placement.anchor_xy
        ox, oy = round(self.config.neck_xy[0] * w - ax), round(self.config.neck_xy[1] * h - ay)
        yaw = float(head.head.global_rot[1]) if head.head is not None else 0.0  # no pose: no slide
        self._paste(canvas, 0.35 * head.image[..., 3:], ox + round(6 + SHADOW_PX_PER_RAD * yaw), oy + 4, shadow=True)
        self._paste(canvas, head.image, ox, oy)
        return Frame(canvas.clamp(0, 1), head.index, head.pts)

    @staticmethod
    def _paste(canvas: torch.Tensor, layer: torch.Tensor, ox: int, oy: int, shadow: bool = False) -> None:
        """Premultiplied ``layer`` [h, w, 4] (or a shadow's alpha [h, w, 1]) "over" ``canvas`` at (ox, oy)."""
        H, W = canvas.shape[:2]
        lh, lw = layer.shape[:2]
        x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + lw, W), min(oy + lh, H)
        if x1 <= x0 or y1 <= y0:
            return
        part = layer[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        region = canvas[y0:y1, x0:x1]
        if shadow:
            canvas[y0:y1, x0:x1] = region * (1 - part)
        else:
            canvas[y0:y1, x0:x1] = part[..., :3] + (1 - part[..., 3:]) * region

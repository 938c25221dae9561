"""The renderer: pose the demo head by FLAME skinning, splat one Gaussian per vertex."""

from dataclasses import replace
from pathlib import Path

import torch

from being_kernel.api import (Cameras, FlameRenderer, FlameRendererInfo, Frame, FramewiseRenderStream, Motion,
                              Placement, Stream, head_poses, safe_torch_load)
from being_kernel.head import FlameModel, build_demo_head, portrait_camera
from being_kernel.render import rasterize

ASSET = "points.pt"  # {"colors": [N, 3], "size": [] metres}, loaded weights-only


def splat(model: FlameModel, motion: Motion, colors: torch.Tensor, cameras: Cameras, size: float,
          start_index: int = 0) -> list[Frame]:
    """Frames of ``motion`` ([T]) through ``cameras`` (1 or T): RGBA, placement, head pose."""
    with torch.no_grad():
        out = model(motion)
    t, n = out.vertices.shape[:2]
    cams = cameras if len(cameras) == t else cameras[[0] * t]
    quats = torch.tensor([1.0, 0, 0, 0]).expand(n, 4)
    img = rasterize(out.vertices, quats, torch.full((n, 3), size), torch.ones(n), colors, cams, backend="cpu")
    rgba = torch.cat([img.rgb, img.alpha], dim=-1)  # over black, rgb is already premultiplied
    root_px, root_z = cams.project(out.joints[:, :1])  # the neck base: where a torso attaches
    poses = head_poses(motion, cameras)
    return [Frame(rgba[i], start_index + i, (start_index + i) / motion.fps,
                  placement=Placement(tuple(root_px[i, 0].tolist()), float(cams.K[i, 0, 0] / root_z[i, 0])),
                  head=poses[i]) for i in range(t)]


class PointsRenderer(FlameRenderer):
    def __init__(self, config) -> None:  # noqa: ANN001 - PointsConfig
        super().__init__(config)
        self.head = build_demo_head()
        self.model = FlameModel(self.head).eval()
        asset = (safe_torch_load(Path(config.path) / ASSET, what="points avatar") if config.path
                 else {"colors": torch.full((self.head.num_vertices, 3), 0.6), "size": torch.tensor(0.004)})
        self.colors, self.size = asset["colors"], float(asset["size"])
        w, h = config.size
        self.camera = portrait_camera(h).resized(w, h)

    def info(self) -> FlameRendererInfo:
        return FlameRendererInfo(motion_spaces=("being-demo-head",), n_expression=self.head.n_expression,
                                 accepts_pose_only=True, size=tuple(self.config.size))

    def _pad(self, motion: Motion) -> Motion:  # pose-only motion arrives with expression [T, 0]
        if motion.n_expression == self.head.n_expression:
            return motion
        return replace(motion, expression=torch.zeros(motion.num_frames, self.head.n_expression))

    def render(self, motion: Motion, start_index: int = 0) -> list[Frame]:
        return splat(self.model, self._pad(motion), self.colors, self.camera, self.size, start_index)

    def render_views(self, motion: Motion, cameras: Cameras) -> list[Frame]:
        return splat(self.model, self._pad(motion), self.colors, cameras, self.size)

    def open_stream(self) -> Stream[Motion, list[Frame]]:
        return FramewiseRenderStream(self.render)  # each frame on its own: streaming equals batch

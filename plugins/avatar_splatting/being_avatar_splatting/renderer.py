"""The ``splatting`` FlameRenderer: SplattingAvatar's rendering path.

Per chunk of ``batch_frames`` motion frames: FLAME-layout skinning (being_kernel.head.FlameModel) gives
posed vertices and joints; each Gaussian follows its triangle (being_kernel.render.MeshGaussians:
barycentric foot point + normal offset, rotation in the triangle frame, scale with sqrt(area));
all frames of the chunk are rasterized in one call (being_kernel.render.rasterize, cpu or gsplat).
Output: premultiplied RGBA (colour over black + alpha), expected depth (inf where empty), the
Placement of the root joint (neck base) and the HeadPose (the motion frame's pose and the camera
rendered through). Every frame depends only on its own motion frame, so the stream is the batch
call chunk by chunk.
"""

from __future__ import annotations

import torch

from being_kernel.api import Cameras, FlameRendererInfo, Frame, Motion, default_device, resolve_device
from being_kernel.datasets import scene_path
from being_kernel.head import FlameModel, resolve_head_model, triangle_frames
from being_kernel.render import (ChunkedHeadRenderer, MeshGaussians, camera_for_size, check_backend, eval_sh,
                                 gaussian_frames, rasterize, view_dirs)

from .avatar import load_avatar
from .spec import SplattingConfig


class SplattingRenderer(ChunkedHeadRenderer):
    """Renders a SplattingAvatar (or the built-in demo avatar) from FLAME-layout motion."""

    config: SplattingConfig

    def __init__(self, config: SplattingConfig) -> None:
        if not isinstance(config, SplattingConfig):
            config = SplattingConfig.model_validate(config)
        super().__init__(config)
        c = self.config
        self.device = resolve_device(c.device) or default_device()
        check_backend(c.backend, self.device)
        if c.path is None:
            from .demo import demo_avatar

            avatar = demo_avatar()
        else:
            avatar = load_avatar(c.path)
        self.avatar = avatar
        # the scene the avatar carries (DIR/scene: its photo's background and torso), reported by info()
        d = avatar.directory
        self.scene = scene_path(d)
        head = resolve_head_model(avatar.head_model, avatar.directory, where=f"avatar {avatar.directory or 'demo'}")
        avatar.check_head(head, str(avatar.directory or "demo avatar"))
        self.model = FlameModel(head).to(self.device).eval()
        self.motion_space = avatar.motion_space or head.motion_space
        self.shape = torch.tensor(avatar.shape, dtype=torch.float32, device=self.device) if avatar.shape else None
        with torch.no_grad():
            rest = self.model(Motion.zeros(1, 0, space=self.motion_space, device=self.device), self.shape).vertices
            rest_area = triangle_frames(rest, self.model.faces)[3][0]
        g = {k: v.to(self.device) for k, v in avatar.gaussians.items()}
        self.gaussians = MeshGaussians(g["face_ids"], g["bary"], g["offset"], g["rotation"], g["scale"], g["opacity"],
                                       g["color"], self.model.faces, rest_area.clamp_min(1e-12))
        self.sh = g.get("sh")
        R, t, K = camera_for_size(avatar.camera, *c.size)
        self.R, self.t, self.K = R.to(self.device), t.to(self.device), K.to(self.device)

    def info(self) -> FlameRendererInfo:
        return FlameRendererInfo(motion_spaces=(self.motion_space,), n_expression=self.model.n_expression,
                                 accepts_pose_only=True, size=tuple(self.config.size), fps=None, has_depth=True,
                                 scene=self.scene, batch_frames=self.frames_per_call)

    def render_chunk(self, motion: Motion, first: int, cams: Cameras | None = None) -> list[Frame]:
        """Frames ``first..`` of ``motion`` ([n] frames) through ``cams`` (n cameras; None: the avatar's)."""
        n = motion.num_frames
        posed = self.model(motion, self.shape)
        means, quats, scales = self.gaussians.pose(posed.vertices)
        own = cams is None
        cams = self.cameras(n) if own else cams
        if self.sh is not None:
            colors = eval_sh(self.sh[None].expand(n, -1, -1, -1), view_dirs(means, cams), self.config.sh_degree)
        else:
            colors = self.gaussians.color
        img = rasterize(means, quats, scales, self.gaussians.opacity, colors, cams, background=None,
                        backend=self.config.backend)
        # the frames report the camera they were rendered through: the avatar's one, or camera i
        return gaussian_frames(img, posed.joints[:, 0], cams, motion, first, self.cameras(1) if own else None)

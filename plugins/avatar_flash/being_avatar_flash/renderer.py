"""The ``flash`` FlameRenderer: FlashAvatar's rendering path.

Per chunk of ``batch_frames`` motion frames: FLAME-layout skinning gives the posed mesh and the
head joint's rotation; the deformation network runs once for all frames of the chunk (its
position half is computed once, when the avatar loads); each Gaussian is placed at its texel's
surface point plus the network's offset (posing.py); all frames are rasterized in one call.
Output frames as every Gaussian renderer's (being_kernel.render.gaussian_frames). Every frame
depends only on its own motion frame, so the stream is the batch call chunk by chunk.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from being_kernel import ConfigError
from being_kernel.api import Cameras, FlameRendererInfo, Frame, Motion, default_device, resolve_device
from being_kernel.datasets import scene_path
from being_kernel.head import FlameModel, resolve_head_model
from being_kernel.render import (ChunkedHeadRenderer, camera_for_size, check_backend, eval_sh, gaussian_frames, rasterize,
                                 view_dirs)

from .avatar import load_avatar
from .network import condition
from .posing import HEAD_JOINT, SurfacePoints, pose_gaussians
from .spec import FlashConfig

HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def network_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the deformation network (None: fp32)."""
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if precision != "fp32" and device.type != "cuda":
        raise ConfigError(f'precision "{precision}" needs a CUDA device', hint='use "auto" or "fp32" on the CPU')
    return HALF.get(precision)


class FlashRenderer(ChunkedHeadRenderer):
    """Renders a trained FlashAvatar from FLAME-layout motion."""

    config: FlashConfig

    def __init__(self, config: FlashConfig) -> None:
        if not isinstance(config, FlashConfig):
            config = FlashConfig.model_validate(config)
        super().__init__(config)
        c = self.config
        if c.path is None:
            raise ConfigError("--avatar flash needs a trained avatar: avatar.path is not set (there is no built-in one)",
                              hint="train one with `being fit --avatar flash --data DATASET --out AVATAR`, then "
                              "--set avatar.path=AVATAR")
        self.device = resolve_device(c.device) or default_device()
        check_backend(c.backend, self.device)
        self.half = network_dtype(c.precision, self.device)
        avatar = load_avatar(c.path)
        self.avatar = avatar
        d = avatar.directory
        self.scene = scene_path(d)
        head = resolve_head_model(avatar.head_model, d, where=f"avatar {d}")
        avatar.check_head(head, str(d))
        self.model = FlameModel(head).to(self.device).eval()
        self.n_expression = avatar.network["n_expression"]
        self.motion_space = avatar.motion_space or head.motion_space
        self.shape = torch.tensor(avatar.shape, dtype=torch.float32, device=self.device) if avatar.shape else None
        g = {k: v.to(self.device) for k, v in avatar.gaussians.items()}
        self.points = SurfacePoints(g["face_ids"], g["bary"], self.model.faces)
        self.rotation, self.scale, self.opacity, self.sh = g["rotation"], g["scale"], g["opacity"], g["sh"]
        self.net = avatar.build_network(str(d)).to(self.device).eval()
        with torch.no_grad():
            self.features = self.net.position_features(g["canonical"])  # [N, hidden], fixed per avatar
        R, t, K = camera_for_size(avatar.camera, *c.size)
        self.R, self.t, self.K = R.to(self.device), t.to(self.device), K.to(self.device)

    def info(self) -> FlameRendererInfo:
        return FlameRendererInfo(motion_spaces=(self.motion_space,), n_expression=self.model.n_expression,
                                 accepts_pose_only=True, size=tuple(self.config.size), fps=None, has_depth=True,
                                 scene=self.scene, batch_frames=self.frames_per_call)

    def deform(self, motion: Motion) -> torch.Tensor:
        """The network's raw outputs [T, N, 10] (float32) for ``motion`` (on the renderer's device)."""
        cond = condition(motion, self.n_expression)
        cast = torch.autocast("cuda", dtype=self.half) if self.half is not None else nullcontext()
        with cast:
            return self.net(self.features, cond).float()

    def render_chunk(self, motion: Motion, first: int, cams: Cameras | None = None) -> list[Frame]:
        """Frames ``first..`` of ``motion`` ([n] frames) through ``cams`` (n cameras; None: the avatar's)."""
        n = motion.num_frames
        posed = self.model(motion, self.shape)
        means, quats, scales = pose_gaussians(self.points, posed.vertices, posed.transforms[:, HEAD_JOINT, :3, :3],
                                              self.deform(motion), self.rotation, self.scale)
        own = cams is None
        cams = self.cameras(n) if own else cams
        # colours above 1 would break premultiplied output (rgb <= alpha); training clamps the same way
        colors = eval_sh(self.sh[None].expand(n, -1, -1, -1), view_dirs(means, cams), self.config.sh_degree).clamp_max(1.0)
        img = rasterize(means, quats, scales, self.opacity, colors, cams, background=None, backend=self.config.backend)
        return gaussian_frames(img, posed.joints[:, 0], cams, motion, first, self.cameras(1) if own else None)

"""``being fit --avatar flash``: FlashAvatar (Xiang et al., CVPR 2024) as a FitMethod of the
kernel's training harness.

Each step renders ``batch_frames`` training frames: the deformation network runs on the frames'
conditions, the Gaussians are posed on the tracked meshes (posing.py) and rasterized over the
harness's background colours, which also replace the masked-out pixels of the ground truth. The
harness's loss is the Huber distance (``photometric="huber"``, delta 0.1) plus LPIPS from a tenth
of training when its weights are on disk; this method adds ``mouth_weight`` x the Huber distance
of the mouth-masked images (data.py), as the public code does. The Gaussians are never densified
or pruned: there is one per texel, as in the paper. SH bands are added every ``sh_interval`` steps.
"""

from __future__ import annotations

from pathlib import Path

import torch

from being_kernel.datasets import TrackedVideo, copy_scene
from being_kernel.head import carry_head_model
from being_kernel.render import check_backend, eval_sh, rasterize, tracked_portrait, view_dirs
from being_kernel.train import FitContext, FitMethod, FitStat, ParamGroup, TrainRender, huber

from ..avatar import FlashAvatar, save_avatar
from ..network import HIDDEN, LAYERS, PE_FREQUENCIES, DeformNet, condition_width
from ..posing import SurfacePoints, pose_gaussians
from ..spec import FlashFitConfig
from ..uv import head_texels
from .data import TrainingData, load_data
from .gaussians import FlashGaussians

#: Adam's epsilon for the network (the public code's default); the Gaussians use 1e-15 as 3DGS.
NETWORK_EPS = 1e-8


class FlashFit(FitMethod):
    """Trains a FlashAvatar on a tracked video; exports a flash avatar directory."""

    adam_eps = 1e-15

    def __init__(self, video: TrackedVideo, config: FlashFitConfig, device: torch.device,
                 generator: torch.Generator) -> None:
        check_backend(config.backend, device, "fit.backend")
        self.video, self.config, self.device, self.generator = video, config, device, generator
        self.head = video.head()
        self.n_expression = self.head.n_expression
        face_ids, bary = head_texels(self.head, config.uv_size)  # InputError without UVs, before reading frames
        self.data: TrainingData = load_data(video, self.n_expression, device)
        faces = self.data.track.model.faces.to(device)
        self.points = SurfacePoints(torch.from_numpy(face_ids).to(device), torch.from_numpy(bary).to(device), faces)
        self.canonical = self.points.on(self.data.track.rest_vertices)  # [N, 3] the network's position input
        self.train_indices, self.test_indices = self.data.train, self.data.test
        self.g: FlashGaussians
        self.net: DeformNet

    # ---- state -------------------------------------------------------------------------------

    def initialize(self) -> None:
        self.g = FlashGaussians.start(self.canonical, self.config.sh_degree)
        self.net = DeformNet(condition_width(self.n_expression), generator=self.generator).to(self.device)

    def parameter_groups(self) -> list[ParamGroup]:
        net = [ParamGroup(f"net.{k}", p, self.config.network_lr, eps=NETWORK_EPS) for k, p in self.net.named_parameters()]
        return self.g.groups() + net

    def state_dict(self) -> dict:
        return {"gaussians": self.g.state_dict(), "net": {k: v.detach() for k, v in self.net.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        self.g = FlashGaussians.from_state_dict(state["gaussians"], self.device)
        self.net = DeformNet(condition_width(self.n_expression)).to(self.device)
        self.net.load_state_dict(state["net"])

    def fingerprint(self) -> dict:
        return {"size": list(self.data.frames.size), "gaussians": len(self.canonical)}

    def stats(self) -> tuple[FitStat, ...]:
        return (FitStat("gaussians", int(self.canonical.shape[0])),)

    # ---- a step ------------------------------------------------------------------------------

    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        c = self.config
        pred = self._render(frames, ctx.background, min(c.sh_degree, ctx.step // c.sh_interval))
        target = self.data.frames.targets(frames, ctx.background)
        losses = {}
        mouth = self.data.mouth_mask(frames)
        if mouth is not None and c.mouth_weight > 0:
            losses["mouth"] = c.mouth_weight * huber(pred * mouth, target * mouth, c.huber_delta)
        return TrainRender(pred, target, losses=losses)

    @torch.no_grad()
    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._render(frames, background, self.config.sh_degree), self.data.frames.targets(frames, background)

    def _render(self, idx: torch.Tensor, background: torch.Tensor, degree: int) -> torch.Tensor:
        """Frames ``idx`` [B] over ``background`` [B, 3] -> rgb [B, H, W, 3]."""
        d, g = self.data, self.g
        cams = d.frames.views(idx)
        raw = self.net(self.net.position_features(self.canonical), d.cond[idx])
        means, quats, scales = pose_gaussians(self.points, d.track.posed.vertices[idx], d.head_rotation[idx], raw,
                                              g.params["rotation"], g.scale)
        colors = eval_sh(g.sh[None].expand(idx.numel(), -1, -1, -1), view_dirs(means, cams), degree).clamp_max(1.0)
        return rasterize(means, quats, scales, g.opacity, colors, cams, background=background,
                         backend=self.config.backend).rgb

    # ---- export ------------------------------------------------------------------------------

    def export(self, directory: Path, name: str) -> None:
        """The avatar directory (avatar.json, gaussians.safetensors, deform.safetensors, scene/ if any)."""
        video, d = self.video, self.data
        ref = carry_head_model(video.head_model, Path(video.root), directory)
        gaussians = {"face_ids": self.points.face_ids.cpu(), "bary": self.points.bary.cpu(),
                     "canonical": self.canonical.cpu(), **self.g.export()}
        avatar = FlashAvatar(name=name, head_model=ref, gaussians=gaussians,
                             network={"n_expression": self.n_expression, "frequencies": PE_FREQUENCIES,
                                      "hidden": HIDDEN, "layers": LAYERS},
                             deform={k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                             camera=tracked_portrait(d.frames.cameras, d.track.posed.joints[:, 0]),
                             uv_size=self.config.uv_size, shape=d.track.shape.tolist(),
                             motion_space=video.motion.space, background=(0.0, 0.0, 0.0))
        save_avatar(directory, avatar)
        copy_scene(video.root, directory)

"""``being fit --avatar splatting``: SplattingAvatar (Shao et al., CVPR 2024) as a FitMethod of the
kernel's training harness.

Each step renders ``batch_frames`` training frames (posed meshes from the tracking, each Gaussian
on its triangle: being_kernel.render.MeshGaussians) over the harness's background colours, which also
replace the masked-out pixels of the ground truth; the harness takes the Adam step on L1 + SSIM
(+ LPIPS). Every ``walk_interval`` steps Gaussians that left their triangle walk on; until
``densify_until`` of training they are cloned, split and pruned (the kernel's optimizer surgery).
The position learning rates decay by 100x over the harness's progress (steps or time budget).

From a single view (a photo's dataset) training starts from the demo avatar and adds the priors
of ``single_view`` for what the photo does not show; densification is off there (the priors are
per Gaussian).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from being_kernel import InputError
from being_kernel.datasets import TrackedVideo, copy_scene
from being_kernel.head import carry_head_model
from being_kernel.render import check_backend, eval_sh, rasterize, tracked_portrait, view_dirs
from being_kernel.train import FitContext, FitMethod, FitStat, GradientStats, ParamGroup, TrainRender

from ..avatar import Avatar, save_avatar
from ..spec import SplattingFitConfig
from .densify import densify_and_prune
from .params import LEARNING_RATES, GaussianParams
from .scene import load_scene
from .single_view import SingleViewPrior, build_prior, demo_params, has_demo_topology, prior_losses
from .walking import walk

#: Frames whose projected colours initialise the Gaussians.
COLOR_INIT_FRAMES = 8
#: Groups whose learning rate decays over training (positions on the surface).
DECAYING = ("bary12", "offset")
#: What a one-frame dataset (a photo) changes in the config, unless the user sets it: one frame
#: per step, a short schedule (the one view is learnt in a few hundred steps), no view-dependent
#: colour (one view cannot tell it from texture), no densification (the priors are per Gaussian).
SINGLE_VIEW_DEFAULTS = {"steps": 150, "batch_frames": 1, "sh_degree": 0, "densify_until": 0.0,
                        "preview_every": 50, "checkpoint_every": 50}
#: The single-view priors' normal-offset unit (metres): a millimetre off the surface costs 1
OFFSET_UNIT_M = 1e-3


class SplattingFit(FitMethod):
    """Trains a SplattingAvatar on a tracked video; exports an avatar directory."""

    adam_eps = 1e-15

    def __init__(self, video: TrackedVideo, config: SplattingFitConfig, device: torch.device,
                 generator: torch.Generator) -> None:
        check_backend(config.backend, device, "fit.backend")
        self.video, self.config, self.device, self.generator = video, config, device, generator
        self.scene = load_scene(video, device)
        if self.scene.train.numel() == 0:
            raise InputError(f"{video.root}: no training frames left after holding out {self.scene.test.numel()}")
        self.train_indices, self.test_indices = self.scene.train, self.scene.test
        self.single_view = config.single_view == "on" or (config.single_view == "auto" and self.train_indices.numel() == 1)
        self.g: GaussianParams
        self.stats_: GradientStats
        self.prior: SingleViewPrior | None = None

    @classmethod
    def config_defaults(cls, data: TrackedVideo) -> dict[str, Any]:
        return dict(SINGLE_VIEW_DEFAULTS) if len(data.split()[0]) == 1 else {}

    # ---- state -------------------------------------------------------------------------------

    def initialize(self) -> None:
        s, c = self.scene, self.config
        if self.single_view:
            self._initialize_single_view()
        else:
            self.g = GaussianParams.place(s.rest_vertices, s.faces, c.init_gaussians, c.sh_degree,
                                          generator=self.generator)
            self.g.set_colors(self._projected_colors())
        self.stats_ = GradientStats(len(self.g), self.device)

    def _initialize_single_view(self) -> None:
        """The demo avatar's Gaussians where the head is the demo's mesh (else placed by area),
        coloured by the priors of the one view (single_view.build_prior)."""
        s, c = self.scene, self.config
        head = s.head
        demo = has_demo_topology(head)
        self.g = (demo_params(c.sh_degree, self.device) if demo else
                  GaussianParams.place(s.rest_vertices, s.faces, c.init_gaussians, c.sh_degree, generator=self.generator))
        idx = s.train[:1]
        self.prior = build_prior(self.g, head, self.g.mesh_gaussians(s.faces, s.rest_area), s.rest_vertices[None],
                                 s.vertices[idx], s.frames.views(idx), s.frames.image(idx), s.frames.mask(idx),
                                 self.config.backend, demo_colors=demo, iterations=c.color_solve_iterations)
        self.g.set_colors(self.prior.color)

    def parameter_groups(self) -> list[ParamGroup]:
        return self.g.groups()

    def state_dict(self) -> dict:
        return {**self.g.state_dict(), **({"prior": self.prior.state_dict()} if self.prior is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.g = GaussianParams.from_state_dict(state, self.device)
        self.prior = SingleViewPrior.from_state_dict(state["prior"], self.device) if "prior" in state else None
        self.stats_ = GradientStats(len(self.g), self.device)

    def fingerprint(self) -> dict:
        return {"size": [self.scene.frames.size[0], self.scene.frames.size[1]]}

    def stats(self) -> tuple[FitStat, ...]:
        return (FitStat("gaussians", len(self.g)),)

    # ---- a step ------------------------------------------------------------------------------

    def learning_rates(self, ctx: FitContext) -> dict[str, float]:
        return {name: LEARNING_RATES[name] * 0.01 ** ctx.progress for name in DECAYING}

    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        c = self.config
        degree = min(c.sh_degree, ctx.step // c.sh_interval)
        rgb, means, depth = self._render(frames, ctx.background, degree, keep_means=self._densifying(ctx))
        losses = {} if self.prior is None else prior_losses(
            self.g, self.prior, color=c.prior_color_weight, opacity=c.prior_opacity_weight,
            shape=c.prior_shape_weight, offset_m=OFFSET_UNIT_M)
        return TrainRender(rgb, self.scene.frames.targets(frames, ctx.background), losses=losses,
                           aux={"frames": frames, "means": means, "depth": depth})

    def _densifying(self, ctx: FitContext) -> bool:
        return self.prior is None and ctx.progress < self.config.densify_until

    def after_backward(self, out: TrainRender, ctx: FitContext) -> None:
        means = out.aux["means"]
        if means.retains_grad and means.grad is not None:
            cams = self.scene.frames.views(out.aux["frames"])
            self.stats_.add(means.grad, out.aux["depth"], cams.K[:, 0, 0], cams.width)

    def after_step(self, ctx: FitContext) -> None:
        c = self.config
        if ctx.step % c.walk_interval == 0:
            self._walk()
        if c.densify_from <= ctx.step and ctx.step % c.densify_interval == 0 and self._densifying(ctx):
            counts = densify_and_prune(self.g, self.stats_, ctx.optimizer, grad_threshold=c.densify_grad,
                                       prune_opacity=c.prune_opacity, max_gaussians=c.max_gaussians,
                                       generator=self.generator)
            self.stats_ = GradientStats(len(self.g), self.device)
            tqdm.write(f"step {ctx.step}: +{counts['cloned']} cloned, +{counts['split']} split, -{counts['pruned']} "
                       f"pruned -> {counts['total']} Gaussians")

    @torch.no_grad()
    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, _, _ = self._render(frames, background, self.config.sh_degree)
        return rgb, self.scene.frames.targets(frames, background)

    def _render(self, idx: torch.Tensor, background: torch.Tensor, degree: int, keep_means: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames ``idx`` [B] over ``background`` [B, 3] -> (rgb [B, H, W, 3], posed means [B, N, 3],
        camera z of the means [B, N])."""
        s = self.scene
        cams = s.frames.views(idx)
        means, quats, scales = self.g.mesh_gaussians(s.faces, s.rest_area).pose(s.vertices[idx])
        if keep_means:
            means.retain_grad()
        sh = self.g.sh[None].expand(idx.numel(), -1, -1, -1)
        colors = eval_sh(sh, view_dirs(means, cams), degree)
        img = rasterize(means, quats, scales, self.g.opacity, colors, cams, background=background,
                        backend=self.config.backend)
        depth = (means.detach() @ cams.R.transpose(1, 2) + cams.t[:, None])[..., 2]
        return img.rgb, means, depth

    @torch.no_grad()
    def _walk(self) -> None:
        s = self.scene
        face_ids, bary, _ = walk(self.g.face_ids, self.g.bary, s.rest_vertices, s.faces, s.neighbours)
        self.g.face_ids = face_ids
        self.g.params["bary12"].data.copy_(bary[:, 1:])

    @torch.no_grad()
    def _projected_colors(self) -> torch.Tensor:
        """[N, 3] mean image colour at each Gaussian's projection over the first training frames
        where it lands inside the mask (grey where it never does)."""
        s = self.scene
        idx = s.train[:COLOR_INIT_FRAMES]
        means, _, _ = self.g.mesh_gaussians(s.faces, s.rest_area).pose(s.vertices[idx])
        pix, _ = s.frames.views(idx).project(means)  # [B, N, 2]
        w, h = s.frames.size
        grid = torch.stack([pix[..., 0] / w * 2 - 1, pix[..., 1] / h * 2 - 1], -1)[:, :, None]  # [B, N, 1, 2]
        img = s.frames.image(idx).permute(0, 3, 1, 2)
        mask = s.frames.mask(idx).permute(0, 3, 1, 2)
        sample = torch.nn.functional.grid_sample
        col = sample(img, grid, align_corners=False)[..., 0].permute(0, 2, 1)  # [B, N, 3]
        m = (sample(mask, grid, align_corners=False)[..., 0, 0] > 0.5).float()  # [B, N]
        total = (col * m[..., None]).sum(0)
        count = m.sum(0)[:, None]
        return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, 0.5))

    # ---- export ------------------------------------------------------------------------------

    def export(self, directory: Path, name: str) -> None:
        """The avatar directory (avatar.json + gaussians.safetensors)."""
        video, s = self.video, self.scene
        ref = carry_head_model(video.head_model, Path(video.root), directory)
        camera = tracked_portrait(s.frames.cameras, s.roots)  # framed like the demo avatar, for torso compositors
        avatar = Avatar(name=name, head_model=ref, gaussians=self.g.export(), camera=camera, shape=s.shape.tolist(),
                        motion_space=s.motion_space, background=(0.0, 0.0, 0.0))
        save_avatar(directory, avatar)
        copy_scene(video.root, directory)

"""``being fit --torso restorer``: the seam restorer trained on a full-frame dataset by the kernel's harness.

Self-supervised from the subject's own frames (SyncTalk++'s Torso Restorer): a step takes B training
frames, makes the heads the pipeline would composite there (the frame's own head, image x head mask
with its tracked pose and camera, or the user's avatar rendered through the tracked camera), perturbs
a share of them (shift, scale, colour gain, and the pose the base torso follows), composites them with
the base torso exactly as the compositor will, and restores the band where head and torso meet. The
prediction is the restored crop inside the band and the real frame outside it, so the harness's
photometric loss (L1, LPIPS late) and its PSNR see the band alone.

The crop size is fitted once, to the largest band of the training frames plus a margin.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from being_kernel import ConfigError, InputError
from being_kernel.api import Frame, TorsoCompositor, build_named
from being_kernel.datasets import load_full_frames, scene_path
from being_kernel.evaluation import true_heads
from being_kernel.head import FlameModel
from being_kernel.train import FitContext, FitMethod, FitStat, ParamGroup, TrainRender, split_indices

from .asset import base_field, save_restorer
from .network import RestorerNet
from .restore import Crops, Layout, band_weight, correct, crops
from .spec import RestorerFitConfig

#: Frames per base-composite call when scanning the training set (memory bound).
SCAN = 16


class RestorerFit(FitMethod):
    """The harness's view of the restorer (see the module doc)."""

    def __init__(self, video, config: RestorerFitConfig, device: torch.device,  # noqa: ANN001 - a TrackedVideo
                 generator: torch.Generator) -> None:
        self.config, self.device, self.generator, self.video = config, device, generator, video
        self.data = load_full_frames(video, device)
        self.train_indices, self.test_indices = split_indices(video, device, "the restorer")
        self.size = (video.cameras.width, video.cameras.height)
        self.band = (max(1, round(config.radius * self.size[1])), max(1, round(config.head_radius * self.size[1])))
        self.scale = 1.0 if config.work_height is None else min(1.0, config.work_height / self.size[1])
        self.base_dir = self._base_dir()
        values = {base_field(config.base): str(self.base_dir), "size": list(self.size)}
        if config.base_mode is not None:
            values["mode"] = config.base_mode
        self.base_config = {k: v for k, v in values.items() if k not in (base_field(config.base), "size")}
        self.base: TorsoCompositor = build_named("torso", config.base, values, str(device))
        self.renderer = self._renderer()
        motion = video.motion
        with torch.no_grad():
            joints = FlameModel(video.head())(motion, video.shape if video.shape.numel() else None).joints
        pix, depth = video.cameras.project(joints)  # [N, J, 2], [N, J]
        self.root_px, self.root_z = pix[:, 0].to(device), depth[:, 0].to(device)
        self.net = RestorerNet(config.width, config.levels).to(device)
        self.crop = (0, 0)

    def _base_dir(self) -> Path:
        c = self.config
        if c.base_path is not None:
            path = Path(c.base_path).expanduser()
            if not path.is_dir():
                raise InputError(f"fit.base_path {path}: no such directory")
            return path
        if c.base == "static":
            found = scene_path(self.video.root)
            if found is None:
                raise InputError(f"{self.video.root}: no scene/ (the background plate and the torso at rest) for the "
                                 "static base", hint="set fit.base_path=SCENE_DIR, or fit.base=warp with a trained warp torso")
            return Path(found)
        raise InputError(f"fit.base={c.base} needs its trained torso: set fit.base_path=DIR",
                         hint=f"train one with being fit --torso {c.base} --data {self.video.root}")

    def _renderer(self):  # noqa: ANN202 - a FlameRenderer or None
        """The avatar named by ``fit.avatar``, checked to render through the dataset's cameras."""
        c = self.config
        if c.avatar is None:
            return None
        renderer = build_named("avatar", c.avatar, {"path": c.avatar_path} if c.avatar_path else {}, str(self.device))
        first = self.train_indices[:1].cpu()
        try:
            renderer.render_views(self.video.motion.select(first), self.video.cameras[first])
        except NotImplementedError as exc:
            renderer.close()
            raise ConfigError(f"fit.avatar={c.avatar} cannot render through the dataset's cameras ({exc})",
                              hint="train over the frames' own heads (leave fit.avatar unset), or pick an avatar "
                              "that renders given views, such as splatting or flash") from exc
        return renderer

    # -- heads and composites -------------------------------------------------------------------------

    def heads(self, idx: torch.Tensor, perturb: bool) -> list[Frame]:
        """The heads the pipeline would composite at dataset frames ``idx`` [B]; a ``perturb`` share
        of them perturbed (random numbers from the harness's generator)."""
        video = self.video
        cpu = idx.cpu()
        motion, cams = video.motion.select(cpu), video.cameras[cpu]
        if self.renderer is not None:
            heads = self.renderer.render_views(motion, cams)
        else:
            heads = true_heads(self.data.image(idx), self.data.head_mask(idx), cpu, motion, cams,
                               self.root_px[idx], self.root_z[idx])
        if perturb and self.config.perturb > 0:
            heads = [self._perturbed(f) if float(torch.rand((), generator=self.generator)) < self.config.perturb else f
                     for f in heads]
        return heads

    def _perturbed(self, f: Frame) -> Frame:
        """``f`` moved and scaled about its anchor, its colour scaled per channel, its pose turned."""
        c, g = self.config, self.generator
        u = lambda *shape: torch.rand(*shape, generator=g) * 2 - 1  # noqa: E731 - uniform in [-1, 1]
        shift = u(2) * c.shift_px * self.size[1] / 512
        scale = 1 + float(u(())) * c.scale_jitter
        gain = 1 + u(3) * c.colour_jitter
        turn = u(3) * math.radians(c.rotation_deg)
        image = f.image
        h, w = image.shape[:2]
        ax, ay = f.placement.anchor_xy
        dev = image.device
        # output pixel p samples the head at q = anchor + (p - anchor - shift) / scale
        xs = (torch.arange(w, device=dev) + 0.5 - ax - float(shift[0])) / scale + ax
        ys = (torch.arange(h, device=dev) + 0.5 - ay - float(shift[1])) / scale + ay
        grid = torch.stack(torch.broadcast_tensors((2 * xs / w - 1)[None, :], (2 * ys / h - 1)[:, None]), -1)
        moved = torch.nn.functional.grid_sample(image.permute(2, 0, 1)[None], grid[None].to(image.dtype),
                                                mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        moved = moved.permute(1, 2, 0)
        rgb = (moved[..., :3] * gain.to(dev)).minimum(moved[..., 3:])  # premultiplied: colour <= alpha
        head = f.head
        if head is not None:
            head = dataclasses.replace(head, global_rot=head.global_rot + turn.to(head.global_rot))
        return dataclasses.replace(f, image=torch.cat([rgb, moved[..., 3:]], -1), head=head)

    def composites(self, idx: torch.Tensor, perturb: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(composite [B, H, W, 3], coverage [B, H, W, 2]) of the base torso at frames ``idx``."""
        with torch.no_grad():
            frames, coverage = self.base.composite_with_coverage(self.heads(idx, perturb))
        image = torch.stack([f.image for f in frames]).to(self.device, torch.float32)
        return image, coverage.to(self.device, torch.float32)

    def _fit_crop(self) -> tuple[int, int]:
        """The crop (w, h): the training bands' largest extents plus the band's torso radius each side, rounded up
        to the network's multiple, at most the frame."""
        W, H = self.size
        most = [0, 0]
        for a in range(0, self.train_indices.numel(), SCAN):
            _, coverage = self.composites(self.train_indices[a:a + SCAN], perturb=False)
            inside = band_weight(coverage, self.band)[..., 0] > 0
            for axis, dim in ((0, 1), (1, 2)):  # x: any over rows; y: any over columns
                hit = inside.any(dim)  # [B, W] or [B, H]
                idx = torch.arange(hit.shape[1], device=hit.device)
                lo = torch.where(hit, idx, hit.shape[1]).amin(1)
                hi = torch.where(hit, idx, -1).amax(1)
                most[axis] = max(most[axis], int((hi - lo + 1).clamp_min(0).max()))
        if most[0] == 0:
            raise InputError(f"{self.video.root}: the head and the torso never meet in the training frames",
                             hint="check masks/head and masks/torso of the dataset")
        m = self.net.multiple
        grow = lambda n, limit: min(limit, -(-(n + 2 * self.band[0]) // m) * m)  # noqa: E731
        return grow(most[0], W), grow(most[1], H)

    @property
    def layout(self) -> Layout:
        return Layout(self.band, self.crop, self.scale)

    # -- training ----------------------------------------------------------------------------------

    def initialize(self) -> None:
        seed = int(torch.randint(2 ** 62, (), generator=self.generator))
        with torch.random.fork_rng(devices=[]):  # the initial weights come from the harness's generator
            torch.manual_seed(seed)
            self.net = RestorerNet(self.config.width, self.config.levels).to(self.device)
        self.crop = self._fit_crop()

    def parameter_groups(self) -> list[ParamGroup]:
        return [ParamGroup(name, p, self.config.lr) for name, p in self.net.named_parameters()]

    def learning_rates(self, ctx: FitContext) -> dict[str, float]:
        factor = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * ctx.progress))
        return {name: self.config.lr * factor for name, _ in self.net.named_parameters()}

    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        image, coverage = self.composites(frames, perturb=True)
        real = self.data.image(frames)
        if self.config.flip:  # mirrored frames: the other side's poses, the same person
            flip = (torch.rand(frames.numel(), generator=self.generator) < 0.5).to(self.device)[:, None, None, None]
            image, coverage, real = (torch.where(flip, t.flip(2), t) for t in (image, coverage, real))
        c: Crops = crops(image, coverage, self.layout)
        target = c.take(real)
        restored = correct(self.net, c, self.scale)
        return TrainRender(torch.where(c.weight > 0, restored, target), target)

    @torch.no_grad()
    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, coverage = self.composites(frames, perturb=False)
        c = crops(image, coverage, self.layout)
        return c.paste(image, correct(self.net, c, self.scale).clamp(0, 1)), self.data.image(frames)

    # -- state and export --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"net": {k: v.detach().clone() for k, v in self.net.state_dict().items()}, "crop": list(self.crop)}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"], strict=True)
        self.crop = (int(state["crop"][0]), int(state["crop"][1]))

    def stats(self) -> tuple[FitStat, ...]:
        return (FitStat("crop", f"{self.crop[0]}x{self.crop[1]}", "px"),
                FitStat("parameters", sum(p.numel() for p in self.net.parameters())))

    def fingerprint(self) -> dict:
        return {"base": self.config.base, "base_dir": str(self.base_dir), "avatar": self.config.avatar}

    def export(self, directory: Path, name: str) -> None:
        save_restorer(self.net, directory, self.base_dir,
                      {"size": list(self.size), "band": list(self.band), "crop": list(self.crop), "scale": self.scale,
                       "base": self.config.base,
                       "base_config": self.base_config, "source": str(self.video.root), "name": name})

"""``being fit --torso warp``: the warped torso trained on a full-frame dataset by the kernel's harness.

A step composites, for B training frames, the plate, the torso layer (full mode) and the frame's own
head (image x head mask) and compares it with the frame (the harness's L2 + D-SSIM, LPIPS late).
The method adds the paper's terms: mask (torso alpha against the torso mask, outside the head),
anchor deformation, anchor opacity and |delta uv|, and draws the anchors as Gaussians until
``hide_anchors_from``. Stages by fraction of training: the warp MLP from ``warp_from``, the colour
MLP from ``colour_from``. The full mode's texture coordinates are the anchors' homography plus the
warp MLP's delta (the public code's projective base warp), so the anchors' skinning weights learn
from the photometric loss through the homography. Export distils the fast mode: the colour MLP
baked into the texture at the reference pose, and the anchors' skinning weights and targets fitted
so that each frame's homography alone reproduces the full mode's coordinates on the torso.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from being_kernel import InputError
from being_kernel.api import Cameras
from being_kernel.datasets import load_full_frames
from being_kernel.head import FlameModel
from being_kernel.render import rasterize
from being_kernel.train import FitContext, FitMethod, FitStat, ParamGroup, TrainRender, split_indices

from .anchors import Anchors, apply_homography, fit_homography
from .asset import save_torso
from .field import TorsoField
from .model import WarpModel
from .pose import TorsoCamera, chordal_mean, tracked_pose
from .spec import WarpFitConfig

#: The box around every training frame's torso grows by this fraction of the frame's size.
BOX_MARGIN = 0.06
#: Anchors are kept this far (fraction of the frame height) from the head mask (the paper: 32 px at 512).
HEAD_CLEARANCE = 0.06
#: Skinning weights start at 1 at the neck base and fall to 0 this many metres below it.
NECK_FALLOFF_M = 0.08
#: Distillation: frames and torso pixels per step.
DISTILL_FRAMES, DISTILL_PIXELS = 16, 2048


class WarpFit(FitMethod):
    """The harness's view of the warped torso (see the module doc)."""

    def __init__(self, video, config: WarpFitConfig, device: torch.device,  # noqa: ANN001 - a TrackedVideo
                 generator: torch.Generator) -> None:
        self.config, self.device, self.generator, self.video = config, device, generator, video
        self.data = load_full_frames(video, device)
        self.train_indices, self.test_indices = split_indices(video, device, "the warped torso")
        motion = video.motion
        with torch.no_grad():
            joints = FlameModel(video.head())(motion, video.shape if video.shape.numel() else None).joints
        roots = joints[:, 0] - motion.translation  # the root joint before the global pose
        cams = video.cameras
        R_hc, c = tracked_pose(cams.R, cams.t, roots, motion.global_rot, motion.neck, motion.translation)
        self.R_hc, self.c = R_hc.float().to(device), c.float().to(device)
        tr = self.train_indices.cpu()
        self.camera = TorsoCamera(cams.K[0].float(), (cams.width, cams.height), chordal_mean(R_hc[tr]).float(),
                                  c[tr].mean(0).float(), roots[tr].mean(0).float()).to(device)
        self.box = self._box()
        self.model: WarpModel

    # -- set-up -----------------------------------------------------------------------------------

    def _box(self) -> tuple[int, int, int, int]:
        torso = torch.zeros(self.data.torso.shape[1:3], dtype=torch.bool, device=self.device)
        for a in range(0, self.train_indices.numel(), 64):
            torso |= (self.data.torso_mask(self.train_indices[a:a + 64])[..., 0] > 0.5).any(0)
        if int(torso.sum()) < 16:
            raise InputError(f"{self.video.root}: the torso masks are (almost) empty",
                             hint="check masks/torso (or masks/person and masks/head) of the dataset")
        ys, xs = torch.nonzero(torso, as_tuple=True)
        w, h = self.camera.size
        m = round(BOX_MARGIN * max(w, h))
        return (max(0, int(xs.min()) - m), max(0, int(ys.min()) - m), min(w, int(xs.max()) + 1 + m),
                min(h, int(ys.max()) + 1 + m))

    def _reference_frame(self) -> int:
        codes = self.camera.code(self.R_hc[self.train_indices], self.c[self.train_indices])
        return int(self.train_indices[int(codes.norm(dim=-1).argmin())])

    def _torso_alpha(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(target, weight) [B, H, W, 1] of the torso layer's alpha: the torso's share of what the head
        leaves visible, torso / (1 - head), weighted by 1 - head (unknown where the head covers all)."""
        head, torso = self.data.head_mask(frames), self.data.torso_mask(frames)
        free = 1 - head
        return (torso / free.clamp_min(1e-3)).clamp(0, 1), free

    def _initial_texture(self, field: TorsoField) -> None:
        """Colour and alpha: the training frames' means of the torso and its alpha where they are seen,
        filled in from around where they never are (under the head); features: small noise."""
        shape = self.data.images.shape[1:3]
        colour_sum = torch.zeros(*shape, 3, device=self.device)
        alpha_sum = torch.zeros(*shape, 1, device=self.device)
        colour_w = torch.zeros(*shape, 1, device=self.device)
        alpha_w = torch.zeros(*shape, 1, device=self.device)
        for a in range(0, self.train_indices.numel(), 32):
            idx = self.train_indices[a:a + 32]
            target, free = self._torso_alpha(idx)
            torso = self.data.torso_mask(idx)
            colour_sum += (self.data.image(idx) * torso).sum(0)
            colour_w += torso.sum(0)
            alpha_sum += (target * free).sum(0)
            alpha_w += free.sum(0)
        n = self.train_indices.numel()
        colour = _fill(colour_sum / colour_w.clamp_min(1e-6), (colour_w > 0.05 * n).float())
        alpha = _fill(alpha_sum / alpha_w.clamp_min(1e-6), (alpha_w > 0.05 * n).float()).clamp(0.02, 0.98)
        image = torch.cat([colour, torch.logit(alpha)], -1).permute(2, 0, 1)[None]  # [1, 4, H, W]
        _, th, tw = field.texture.shape
        p = field.padding
        u = ((torch.arange(tw, device=self.device) + 0.5) / tw) * (1 + 2 * p) - p
        v = ((torch.arange(th, device=self.device) + 0.5) / th) * (1 + 2 * p) - p
        grid = torch.stack(torch.meshgrid(v, u, indexing="ij")[::-1], -1)[None] * 2 - 1
        painted = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
        noise = (torch.rand(field.features, th, tw, generator=self.generator) - 0.5) * 0.1
        with torch.no_grad():
            field.texture.copy_(torch.cat([painted, noise.to(self.device)]))

    def _initial_anchors(self) -> Anchors:
        """A grid of ``anchors`` x ``anchors`` over the box, kept on the reference frame's torso away from
        its head, lifted to the neck base's depth."""
        n, cam = self.config.anchors, self.camera
        ref = torch.tensor([self._reference_frame()], device=self.device)
        torso = self.data.torso_mask(ref)[0, ..., 0] > 0.5
        head = self.data.head_mask(ref)[0, ..., 0][None, None]
        r = max(1, round(HEAD_CLEARANCE * cam.size[1]))
        near_head = F.max_pool2d(head, 2 * r + 1, stride=1, padding=r)[0, 0] > 0.5
        x0, y0, x1, y1 = self.box
        xs = torch.linspace(x0 + 0.5, x1 - 0.5, n, device=self.device)
        ys = torch.linspace(y0 + 0.5, y1 - 0.5, n, device=self.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        px = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
        keep = torso[px[:, 1].long(), px[:, 0].long()] & ~near_head[px[:, 1].long(), px[:, 0].long()]
        px = px[keep]
        if px.shape[0] < 8:
            raise InputError(f"{self.video.root}: only {px.shape[0]} anchor(s) fit on the torso away from the head",
                             hint="the torso is too small in the frame, or fit.anchors is too low")
        z = float(cam.c_ref[2])
        rays = torch.cat([px, torch.ones_like(px[:, :1])], -1) @ torch.linalg.inv(cam.K).T
        rest = rays * z
        below = rest[:, 1] - cam.c_ref[1]  # camera y points down: metres below the neck base
        t = (below / NECK_FALLOFF_M).clamp(0, 1)
        weight = 1 - t * t * (3 - 2 * t)
        spacing = max((x1 - x0) / n, (y1 - y0) / n) / float(cam.px_per_metre(cam.c_ref[None])[0])
        return Anchors(rest, cam.project(rest), weight, torch.full((px.shape[0],), 0.5 * spacing)).to(self.device)

    def _build(self, anchors: Anchors) -> None:
        c = self.config
        field = TorsoField(self.camera.size, c.features, c.hidden, c.uv_frequencies, c.pose_frequencies,
                           c.texture_padding).to(self.device)
        self.model = WarpModel(field, anchors, self.camera, self.box, self.data.plate()).to(self.device)

    def initialize(self) -> None:
        self._build(self._initial_anchors())
        self._initial_texture(self.model.field)
        codes = self.camera.code(self.R_hc[self.train_indices], self.c[self.train_indices])
        self.model.pose_lo.copy_(codes.min(0).values)
        self.model.pose_hi.copy_(codes.max(0).values)

    # -- training ---------------------------------------------------------------------------------

    def parameter_groups(self) -> list[ParamGroup]:
        c, f = self.config, self.model.field
        groups = [ParamGroup("texture", f.texture, c.texture_lr),
                  ParamGroup("anchor_weights", self.model.anchors.weight_logit, c.anchor_lr),
                  ParamGroup("anchor_opacity", self.model.anchors.opacity_logit, c.anchor_lr)]
        for prefix, module in (("warp_mlp", f.warp_mlp), ("colour_mlp", f.colour_mlp)):
            if module is not None:
                groups += [ParamGroup(f"{prefix}.{name}", p, c.lr) for name, p in module.named_parameters()]
        return groups

    def _anchor_splats(self, frames: torch.Tensor, under: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The anchors drawn as Gaussians over ``under`` [B, H, W, 3]; returns (image, opacity loss)."""
        a, cam, B = self.model.anchors, self.camera, frames.numel()
        means = a.posed(self.R_hc[frames], self.c[frames], cam)
        with torch.no_grad():  # their colour: the texture's at their target
            colours = self.model.field.sample(a.target[None])[0, :, :3].clamp(0, 1)
        low = math.log(self.config.anchor_opacity_min / (1 - self.config.anchor_opacity_min))
        logit = torch.maximum(a.opacity_logit, torch.full_like(a.opacity_logit, low))
        quats = torch.zeros(len(a), 4, device=self.device)
        quats[:, 0] = 1
        w, h = cam.size
        views = Cameras(torch.eye(3, device=self.device).expand(B, 3, 3), torch.zeros(B, 3, device=self.device),
                        cam.K.expand(B, 3, 3), w, h)
        splat = rasterize(means, quats, a.scale[:, None].expand(-1, 3), torch.sigmoid(logit), colours, views)
        return splat.rgb + (1 - splat.alpha) * under, (logit - low).mean()

    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        c, p, m = self.config, ctx.progress, self.model
        R, cc = self.R_hc[frames], self.c[frames]
        rgb, alpha, delta = m.layer(R, cc, "full", warp=p >= c.warp_from, colour=p >= c.colour_from)
        image, head = self.data.image(frames), self.data.head_mask(frames)
        heads = torch.cat([image * head, head], -1)
        losses: dict[str, torch.Tensor] = {}
        if p < c.hide_anchors_from:
            under, opacity = self._anchor_splats(frames, m.frames(rgb, alpha, None))
            pred = heads[..., :3] + (1 - heads[..., 3:]) * under
            if p < c.regularise_until and c.anchor_opacity_weight:
                losses["anchor_opacity"] = c.anchor_opacity_weight * opacity
        else:
            pred = m.frames(rgb, alpha, heads)
        x0, y0, x1, y1 = self.box
        box = lambda t: t[:, y0:y1, x0:x1].reshape(t.shape[0], -1, t.shape[-1])  # noqa: E731
        if c.mask_weight:
            target, free = self._torso_alpha(frames)
            losses["mask"] = c.mask_weight * ((alpha - box(target)).abs() * box(free)).mean()
        if delta is not None:
            if c.anchor_deform_weight:
                losses["anchor_deform"] = c.anchor_deform_weight * self._anchor_deformation(R, cc)
            if p < c.regularise_until and c.delta_uv_weight:
                losses["delta_uv"] = c.delta_uv_weight * delta.abs().mean()
        return TrainRender(pred, image, losses)

    def _anchor_deformation(self, R: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Mean squared distance between each posed anchor carried by the warp and its target (anchors
        inside the frame)."""
        a = self.model.anchors
        seen = a.image(R, c, self.camera).detach()
        inside = ((seen > 0) & (seen < 1)).all(-1).float()
        carried = torch.stack([self.model.texture_coords(R[i:i + 1], c[i:i + 1], seen[i])[0][0]
                               for i in range(R.shape[0])])
        err = (a.target[None] - carried).square().sum(-1)
        return (err * inside).sum() / inside.sum().clamp_min(1)

    @torch.no_grad()
    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, alpha, _ = self.model.layer(self.R_hc[frames], self.c[frames], "full")
        image, head = self.data.image(frames), self.data.head_mask(frames)
        return self.model.frames(rgb, alpha, torch.cat([image * head, head], -1)).clamp(0, 1), image

    # -- state and export -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if k != "plate"}

    def load_state_dict(self, state: dict) -> None:
        n = state["anchors.rest"].shape[0]
        self._build(Anchors(torch.zeros(n, 3), torch.zeros(n, 2), torch.full((n,), 0.5), torch.zeros(n)))
        self.model.load_state_dict({**state, "plate": self.model.plate}, strict=True)

    def stats(self) -> tuple[FitStat, ...]:
        return (FitStat("anchors", len(self.model.anchors)),)

    def export(self, directory: Path, name: str) -> None:
        fast = self.distilled()
        save_torso(fast, directory, {"head_model": self.video.head_model, "source": str(self.video.root),
                                     "name": name})

    def distilled(self) -> WarpModel:
        """The model with the fast mode's texture and anchors added (see the module doc)."""
        m, cam = self.model, self.camera
        baked = m.field.bake(m.pose_code(cam.R_ref[None], cam.c_ref[None]))
        fast = WarpModel(m.field, m.anchors, cam, self.box, m.plate, baked, copy.deepcopy(m.anchors))
        fast.pose_lo.copy_(m.pose_lo)
        fast.pose_hi.copy_(m.pose_hi)
        anchors = fast.fast_anchors
        target = torch.nn.Parameter(anchors.target.clone())
        opt = torch.optim.Adam([anchors.weight_logit, target], lr=0.02)
        train, box_mask = self.train_indices, self._torso_pixels()
        grid = m.grid()
        for _ in range(self.config.distill_steps):
            frames = train[torch.randint(train.numel(), (DISTILL_FRAMES,), generator=self.generator).to(train.device)]
            pick = box_mask[torch.randint(box_mask.numel(), (DISTILL_PIXELS,), generator=self.generator).to(train.device)]
            x = grid[pick]
            R, c = self.R_hc[frames], self.c[frames]
            with torch.no_grad():
                want = m.texture_coords(R, c, x)[0]
            seen = anchors.image(R, c, cam)
            inside = ((seen > 0) & (seen < 1)).all(-1).float()
            got = apply_homography(fit_homography(seen, target, inside), x)
            loss = (got - want).square().sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            anchors.target.copy_(target)
        fast.requires_grad_(False)
        return fast

    def _torso_pixels(self) -> torch.Tensor:
        """Indices into the box grid of pixels on the torso in some training frame."""
        x0, y0, x1, y1 = self.box
        seen = torch.zeros(y1 - y0, x1 - x0, dtype=torch.bool, device=self.device)
        for a in range(0, self.train_indices.numel(), 64):
            seen |= (self.data.torso_mask(self.train_indices[a:a + 64])[:, y0:y1, x0:x1, 0] > 0.5).any(0)
        return torch.nonzero(seen.reshape(-1))[:, 0]


def _fill(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """values [H, W, C] with the pixels where ``known`` [H, W, 1] is 0 filled from the known ones around
    them (push-pull: a pyramid of weighted means, each hole taking the finest level that reaches it)."""
    img, w = (values * known).permute(2, 0, 1)[None], known.permute(2, 0, 1)[None]
    levels = [(img, w)]
    while min(levels[-1][0].shape[-2:]) > 1:
        i, k = levels[-1]
        levels.append((F.avg_pool2d(i, 2, ceil_mode=True), F.avg_pool2d(k, 2, ceil_mode=True)))
    i, k = levels[-1]
    filled = i / k.clamp_min(1e-6)
    for i, k in reversed(levels[:-1]):
        up = F.interpolate(filled, size=i.shape[-2:], mode="bilinear", align_corners=False)
        filled = torch.where(k > 1e-6, i / k.clamp_min(1e-6), up)
    return filled[0].permute(1, 2, 0)

"""``being fit --avatar splatting``: train a SplattingAvatar on a tracked monocular video.

Each step renders ``batch_frames`` training frames (posed meshes from the tracking, each Gaussian
on its triangle: being_kernel.render.surface) over a random background that also replaces the
masked-out pixels of the ground truth, and takes an Adam step on L1 + SSIM (+ LPIPS when its
weights are on disk). Every ``walk_interval`` steps Gaussians that left their triangle walk on;
until ``densify_until`` of training they are cloned, split and pruned. Progress is
``max(step / steps, elapsed / max_minutes)``: the position learning rates decay by 100x over it.
Checkpoints (``work/checkpoint.pt``, weights-only loadable) make runs resumable; previews go to
``work/previews/``; the avatar is written to ``out`` only when training ends.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from being_kernel.datasets import TrackedVideo
from being_kernel.devices import default_device, resolve_device
from being_kernel.errors import ConfigError, InputError, Interrupted
from being_kernel.head.refs import FLAME_REFS
from being_kernel.media import write_png
from being_kernel.metrics import psnr, ssim
from being_kernel.render.gaussians import eval_sh, rasterize, view_dirs

from ..avatar import Avatar, save_avatar
from ..demo import portrait_camera
from ..spec import SplattingFitConfig
from .densify import GradientStats, densify_and_prune
from .params import LEARNING_RATES, GaussianParams
from .scene import Scene, load_scene
from .walking import walk

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1
#: Frames whose projected colours initialise the Gaussians.
COLOR_INIT_FRAMES = 8


def fit(video: TrackedVideo, out: Path, config: SplattingFitConfig, *, work: Path, resume: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Train on ``video`` and write the avatar directory ``out``; returns a summary dict
    (steps, seconds, gaussians, held-out PSNR, ...), also written to ``work/summary.json``."""
    device = resolve_device(config.device) or default_device()
    if config.backend == "gsplat" and device.type != "cuda":
        raise ConfigError('fit.backend: "gsplat" needs a CUDA device', hint='use backend "auto" or "cpu"')
    work.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(video), unit="frame", desc="reading frames", leave=False) as bar:
        scene = load_scene(video, device, bar.update)
    if scene.train.numel() == 0:
        raise InputError(f"{video.root}: no training frames left after holding out {scene.test.numel()}")
    fingerprint = {"data": str(Path(video.root).resolve()), "frames": len(video), "sh_degree": config.sh_degree,
                   "size": [scene.cameras.width, scene.cameras.height]}
    trainer = _Trainer(scene, config, device, work, log, json.dumps(fingerprint, sort_keys=True))
    ckpt = work / CHECKPOINT
    if resume and ckpt.is_file():
        trainer.load(ckpt)
    else:
        trainer.start()
        initial = trainer.test_psnr()
        (work / "initial.json").write_text(json.dumps({"test_psnr": initial}) + "\n")
    try:
        trainer.run()
    except KeyboardInterrupt:
        trainer.save(ckpt)
        raise Interrupted(f"interrupted at step {trainer.step}; the checkpoint in {work} resumes it: run the same "
                          "command again") from None
    trainer.save(ckpt)
    trainer.preview("final")
    _write_avatar(out, trainer.g, scene, video)
    summary = {"steps": trainer.step, "train_seconds": round(trainer.elapsed, 1), "gaussians": len(trainer.g),
               "train_frames": int(scene.train.numel()), "test_frames": int(scene.test.numel()),
               "initial_test_psnr": round(json.loads((work / "initial.json").read_text())["test_psnr"], 3),
               "test_psnr": round(trainer.test_psnr(), 3), "image_size": [scene.cameras.width, scene.cameras.height],
               "device": str(device), "data": str(video.root), "avatar": str(out)}
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


class _Trainer:
    def __init__(self, scene: Scene, config: SplattingFitConfig, device: torch.device, work: Path,
                 log: Callable[[str], None], fingerprint: str) -> None:
        self.scene, self.config, self.device, self.work, self.log = scene, config, device, work, log
        self.fingerprint = fingerprint  # what a checkpoint must match to be resumed
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step, self.elapsed = 0, 0.0
        self.lpips = _lpips(config, device, log)
        self.g: GaussianParams
        self.stats: GradientStats

    # ---- state -------------------------------------------------------------------------------

    def start(self) -> None:
        s, c = self.scene, self.config
        self.g = GaussianParams.place(s.rest_vertices, s.faces, c.init_gaussians, c.sh_degree, generator=self.generator)
        self.g.set_colors(self._projected_colors())
        self.stats = GradientStats(len(self.g), self.device)

    def save(self, path: Path) -> None:
        state = {"version": CHECKPOINT_VERSION, "step": self.step, "elapsed": self.elapsed,
                 "fingerprint": self.fingerprint, "gaussians": self.g.state_dict(),
                 "generator": self.generator.get_state()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
            raise InputError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})",
                             hint="delete it or pass --restart to train from scratch") from exc
        if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != self.fingerprint:
            raise InputError(f"{path} belongs to another dataset or configuration",
                             hint="pass --restart to discard it, or use another --work directory")
        self.g = GaussianParams.from_state_dict(state["gaussians"], self.device)
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.generator.set_state(state["generator"])
        self.stats = GradientStats(len(self.g), self.device)
        self.log(f"resuming from {path} at step {self.step} ({len(self.g)} Gaussians)")

    # ---- the loop ----------------------------------------------------------------------------

    def progress(self) -> float:
        c = self.config
        p = self.step / c.steps
        if c.max_minutes is not None:
            p = max(p, self.elapsed / (60.0 * c.max_minutes))
        return min(p, 1.0)

    def run(self) -> None:
        c, s = self.config, self.scene
        bar = tqdm(total=c.steps, initial=self.step, unit="step", desc="being fit", leave=False)
        t_last = time.perf_counter()
        try:
            while self.progress() < 1.0:
                p = self.progress()
                for group in self.g.optimizer.param_groups:
                    if group["name"] in ("bary12", "offset"):
                        group["lr"] = LEARNING_RATES[group["name"]] * 0.01 ** p
                pick = torch.randint(s.train.numel(), (c.batch_frames,), generator=self.generator)
                loss, batch_psnr = self._train_step(s.train[pick.to(s.train.device)], p)
                self.step += 1
                if self.step % c.walk_interval == 0:
                    self._walk()
                if c.densify_from <= self.step and self.step % c.densify_interval == 0 and p < c.densify_until:
                    self._densify()
                if self.step % c.preview_every == 0:
                    self.preview(f"step_{self.step:06d}")
                if self.step % c.checkpoint_every == 0:
                    self.save(self.work / CHECKPOINT)
                now = time.perf_counter()
                self.elapsed += now - t_last
                t_last = now
                bar.update(1)
                if self.step % 10 == 0:  # reading the values waits for the GPU: only when shown
                    bar.set_postfix(loss=f"{float(loss):.4f}", psnr=f"{float(batch_psnr):.2f}", gaussians=len(self.g))
        finally:
            bar.close()

    def _train_step(self, idx: torch.Tensor, progress: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on frames ``idx``; returns (loss, batch PSNR) as 0-d tensors."""
        c = self.config
        background = self._backgrounds(idx.numel())
        target = self.scene.targets(idx, background)
        degree = min(c.sh_degree, self.step // c.sh_interval)
        rgb, means, depth = self.render(idx, background, degree, keep_means=True)
        l1 = (rgb - target).abs().mean()
        loss = (1.0 - c.ssim_weight) * l1 + c.ssim_weight * (1.0 - ssim(rgb, target).mean())
        if self.lpips is not None and progress >= c.lpips_from:
            loss = loss + c.lpips_weight * self.lpips(rgb, target).mean()
        self.g.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if means.grad is not None and progress < c.densify_until:
            cams = self.scene.views(idx)
            self.stats.add(means.grad, depth, cams.K[:, 0, 0], cams.width)
        self.g.optimizer.step()
        with torch.no_grad():
            return loss.detach(), psnr(rgb.detach().clamp(0, 1), target).mean()

    def render(self, idx: torch.Tensor, background: torch.Tensor, degree: int, keep_means: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames ``idx`` [B] over ``background`` [B, 3] -> (rgb [B, H, W, 3], posed means [B, N, 3],
        camera z of the means [B, N])."""
        s = self.scene
        cams = s.views(idx)
        means, quats, scales = self.g.mesh_gaussians(s.faces, s.rest_area).pose(s.vertices[idx])
        if keep_means:
            means.retain_grad()
        sh = self.g.sh[None].expand(idx.numel(), -1, -1, -1)
        colors = eval_sh(sh, view_dirs(means, cams), degree)
        img = rasterize(means, quats, scales, self.g.opacity, colors, cams, background=background,
                        backend=self.config.backend)
        depth = (means.detach() @ cams.R.transpose(1, 2) + cams.t[:, None])[..., 2]
        return img.rgb, means, depth

    def _backgrounds(self, n: int) -> torch.Tensor:
        mode = self.config.background
        if mode == "random":
            return torch.rand(n, 3, generator=self.generator).to(self.device)
        return torch.full((n, 3), 1.0 if mode == "white" else 0.0, device=self.device)

    @torch.no_grad()
    def _walk(self) -> None:
        s = self.scene
        face_ids, bary, _ = walk(self.g.face_ids, self.g.bary, s.rest_vertices, s.faces, s.neighbours)
        self.g.face_ids = face_ids
        self.g.params["bary12"].data.copy_(bary[:, 1:])

    def _densify(self) -> None:
        c = self.config
        counts = densify_and_prune(self.g, self.stats, grad_threshold=c.densify_grad, prune_opacity=c.prune_opacity,
                                   max_gaussians=c.max_gaussians, generator=self.generator)
        self.stats = GradientStats(len(self.g), self.device)
        tqdm.write(f"step {self.step}: +{counts['cloned']} cloned, +{counts['split']} split, -{counts['pruned']} "
                   f"pruned -> {counts['total']} Gaussians")

    @torch.no_grad()
    def _projected_colors(self) -> torch.Tensor:
        """[N, 3] mean image colour at each Gaussian's projection over the first training frames
        where it lands inside the mask (grey where it never does)."""
        s = self.scene
        idx = s.train[:COLOR_INIT_FRAMES]
        means, _, _ = self.g.mesh_gaussians(s.faces, s.rest_area).pose(s.vertices[idx])
        pix, _ = s.views(idx).project(means)  # [B, N, 2]
        w, h = s.cameras.width, s.cameras.height
        grid = torch.stack([pix[..., 0] / w * 2 - 1, pix[..., 1] / h * 2 - 1], -1)[:, :, None]  # [B, N, 1, 2]
        img = s.images[idx].permute(0, 3, 1, 2).float() / 255.0
        mask = s.masks[idx].permute(0, 3, 1, 2).float() / 255.0
        sample = torch.nn.functional.grid_sample
        col = sample(img, grid, align_corners=False)[..., 0].permute(0, 2, 1)  # [B, N, 3]
        m = (sample(mask, grid, align_corners=False)[..., 0, 0] > 0.5).float()  # [B, N]
        total = (col * m[..., None]).sum(0)
        count = m.sum(0)[:, None]
        return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, 0.5))

    # ---- outputs -----------------------------------------------------------------------------

    @torch.no_grad()
    def test_psnr(self) -> float:
        """Mean PSNR over the held-out frames, over black, all SH bands."""
        s, values = self.scene, []
        for a in range(0, s.test.numel(), 8):
            idx = s.test[a:a + 8]
            black = torch.zeros(idx.numel(), 3, device=self.device)
            rgb, _, _ = self.render(idx, black, self.config.sh_degree)
            values.append(psnr(rgb.clamp(0, 1), s.targets(idx, black)))
        return float(torch.cat(values).mean()) if values else math.nan

    @torch.no_grad()
    def preview(self, name: str) -> None:
        """work/previews/NAME.png: ground truth | render of the first held-out frame, over black."""
        s = self.scene
        idx = (s.test if s.test.numel() else s.train)[:1]
        black = torch.zeros(1, 3, device=self.device)
        rgb, _, _ = self.render(idx, black, min(self.config.sh_degree, self.step // self.config.sh_interval))
        pair = torch.cat([s.targets(idx, black)[0], rgb[0].clamp(0, 1)], dim=1)
        (self.work / "previews").mkdir(exist_ok=True)
        write_png(self.work / "previews" / f"{name}.png", pair.cpu())


def _lpips(config: SplattingFitConfig, device: torch.device, log: Callable[[str], None]):  # noqa: ANN202
    if config.lpips == "off" or config.lpips_weight == 0:
        return None
    from being_kernel.metrics import load_lpips, lpips_available

    reason = lpips_available()
    if reason is None:
        return load_lpips(device=device)
    if config.lpips == "on":
        raise ConfigError(f"fit.lpips=on but {reason}", hint="or set fit.lpips=auto / off")
    log(f"note: training without the LPIPS term: {reason}")
    return None


def _write_avatar(out: Path, g: GaussianParams, scene: Scene, video: TrackedVideo) -> None:
    """Write the avatar directory atomically: into a hidden sibling, renamed to ``out`` at the end."""
    ref = video.head_model
    if ref != "demo" and ref not in FLAME_REFS and not Path(ref).expanduser().is_absolute():
        ref = str((Path(video.root) / ref).resolve())
    cams = scene.cameras
    # the avatar's default view: the tracked camera that looks most squarely at the face (FLAME
    # faces +z, so the camera's z axis, row 2 of R, should point along -z), framed like the demo
    # avatar so that torso compositors find the neck where they expect it
    k = int(torch.argmin(cams.R[:, 2, 2]))
    camera = portrait_camera(cams.R[k].cpu(), cams.t[k].cpu(), scene.roots[k].cpu(), cams.width, cams.height)
    avatar = Avatar(name=out.name, head_model=ref, gaussians=g.export(), camera=camera,
                    shape=scene.shape.tolist(), motion_space=scene.motion_space, background=(0.0, 0.0, 0.0))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save_avatar(tmp, avatar)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)

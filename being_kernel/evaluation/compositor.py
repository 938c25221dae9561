"""Compositor evaluation on full frames (``being eval --torso NAME``): each held-out frame's head,
composited by the torso plugin, against the real frame, over the whole image and inside the neck
band where head and body meet.

The heads are the avatar's renders through the tracked cameras when an avatar is given, else the
frames' own heads (image x head mask, premultiplied, with the tracked pose and camera), which
measures the compositor alone: a perfect compositor then reproduces the frame exactly.

On a full-frame dataset the head mask is ``masks/head`` and the band is where the head and torso
masks, each grown by ``band_px``, overlap (the seam itself); on head crops the head mask is the
dataset's mask and the band is the ring around its outline below the jaw.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from ..discovery import build_named
from ..types import Frame, Placement, head_poses
from .avatar import EVAL_CHUNK, _frames
from .band import neck_band
from .report import CompositeReport, Scores, held_out_chunks, mean_scores, report_pairs, sync

#: FLAME joint order: root (neck base), neck, jaw, left eye, right eye.
JAW_JOINT = 2


def evaluate_compositor(torso_plugin: str, torso_config: dict, data: str | Path, device: str = "auto", *,
                        avatar_plugin: str | None = None, avatar_config: dict | None = None, format: str = "auto",
                        head_model: str | None = None, test_frames: int | None = None, all_frames: bool = False,
                        band_px: int = 8, on_frame: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                        progress: Callable[[int], None] | None = None) -> CompositeReport:
    """Score ``--torso torso_plugin`` on the held-out frames of the tracked video at ``data``.

    The compositor's ``size`` defaults to the dataset's frame size. ``band_px``: half-width of the
    neck band. ``on_frame(real [H, W, 3], composite [H, W, 3])`` sees each compared pair."""
    from ..datasets import load_full_frames, load_tracked_video
    from ..head.flame import FlameModel

    video = load_tracked_video(data, format=format, head_model=head_model, test_frames=test_frames)
    frames = _frames(video, all_frames)
    layers = load_full_frames(video, frames=frames) if video.full_frame else None
    size = (video.cameras.width, video.cameras.height)
    values = dict(torso_config)
    values.setdefault("size", list(size))
    compositor = build_named("torso", torso_plugin, values, device)
    renderer = None
    try:
        if avatar_plugin is not None:
            renderer = build_named("avatar", avatar_plugin, avatar_config or {}, device)
        dev = torch.device(getattr(renderer, "device", None) or getattr(compositor, "device", None) or "cpu")
        scores = Scores(dev)
        model = FlameModel(video.head()).eval()
        shape = video.shape if video.shape.numel() else None
        seconds = 0.0
        for idx, store in held_out_chunks(video, frames, EVAL_CHUNK):
            motion, cams = video.motion.select(idx), video.cameras[idx]
            with torch.no_grad():
                joints = model(motion, shape).joints  # [B, J, 3]
            pix, depth = cams.project(joints)  # [B, J, 2], [B, J]
            real = store.image(idx)
            head_mask = layers.head_mask(idx) if layers is not None else store.mask(idx)
            if renderer is not None:
                heads = renderer.render_views(motion, cams)
            else:
                heads = true_heads(real, head_mask, idx, motion, cams, pix[:, 0], depth[:, 0])
            sync(dev)
            t0 = time.perf_counter()
            out = compositor.composite(heads)
            images = torch.stack([f.image.float() for f in out]).cpu()
            sync(dev)
            seconds += time.perf_counter() - t0
            if layers is not None:
                band = neck_band(head_mask, layers.torso_mask(idx), band_px)
            else:
                band = neck_band(head_mask, None, band_px, below_y=pix[:, JAW_JOINT, 1])
            scores.add(idx.tolist(), images.clamp(0, 1), real, band)
            report_pairs(real, images, on_frame, progress)
    finally:
        compositor.close()
        if renderer is not None:
            renderer.close()
    means = mean_scores(scores.rows)
    heads_label = f"avatar {avatar_plugin} {(avatar_config or {}).get('path', '')}".strip() if avatar_plugin else "ground truth"
    return CompositeReport(torso=torso_plugin, heads=heads_label, data=str(video.root), format=video.format,
                           frames=frames, psnr=means["psnr"], ssim=means["ssim"], lpips=means.get("lpips"),
                           band_psnr=means["band_psnr"], band_ssim=means["band_ssim"], band_px=band_px,
                           lpips_reason=scores.lpips_reason,
                           composite_fps=len(frames) / seconds if seconds > 0 else float("inf"), device=str(dev),
                           image_size=size, per_frame=scores.rows)


def true_heads(image: torch.Tensor, mask: torch.Tensor, idx: torch.Tensor, motion, cams,  # noqa: ANN001
                root_px: torch.Tensor, root_z: torch.Tensor) -> list[Frame]:
    """The frames' own heads as a renderer would give them: premultiplied RGBA (image [B, H, W, 3] x
    head mask [B, H, W, 1]), placed at the projected neck base with the scale of the camera there,
    carrying pose and camera."""
    rgba = torch.cat([image * mask, mask], dim=-1)
    poses = head_poses(motion, cams)
    fx = cams.K[:, 0, 0]
    return [Frame(rgba[k], int(i), int(i) / motion.fps,
                  placement=Placement((float(root_px[k, 0]), float(root_px[k, 1])), float(fx[k] / root_z[k])),
                  head=poses[k])
            for k, i in enumerate(idx.tolist())]

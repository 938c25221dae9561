"""Avatar evaluation against a tracked video (``being eval``, and ``being bench`` with ``--data``).

The avatar renders each held-out frame's tracked motion through that frame's tracked camera
(``FlameRenderer.render_views``); its premultiplied RGBA is laid over a background colour, and
the ground truth is the frame's image with the same colour where its mask is off (the training
harness's ``FrameStore.targets``, so training and evaluation compare the same pictures). PSNR,
SSIM and (when its weights are on disk) LPIPS compare the two, as the avatar papers do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..discovery import build_named
from ..errors import InputError
from .report import EvalReport, Scores, held_out_chunks, mean_scores, report_pairs, sync

#: Frames rendered and scored per call.
EVAL_CHUNK = 16


def evaluate_avatar(avatar_plugin: str, avatar_config: dict, data: str | Path, device: str = "auto", *,
                    format: str = "auto", head_model: str | None = None, test_frames: int | None = None,
                    all_frames: bool = False, background: Sequence[float] = (0.0, 0.0, 0.0),
                    on_frame: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                    progress: Callable[[int], None] | None = None) -> EvalReport:
    """Evaluate ``--avatar avatar_plugin`` (built with ``avatar_config``) on the held-out frames of
    the tracked video at ``data`` (every frame with ``all_frames``).

    ``on_frame(ground_truth [H, W, 3], render [H, W, 3])`` sees each compared pair (for videos)."""
    from ..datasets import load_tracked_video

    video = load_tracked_video(data, format=format, head_model=head_model, test_frames=test_frames)
    frames = _frames(video, all_frames)
    renderer = build_named("avatar", avatar_plugin, avatar_config, device)
    try:
        dev = torch.device(getattr(renderer, "device", "cpu"))
        scores = Scores(dev)
        bg = torch.tensor(list(background), dtype=torch.float32)
        seconds = 0.0
        for idx, store in held_out_chunks(video, frames, EVAL_CHUNK):
            sync(dev)
            t0 = time.perf_counter()
            try:
                rendered = renderer.render_views(video.motion.select(idx), video.cameras[idx])
            except NotImplementedError as exc:
                raise InputError(f"--avatar {avatar_plugin} cannot render through a dataset's cameras, so it "
                                 f"cannot be evaluated against one ({exc})") from None
            images = torch.stack([f.image.float() for f in rendered]).cpu()  # [B, H, W, 4], host copy included
            sync(dev)
            seconds += time.perf_counter() - t0
            pred = (images[..., :3] + (1.0 - images[..., 3:]) * bg).clamp(0.0, 1.0)
            truth = store.targets(idx, bg.expand(len(idx), 3))
            scores.add(idx.tolist(), pred, truth)
            report_pairs(truth, pred, on_frame, progress)
    finally:
        renderer.close()
    means = mean_scores(scores.rows)
    return EvalReport(avatar=str(avatar_config.get("path", "")), plugin=avatar_plugin, data=str(video.root),
                      format=video.format, frames=frames, psnr=means["psnr"], ssim=means["ssim"],
                      lpips=means.get("lpips"), lpips_reason=scores.lpips_reason,
                      render_fps=len(frames) / seconds if seconds > 0 else float("inf"), device=str(dev),
                      image_size=(video.cameras.width, video.cameras.height), per_frame=scores.rows)


def _frames(video, all_frames: bool) -> list[int]:  # noqa: ANN001 - a TrackedVideo
    train, test = video.split()
    frames = sorted(train + test) if all_frames else test
    if not frames:
        raise InputError(f"{video.root}: no frames to evaluate (no held-out frames)",
                         hint="pass --test-frames N or --all-frames")
    return frames

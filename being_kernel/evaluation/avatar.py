"""Avatar evaluation against a tracked video (``being eval``, and ``being bench`` with ``--data``).

The avatar renders each held-out frame's tracked motion through that frame's tracked camera
(``FlameRenderer.render_views``); its premultiplied RGBA is laid over a background colour, and
the ground truth is the frame's image with the same colour where its mask is off. PSNR, SSIM
and (when its weights are on disk) LPIPS compare the two, as the avatar papers do.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from .errors import InputError
from .cameras import Cameras


@dataclass
class EvalReport:
    """Mean metrics over the evaluated frames, per-frame values, and how fast the avatar rendered.

    psnr (dB), ssim in [-1, 1], lpips (None when unavailable: lpips_reason says why);
    render_fps: frames per second of ``render_views`` (skinning, posing, rasterization and the
    copy back to the host, synchronised on CUDA)."""

    avatar: str
    plugin: str
    data: str
    format: str
    frames: list[int]
    psnr: float
    ssim: float
    lpips: float | None
    lpips_reason: str | None
    render_fps: float
    device: str
    image_size: tuple[int, int]
    per_frame: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def evaluate_avatar(avatar_plugin: str, avatar_config: dict, data: str | Path, device: str = "auto", *,
                    format: str = "auto", head_model: str | None = None, test_frames: int | None = None,
                    all_frames: bool = False, background: Sequence[float] = (0.0, 0.0, 0.0),
                    on_frame: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                    progress: Callable[[int], None] | None = None) -> EvalReport:
    """Evaluate ``--avatar avatar_plugin`` (built with ``avatar_config``) on the held-out frames of
    the tracked video at ``data`` (every frame with ``all_frames``).

    ``on_frame(ground_truth [H, W, 3], render [H, W, 3])`` sees each compared pair (for videos)."""
    from . import config as cfg
    from .datasets import load_tracked_video
    from .discovery import Registry, build_plugin
    from .metrics import load_lpips, lpips_available, psnr, ssim

    video = load_tracked_video(data, format=format, head_model=head_model, test_frames=test_frames)
    spec = Registry.discover().spec("avatar", avatar_plugin)
    values = dict(avatar_config)
    if "device" in spec.config.model_fields:
        values.setdefault("device", device)
    renderer = build_plugin(spec, cfg.build(spec.config, "avatar", values), "avatar", avatar_plugin)
    try:
        train, test = video.split()
        frames = sorted(train + test) if all_frames else test
        if not frames:
            raise InputError(f"{video.root}: no frames to evaluate (no held-out frames)",
                             hint="pass --test-frames N or --all-frames")
        dev = torch.device(getattr(renderer, "device", "cpu"))
        reason = lpips_available()
        lpips_net = load_lpips(device=dev) if reason is None else None
        bg = torch.tensor(list(background), dtype=torch.float32)
        idx = torch.tensor(frames)
        motion = video.motion.select(idx)
        cams = video.cameras
        cameras = Cameras(cams.R[idx], cams.t[idx], cams.K[idx], cams.width, cams.height)
        seconds, per_frame = 0.0, []
        for a in range(0, len(frames), 16):
            b = min(a + 16, len(frames))
            sub = Cameras(cameras.R[a:b], cameras.t[a:b], cameras.K[a:b], cams.width, cams.height)
            _sync(dev)
            t0 = time.perf_counter()
            try:
                rendered = renderer.render_views(motion.slice(a, b), sub)
            except NotImplementedError as exc:
                raise InputError(f"--avatar {avatar_plugin} cannot render through a dataset's cameras, so it "
                                 f"cannot be evaluated against one ({exc})") from None
            images = torch.stack([f.image.float() for f in rendered]).cpu()  # [B, H, W, 4], host copy included
            _sync(dev)
            seconds += time.perf_counter() - t0
            pred = (images[..., :3] + (1.0 - images[..., 3:]) * bg).clamp(0.0, 1.0)
            truth = torch.stack([_ground_truth(video, frames[k], bg) for k in range(a, b)])
            p, s = psnr(pred, truth), ssim(pred, truth)
            lp = lpips_net(pred.to(dev), truth.to(dev)).cpu() if lpips_net is not None else None
            for k in range(b - a):
                row = {"index": frames[a + k], "psnr": float(p[k]), "ssim": float(s[k])}
                if lp is not None:
                    row["lpips"] = float(lp[k])
                per_frame.append(row)
                if on_frame is not None:
                    on_frame(truth[k], pred[k])
            if progress is not None:
                progress(b - a)
    finally:
        renderer.close()

    def mean(key: str) -> float:
        return sum(r[key] for r in per_frame) / len(per_frame)

    return EvalReport(avatar=str(avatar_config.get("path", "")), plugin=avatar_plugin, data=str(video.root),
                      format=video.format, frames=frames, psnr=mean("psnr"), ssim=mean("ssim"),
                      lpips=mean("lpips") if lpips_net is not None else None, lpips_reason=reason,
                      render_fps=len(frames) / seconds if seconds > 0 else float("inf"), device=str(dev),
                      image_size=(cams.width, cams.height), per_frame=per_frame)


def _ground_truth(video, i: int, background: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - a TrackedVideo
    """[H, W, 3]: frame i's image with ``background`` where its mask is off."""
    mask = video.load_mask(i)
    return video.load_image(i) * mask + background * (1.0 - mask)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

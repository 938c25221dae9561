"""The layers under the head: loading a background/torso image or video, and drawing the default torso.

Every layer is premultiplied RGBA ``[N, H, W, 4]`` at the output size (N = 1 for a still), kept on
the CPU as loaded and copied once to each device it is used on. Pixel coordinates are continuous:
x right, y down, pixel (i, j) covers [j, j+1) x [i, i+1) and has its centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import av
import numpy as np
import torch
import torch.nn.functional as F

from being_kernel import ConfigError

#: Longest video layer accepted, in frames (all of them are decoded once and kept at the output size).
MAX_FRAMES = 1000

#: Skin of the procedural neck, RGB in [0, 1]: the kernel's demo head's neck colour where it is cut
#: (its texture, averaged over the neck's lowest 3 cm, as the splatting renderer shows it), so that
#: head's neck and the drawn neck meet without a visible join (tests/test_static.py checks it).
SKIN_RGB = (0.71, 0.525, 0.427)

#: Half-width (metres) of the procedural neck at the neck base: the demo head's neck cut
#: (regions "neck_boundary"/"neck": 5.3 cm in the mesh) plus the Gaussians' extent beyond it, as
#: measured in its renderings (5.43 cm).
NECK_HALF_WIDTH = 0.0543
#: Above the neck base the drawn neck narrows by this many metres per metre, faster than the head's
#: neck (0.08), so it stays hidden under the head's neck also when the head turns or tilts.
NECK_TAPER = 0.25
#: How far (metres) the procedural neck reaches above the neck base, under the head.
NECK_TOP = 0.012

#: Supersampling factor per axis of the procedural torso (then average-pooled: anti-aliased edges).
SUPERSAMPLE = 4


class Layer:
    """Premultiplied RGBA frames ``[N, H, W, 4]`` (uint8 or float32); frame i of the output uses i mod N.

    ``skin`` ``[H, W]`` float32 (the procedural torso only): how much of each pixel is drawn skin of
    colour ``skin_rgb``, so the compositor can recolour it to continue the head's neck."""

    def __init__(self, frames: torch.Tensor, skin: torch.Tensor | None = None,
                 skin_rgb: Sequence[float] = SKIN_RGB) -> None:
        if frames.ndim != 4 or frames.shape[-1] != 4 or frames.shape[0] < 1:
            raise ValueError(f"a layer must be [N, H, W, 4] with N >= 1, got {tuple(frames.shape)}")
        self._frames = frames
        self.skin, self.skin_rgb = skin, tuple(skin_rgb)
        self._by_device: dict[torch.device, torch.Tensor] = {}
        self._skin_by_device: dict[torch.device, torch.Tensor] = {}
        self._skin_box: tuple[int, int, int, int] | None = None

    @property
    def skin_box(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1): the rows and columns that hold any drawn skin (empty when none)."""
        if self._skin_box is None:
            rows = torch.nonzero(self.skin.amax(1) > 0).squeeze(1) if self.skin is not None else torch.zeros(0)
            cols = torch.nonzero(self.skin.amax(0) > 0).squeeze(1) if self.skin is not None else torch.zeros(0)
            self._skin_box = ((int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1) if len(rows)
                              else (0, 0, 0, 0))
        return self._skin_box

    def skin_on(self, device: torch.device) -> torch.Tensor | None:
        """``skin`` on ``device`` (copied once), or None."""
        if self.skin is None:
            return None
        if device not in self._skin_by_device:
            self._skin_by_device[device] = self.skin.to(device)
        return self._skin_by_device[device]

    def __len__(self) -> int:
        return int(self._frames.shape[0])

    def get(self, indices: Sequence[int], device: torch.device) -> torch.Tensor:
        """Float32 premultiplied RGBA ``[B, H, W, 4]`` of the frames for output frames ``indices``."""
        frames = self._by_device.get(device)
        if frames is None:
            frames = self._by_device[device] = self._frames.to(device)
        picked = frames[torch.tensor([i % len(self) for i in indices], device=device)]
        return picked.float().div_(255.0) if picked.dtype == torch.uint8 else picked.float()


def over(layer: torch.Tensor, under: torch.Tensor) -> torch.Tensor:
    """Premultiplied RGBA ``layer [..., 4]`` over opaque RGB ``under [..., 3]``."""
    return layer[..., :3] + (1.0 - layer[..., 3:]) * under


def load_layer(path: str, field: str, size: tuple[int, int]) -> Layer:
    """Decode an image or video with PyAV, cover-fit every frame to ``size`` = (width, height).

    Raises ConfigError naming ``field`` for a missing or undecodable file or a video longer than
    MAX_FRAMES frames.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{field}: no such file: {path}", hint=f"set {field} to an existing image or video, or leave it unset")
    frames: list[torch.Tensor] = []
    too_long = ConfigError(
        f"{field}: {path} is longer than {MAX_FRAMES} frames",
        hint=f"trim it to at most {MAX_FRAMES} frames (it is kept decoded in memory at the output size), "
        "e.g. ffmpeg -i in.mp4 -frames:v 1000 out.mp4",
    )
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise ConfigError(f"{field}: {path} has no image or video stream", hint="use a png/jpg image or a video")
            stream = container.streams.video[0]
            if stream.frames and stream.frames > MAX_FRAMES:
                raise too_long
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if len(frames) >= MAX_FRAMES:
                    raise too_long
                frames.append(cover_fit(frame.to_ndarray(format="rgba"), size))
    except (av.FFmpegError, OSError) as e:
        raise ConfigError(f"{field}: cannot decode {path}: {e}", hint="use a png/jpg image or a video PyAV can read") from e
    if not frames:
        raise ConfigError(f"{field}: {path} has no decodable frames", hint="use a png/jpg image or a video")
    return Layer(torch.stack(frames))


def cover_box(source: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, cw, ch): the centred crop of a (w, h) = ``source`` image that cover-fit scales to
    (width, height) = ``size`` (the output's aspect ratio, as large as the source allows)."""
    (w, h), (width, height) = source, size
    if w * height > width * h:  # wider than the output: keep the full height
        ch, cw = h, max(1, min(w, round(h * width / height)))
    else:
        ch, cw = max(1, min(h, round(w * height / width))), w
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def cover_fit_point(xy: tuple[float, float], source: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
    """Where the point ``xy`` (pixels) of a (w, h) = ``source`` image lands after ``cover_fit`` to ``size``."""
    x0, y0, cw, ch = cover_box(source, size)
    return (xy[0] - x0) * size[0] / cw, (xy[1] - y0) * size[1] / ch


def cover_fit_scale(source: tuple[int, int], size: tuple[int, int]) -> float:
    """How much ``cover_fit`` to ``size`` magnifies a (w, h) = ``source`` image: max(W / w, H / h)."""
    return max(size[0] / source[0], size[1] / source[1])


def cover_fit(rgba: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 straight RGBA ``[h, w, 4]`` -> uint8 premultiplied RGBA ``[H, W, 4]``: scaled to cover
    (width, height) = ``size``, centre-cropped. Resampled premultiplied, so edges keep their colour."""
    width, height = size
    t = torch.from_numpy(np.ascontiguousarray(rgba)).float().div_(255.0)
    t[..., :3] *= t[..., 3:]
    h, w = t.shape[:2]
    x0, y0, cw, ch = cover_box((w, h), size)
    t = t[y0 : y0 + ch, x0 : x0 + cw]
    if (ch, cw) != (height, width):
        t = F.interpolate(
            t.permute(2, 0, 1)[None], size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )[0].permute(1, 2, 0)
    return t.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def _smoothstep(e0: float, e1: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _torso_samples(dx: torch.Tensor, dy: torch.Tensor, skin: torch.Tensor, shirt: torch.Tensor) -> torch.Tensor:
    """Premultiplied RGBA and skin coverage ``[..., 5]`` of the procedural torso at offsets (dx, dy)
    in metres from the neck base (x right, y down); hard edges (the caller supersamples)."""
    u = dx.abs()
    # Neck: NECK_HALF_WIDTH at the neck base, narrowing upwards faster than the demo head's neck (so it stays
    # under the head's neck, which covers it above the base), up to NECK_TOP metres above it (no higher:
    # a turning head must not uncover it); below the base
    # it flares into the shoulders.
    neck_hw = NECK_HALF_WIDTH + torch.where(dy < 0, NECK_TAPER * dy, 0.03 * _smoothstep(0.0, 0.06, dy))
    neck = (u <= neck_hw) & (dy >= -NECK_TOP)
    # Shirt outline: a trapezius slope from the neck to the shoulder points, round shoulder caps, arms down.
    cap_r, cap_u = 0.06, 0.17
    slope_top = 0.035 + 0.045 * _smoothstep(0.05, cap_u, u)
    cap_top = (0.08 + cap_r) - torch.sqrt((cap_r**2 - (u - cap_u) ** 2).clamp(min=0.0))
    outline = (u <= cap_u + cap_r) & (dy >= torch.where(u <= cap_u, slope_top, cap_top))
    # A round neckline (skin shows through) with a darker collar band around it.
    neckline = (dx / 0.075) ** 2 + ((dy - 0.035) / 0.05) ** 2 <= 1.0
    collar = outline & ((dx / 0.089) ** 2 + ((dy - 0.035) / 0.064) ** 2 <= 1.0) & ~neckline
    skin_mask = neck | (outline & neckline)
    shirt_mask = outline & ~neckline & ~collar
    rgb = torch.zeros(dx.shape + (3,), dtype=torch.float32, device=dx.device)
    rgb = torch.where(skin_mask[..., None], skin, rgb)
    rgb = torch.where(shirt_mask[..., None], shirt, rgb)
    rgb = torch.where(collar[..., None], shirt * 0.72, rgb)
    alpha = (skin_mask | shirt_mask | collar).float()[..., None]
    return torch.cat([rgb * alpha, alpha, skin_mask.float()[..., None]], dim=-1)


def draw_torso(
    size: tuple[int, int],
    neck_xy_px: tuple[float, float],
    px_per_metre: float,
    shirt_rgb: Sequence[float],
    skin_rgb: Sequence[float] = SKIN_RGB,
    *,
    supersample: int = SUPERSAMPLE,
    band_rows: int = 64,
) -> Layer:
    """The procedural torso (neck, shoulders, shirt with a collar) centred under the neck base at
    ``neck_xy_px`` (output pixels), sized in metres at ``px_per_metre``: a one-frame float32 Layer."""
    width, height = size
    s, ss = float(px_per_metre), supersample
    nx, ny = neck_xy_px
    skin = torch.tensor(skin_rgb, dtype=torch.float32)
    shirt = torch.tensor(shirt_rgb, dtype=torch.float32)
    xs = ((torch.arange(width * ss, dtype=torch.float64) + 0.5) / ss - nx) / s
    out = torch.empty(height, width, 5)
    for r0 in range(0, height, band_rows):  # bands of rows keep the supersampled grid small
        r1 = min(height, r0 + band_rows)
        ys = ((torch.arange(r0 * ss, r1 * ss, dtype=torch.float64) + 0.5) / ss - ny) / s
        dy, dx = torch.meshgrid(ys, xs, indexing="ij")
        fine = _torso_samples(dx.float(), dy.float(), skin, shirt)  # [rows*ss, W*ss, 5]
        out[r0:r1] = F.avg_pool2d(fine.permute(2, 0, 1)[None], ss)[0].permute(1, 2, 0)
    return Layer(out[None, ..., :4].contiguous(), skin=out[..., 4].contiguous(), skin_rgb=skin_rgb)

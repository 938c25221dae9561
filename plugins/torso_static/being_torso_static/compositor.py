"""The ``static`` TorsoCompositor: head over a fixed (or looping) background and torso.

Per output frame: background colour <- background layer <- torso layer <- head, all premultiplied
"over". The head is scaled (optional) and translated so its Placement anchor lands on
``neck_xy * size``; below the anchor its alpha fades out over ``feather_px`` pixels. Each frame is
composited on its own, so the stream equals the batch exactly.

With a ``scene`` (a photo's background plate, torso layer, neck position and head scale) the
fields the user did not set come from it: the size, both layers, and the neck target and head
scale, moved and scaled by the same cover-fit as its images.

The head pose (``Frame.head``) is not read: the torso stays still (following the neck is the
``warp`` compositor's job), and a frame whose renderer attached no pose is composited the same.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from being_kernel import ConfigError
from being_kernel.api import Frame, FramewiseStream, TorsoCompositor, TorsoCompositorInfo, resolve_device

from .layers import Layer, cover_fit_point, cover_fit_scale, draw_torso, load_layer, over
from .spec import StaticConfig

#: Frames composited together at most (bounds memory for long batches at large sizes).
CHUNK = 8

#: The head's neck colour is read over this many metres just above the anchor (output scale).
NECK_BAND_M = 0.005
#: Below the anchor each column of the drawn neck carries the head's colour there, fading out over
#: this many metres (its texture and shading continue instead of stopping at a line).
NECK_BLEND_M = 0.03

#: Procedural torsos kept drawn at once (one per head pixel scale seen; the least recently used goes).
TORSO_CACHE = 8


class StaticTorso(TorsoCompositor):
    """Composites premultiplied RGBA head frames onto a static plate; see the package README."""

    def __init__(self, config: StaticConfig) -> None:
        if not isinstance(config, StaticConfig):
            config = StaticConfig.model_validate(config)
        super().__init__(config)
        c = self.config
        # A scene gives what the user did not set explicitly: size, layers, neck target, head scale.
        scene = _read_scene(c.scene) if c.scene is not None else None
        given = c.model_fields_set if scene is not None else set(StaticConfig.model_fields)
        self._size = tuple(c.size) if "size" in given else scene.size
        width, height = self._size
        if "neck_xy" in given:
            self._target = (c.neck_xy[0] * width, c.neck_xy[1] * height)
        else:  # the scene's neck, moved as its images are by the cover-fit to the output size
            self._target = cover_fit_point(scene.neck_xy, scene.size, self._size)
        self._head_ppm: float | None = (c.head_px_per_metre if "head_px_per_metre" in given
                                        else scene.head_px_per_metre * cover_fit_scale(scene.size, self._size))
        background = (c.background, "background") if "background" in given else (str(scene.background), "scene")
        torso = (c.torso, "torso") if "torso" in given else (str(scene.torso), "scene")
        self._device = resolve_device(c.device)  # None: follow the incoming frames
        self._background: Layer | None = load_layer(*background, self._size) if background[0] else None
        # The torso layer: a file (the scene's: the photo's own neck, so never recoloured), or the
        # procedural torso drawn at the output head scale. With no head scale that is the renderer's
        # scale, known only from the frames: drawn lazily per scale (key: px/m rounded to 1e-3) and cached.
        self._torsos: dict[float | None, Layer] = {}
        self._fixed_torso = bool(torso[0]) or self._head_ppm is not None
        if torso[0]:
            self._torsos[None] = load_layer(*torso, self._size)
        elif self._head_ppm is not None:
            self._torsos[None] = draw_torso(self._size, self._target, self._head_ppm, c.shirt_color)
        self._color = torch.tensor(c.background_color, dtype=torch.float32)
        self._plates: dict[tuple, torch.Tensor] = {}  # the plate per (device, torso key), when it is a still

    def info(self) -> TorsoCompositorInfo:
        return TorsoCompositorInfo(size=self._size, needs_alpha=True, latency_frames=0)

    def open_stream(self) -> FramewiseStream:
        return FramewiseStream(self.composite)

    def close(self) -> None:
        self._plates.clear()

    # -- the torso layer -------------------------------------------------------------------------

    def _torso_key(self, f: Frame) -> float | None:
        """Which torso a head frame goes on: None (the one fixed torso) or its px/m, rounded."""
        return None if self._fixed_torso else round(f.placement.px_per_metre, 3)

    def _torso(self, key: float | None) -> Layer:
        layer = self._torsos.get(key)
        if layer is None:
            if len(self._torsos) >= TORSO_CACHE:  # drop the least recently used scale and its plates
                old = next(iter(self._torsos))
                del self._torsos[old]
                for k in [k for k in self._plates if k[1] == old]:
                    del self._plates[k]
            layer = draw_torso(self._size, self._target, key, self.config.shirt_color)
        else:
            del self._torsos[key]  # re-inserted below: most recently used last
        self._torsos[key] = layer
        return layer

    # -- compositing ---------------------------------------------------------------------------

    def composite(self, heads: Sequence[Frame]) -> list[Frame]:
        return self._composite(heads, with_coverage=False)[0]

    def composite_with_coverage(self, heads: Sequence[Frame]) -> tuple[list[Frame], torch.Tensor]:
        return self._composite(heads, with_coverage=True)

    def _composite(self, heads: Sequence[Frame], with_coverage: bool) -> tuple[list[Frame], torch.Tensor | None]:
        for f in heads:
            self._check(f)
        out: list[Frame] = []
        coverage: list[torch.Tensor] = []
        for i in range(0, len(heads), CHUNK):
            frames, cov = self._composite_chunk(heads[i : i + CHUNK], with_coverage)
            out.extend(frames)
            if cov is not None:
                coverage.append(cov)
        if not with_coverage:
            return out, None
        width, height = self._size
        return out, (torch.cat(coverage) if coverage else torch.zeros(0, height, width, 2))

    def _check(self, f: Frame) -> None:
        if not f.has_alpha:
            raise ValueError(
                f"static torso: head frame {f.index} is RGB [H, W, 3]; it needs premultiplied RGBA [H, W, 4] "
                "(use a renderer that outputs alpha)"
            )
        if f.placement is None:
            raise ValueError(
                f"static torso: head frame {f.index} has no placement; the renderer must report a Placement "
                "(anchor_xy, px_per_metre) so the head can be put on the neck"
            )
        if not (f.placement.px_per_metre > 0 and all(math.isfinite(v) for v in f.placement.anchor_xy)):
            raise ValueError(f"static torso: head frame {f.index} has an invalid placement {f.placement}")

    def _plate(self, indices: list[int], device: torch.device, key: float | None = None) -> torch.Tensor:
        """Opaque RGB ``[B, H, W, 3]``: background colour, background layer, torso layer ``key``."""
        torso = self._torso(key)
        static = len(torso) == 1 and (self._background is None or len(self._background) == 1)
        if static and (device, key) in self._plates:
            return self._plates[(device, key)].expand(len(indices), -1, -1, -1)
        keys = [0] if static else indices
        width, height = self._size
        plate = self._color.to(device).expand(len(keys), height, width, 3)
        if self._background is not None:
            plate = over(self._background.get(keys, device), plate)
        plate = over(torso.get(keys, device), plate)
        if static:
            self._plates[(device, key)] = plate
            return plate.expand(len(indices), -1, -1, -1)
        return plate

    def _composite_chunk(self, heads: Sequence[Frame], with_coverage: bool
                         ) -> tuple[list[Frame], torch.Tensor | None]:
        device = self._device or heads[0].image.device
        keys = [self._torso_key(f) for f in heads]
        if all(k == keys[0] for k in keys):
            out = self._plate([f.index for f in heads], device, keys[0]).clone(memory_format=torch.contiguous_format)
        else:  # heads at different pixel scales: each on its own torso
            out = torch.cat([self._plate([f.index], device, k) for f, k in zip(heads, keys)])
        width, height = self._size
        coverage = torch.zeros(len(heads), height, width, 2, device=device) if with_coverage else None
        for b, (f, key) in enumerate(zip(heads, keys)):
            placed = self._put_head(out[b], f.image.to(device=device, dtype=torch.float32), f)
            torso = self._torso(key)
            if coverage is not None:  # only when a stage asked for it (a restorer): the plain path does not pay
                coverage[b, ..., 1] = torso.get([f.index], device)[0, ..., 3]
                if placed is not None:
                    coverage[b, ..., 0] = _alpha_in_box(placed, (0, height, 0, width), device)
            if placed is not None and torso.skin is not None:
                self._continue_neck(out[b], placed, torso, f)
        out.clamp_(0.0, 1.0)
        frames = [Frame(image=out[b], index=f.index, pts=f.pts, depth=None, placement=None) for b, f in enumerate(heads)]
        return frames, coverage

    def _put_head(self, canvas: torch.Tensor, head: torch.Tensor, frame: Frame) -> tuple[int, int, torch.Tensor] | None:
        """Composite one premultiplied RGBA head ``[h, w, 4]`` over ``canvas [H, W, 3]`` in place.
        Returns (y0, x0, patch): the premultiplied RGBA ``[h', w', 4]`` put at canvas row y0,
        column x0 (feather applied), or None when the head is entirely outside the canvas."""
        ax, ay = frame.placement.anchor_xy
        scale = 1.0 if self._head_ppm is None else self._head_ppm / frame.placement.px_per_metre
        h, w = head.shape[:2]
        if scale != 1.0:  # resample the premultiplied image; the anchor scales with it
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            head = F.interpolate(
                head.permute(2, 0, 1)[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=scale < 1.0
            )[0].permute(1, 2, 0)
            ax, ay = ax * nw / w, ay * nh / h
            h, w = nh, nw
        tx, ty = self._target
        sx, sy = tx - ax, ty - ay  # head pixel centre (j+.5, i+.5) -> output (j+.5+sx, i+.5+sy)
        ix, iy = math.floor(sx), math.floor(sy)
        fx, fy = sx - ix, sy - iy
        if fx or fy:  # sub-pixel part: bilinear shift into an image one pixel larger
            img = head.permute(2, 0, 1)
            head = (
                (1 - fy) * (1 - fx) * F.pad(img, (0, 1, 0, 1))
                + (1 - fy) * fx * F.pad(img, (1, 0, 0, 1))
                + fy * (1 - fx) * F.pad(img, (0, 1, 1, 0))
                + fy * fx * F.pad(img, (1, 0, 1, 0))
            ).permute(1, 2, 0)
            h, w = h + 1, w + 1
        width, height = self._size
        x0, x1 = max(0, ix), min(width, ix + w)
        y0, y1 = max(0, iy), min(height, iy + h)
        if x0 >= x1 or y0 >= y1:
            return None  # entirely outside the canvas
        patch = head[y0 - iy : y1 - iy, x0 - ix : x1 - ix]
        rows = torch.arange(y0, y1, device=canvas.device, dtype=torch.float32) + 0.5 - ty  # below anchor > 0
        feather = self.config.feather_px
        if feather > 0:
            t = (rows / feather).clamp(0.0, 1.0)
            keep = 1.0 - t * t * (3.0 - 2.0 * t)
        else:
            keep = (rows <= 0).float()
        patch = patch * keep[:, None, None]
        region = canvas[y0:y1, x0:x1]
        region.copy_(over(patch, region))
        return y0, x0, patch

    def _continue_neck(self, canvas: torch.Tensor, placed: tuple[int, int, torch.Tensor], torso: Layer,
                       frame: Frame) -> None:
        """Recolour the torso's drawn skin where the head does not cover it, so
        the head's neck goes on without a step: all of it takes the mean colour of the head's neck
        just above the anchor, and below the anchor each column also carries that column's own
        colour there (the head's texture and shading), fading out over NECK_BLEND_M. Only the
        skin's bounding box is touched."""
        y0, x0, patch = placed
        ty = self._target[1]
        px_per_m = self._head_ppm or frame.placement.px_per_metre
        h, w = patch.shape[:2]
        band = torch.arange(y0, y0 + h, device=canvas.device, dtype=torch.float32) + 0.5 - ty  # rows below anchor > 0
        rows = (band > -NECK_BAND_M * px_per_m) & (band <= 0)
        if not bool(rows.any()):
            return
        a = patch[rows, :, 3].sum(0)  # [w] alpha of each column in the band
        n = float(rows.sum())
        column = patch[rows, :, :3].sum(0) / a.clamp_min(1e-6)[:, None]  # [w, 3] straight colour per column
        solid = ((a / n - 0.5) / 0.4).clamp(0.0, 1.0)  # [w] columns the head's neck fills in the band
        if float(solid.sum()) < 1.0:
            return  # no neck of the head above the anchor (turned away or cropped): leave the drawn skin
        mean = (column * solid[:, None]).sum(0) / solid.sum()  # [3]
        (by0, by1, bx0, bx1), skin = torso.skin_box, torso.skin_on(canvas.device)  # skin [H, W]
        base = torch.tensor(torso.skin_rgb, device=canvas.device)
        # per row below the anchor: how much of the column's own colour remains (1 at the anchor)
        below = torch.arange(by0, by1, device=canvas.device, dtype=torch.float32) + 0.5 - ty
        fade = 1.0 - (below / (NECK_BLEND_M * px_per_m)).clamp(0.0, 1.0)
        fade = fade * fade * (3.0 - 2.0 * fade) * (below > -NECK_BAND_M * px_per_m).float()  # [by1 - by0]
        detail = torch.zeros(bx1 - bx0, 3, device=canvas.device)  # the columns' own colour, box columns
        c0, c1 = max(x0, bx0), min(x0 + w, bx1)
        if c0 < c1:
            detail[c0 - bx0 : c1 - bx0] = ((column - mean) * solid[:, None])[c0 - x0 : c1 - x0]
        shown = 1.0 - _alpha_in_box(placed, (by0, by1, bx0, bx1), canvas.device)  # the drawn layer's share
        canvas[by0:by1, bx0:bx1] += (shown * skin[by0:by1, bx0:bx1])[..., None] * (
            (mean - base) + fade[:, None, None] * detail[None])


def _read_scene(path: str):  # noqa: ANN202 - a being_kernel.datasets.Scene
    """The scene at ``path``; a bad one is a ConfigError naming the field."""
    from being_kernel import InputError
    from being_kernel.datasets import read_scene

    try:
        return read_scene(Path(path).expanduser())
    except InputError as exc:
        raise ConfigError(f"scene: {exc}", hint=exc.hint) from exc


def _alpha_in_box(placed: tuple[int, int, torch.Tensor], box: tuple[int, int, int, int],
                  device: torch.device) -> torch.Tensor:
    """The placed head's alpha ``[y1 - y0, x1 - x0]`` over canvas box (y0, y1, x0, x1)."""
    py, px, patch = placed
    y0, y1, x0, x1 = box
    alpha = torch.zeros(y1 - y0, x1 - x0, device=device)
    r0, r1 = max(y0, py), min(y1, py + patch.shape[0])
    c0, c1 = max(x0, px), min(x1, px + patch.shape[1])
    if r0 < r1 and c0 < c1:
        alpha[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0] = patch[r0 - py : r1 - py, c0 - px : c1 - px, 3]
    return alpha

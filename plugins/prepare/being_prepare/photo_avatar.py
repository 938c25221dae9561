"""A photo to an avatar in one call (``being avatar from-photo``): ``being prepare`` on the photo,
``being fit`` on the one-frame dataset (the avatar plugin's single-view training), then how well
the avatar gives the photo back and a preview image.

The avatar plugin is reached through the kernel (registry, trainer, renderer contract), never
imported, so any installed avatar plugin that trains from a tracked video can be used.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from being_kernel import InputError
from being_kernel.datasets import load_tracked_video
from being_kernel.media import read_image, write_png

from .pipeline import PrepareOptions, prepare_video


@dataclass
class FaceFit:
    """How the avatar re-renders its photo inside the face (the face-mesh oval, found again on
    the photo): in the tracked pose and expression, and in that pose with a neutral face
    (expression, jaw and eyelids at rest). PSNR in dB, SSIM in [0, 1]."""

    psnr_db: float
    ssim: float
    neutral_psnr_db: float
    neutral_ssim: float
    face_pixels: int


def face_oval_mask(image: np.ndarray) -> np.ndarray:
    """float32 [H, W]: the face-mesh face oval of the largest face in RGB uint8 ``image``, filled
    (InputError when no face is found)."""
    from .landmarks import FaceFollower, FaceLandmarker
    from .masks import FACE_OVAL, _fill_polygon

    with FaceLandmarker() as landmarker:
        points = FaceFollower().choose(landmarker(image))
    if points is None:
        raise InputError("no face found in the photo to measure the avatar against")
    return _fill_polygon(points[list(FACE_OVAL)], *image.shape[:2]).astype(np.float32)


def build_avatar(name: str, path: Path, size: tuple[int, int], device: str):  # noqa: ANN201 - a FlameRenderer
    """The avatar plugin ``name`` loading the avatar directory ``path``, rendering ``size`` images."""
    from being_kernel.api import Registry, build_config, build_plugin

    spec = Registry.discover().spec("avatar", name)
    config = build_config(spec.config, "avatar", {"path": str(path), "size": list(size), "device": device})
    return build_plugin(spec, config, "avatar", name)


def _neutral(motion):  # noqa: ANN001, ANN202 - Motion -> Motion
    return dataclasses.replace(motion, expression=torch.zeros_like(motion.expression), jaw=torch.zeros_like(motion.jaw),
                               eyelids=torch.zeros_like(motion.eyelids))


def face_fit(dataset: str | Path, avatar: str | Path, *, plugin: str = "splatting", device: str = "auto"
             ) -> tuple[FaceFit, np.ndarray]:
    """Render the avatar through the photo's tracked camera (frame 0 of ``dataset``) and compare
    it with the photo inside its face oval, the avatar over black (so any transparency counts as
    error). Returns the figures and the renders [2, H, W, 3] uint8 (tracked, neutral) over the
    photo, for the preview."""
    from being_kernel.metrics import psnr, ssim

    video = load_tracked_video(dataset)
    w, h = video.cameras.width, video.cameras.height
    renderer = build_avatar(plugin, Path(avatar), (w, h), device)
    try:
        motion, cams = video.motion.slice(0, 1), video.cameras[0:1]
        frames = [renderer.render_views(m, cams)[0] for m in (motion, _neutral(motion))]
    finally:
        renderer.close()
    photo = read_image(Path(video.root) / "input" / "00000.png")
    target = torch.from_numpy(photo).float() / 255
    mask = torch.from_numpy(face_oval_mask(photo))[..., None]
    out, renders = [], []
    for f in frames:
        rgba = f.image.detach().float().cpu()  # premultiplied: over black as it is
        pred = rgba[..., :3].clamp(0, 1)
        out += [float(psnr(pred, target, mask)), float(ssim(pred, target, mask=mask))]
        renders.append(((pred + (1 - rgba[..., 3:]) * target).clamp(0, 1) * 255).round().byte().numpy())
    return FaceFit(out[0], out[1], out[2], out[3], int(mask.sum())), np.stack(renders)


def write_preview(path: Path, photo: np.ndarray, renders: np.ndarray) -> Path:
    """PNG: the photo | the avatar in its pose | the avatar in its pose, neutral face."""
    write_png(path, np.concatenate([photo, *renders], axis=1))
    return path


def from_photo(photo: str | Path, out: str | Path, *, plugin: str = "splatting", size: int = 512, device: str = "auto",
               steps: int | None = None, data: str | Path | None = None, overwrite: bool = False, progress: bool = True,
               say: Callable[[str], None] = print) -> tuple[Path, FaceFit]:
    """``being prepare PHOTO`` into ``data`` (a temporary directory when None), ``being fit
    --avatar plugin``, the face-fit figures and ``preview.png``. All of it is made in a hidden
    directory beside ``out`` that becomes ``out`` only when complete: an error or an interrupt
    leaves nothing (but ``data``, when asked for, once it is complete)."""
    from being_kernel.api import Registry
    from being_kernel.media import check_output_dir
    from being_kernel.train import fit_dataset, trainer_of

    out = check_output_dir(Path(out), force=overwrite)
    spec = trainer_of(Registry.discover(), "avatar", plugin)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        data = Path(data) if data is not None else scratch / "data"
        prepare_video(photo, data, PrepareOptions(size=size, device=device, overlay=False, overwrite=overwrite,
                                                  progress=progress), say=say)
        avatar = scratch / out.name
        values = {"fit": {"device": device, **({"steps": steps} if steps is not None else {})}}
        fit_dataset(spec, "avatar", plugin, data, avatar, values, work=scratch / "fit-work", restart=True, log=say,
                    announce=say, progress=progress)
        quality, renders = face_fit(data, avatar, plugin=plugin, device=device)
        write_preview(avatar / "preview.png", read_image(data / "input" / "00000.png"), renders)
        if out.exists():  # check_output_dir allowed it: empty, or --overwrite
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        avatar.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out, quality

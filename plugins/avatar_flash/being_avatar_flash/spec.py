"""The ``flash`` avatar renderer as the kernel lists it: config models and spec.

Light on purpose (pydantic and being_kernel.spec only): listing plugins imports this module; the
torch implementation in ``renderer.py`` and ``train/`` is imported only when the plugin is used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel import BenchSettings, DeviceName, ImageSize, PathName, PluginConfig, PluginSpec, TrainerSpec
from being_kernel.train import FitConfig


class FlashConfig(PluginConfig):
    """Config of the ``flash`` renderer (FlashAvatar: Gaussians on a UV map, deformed by an MLP)."""

    path: PathName | None = Field(
        None, description="Avatar directory written by `being fit --avatar flash` (avatar.json, gaussians.safetensors, "
        "deform.safetensors). Required: there is no built-in flash avatar.")
    size: ImageSize = Field((512, 512), description="Head image (width, height) in pixels.")
    device: DeviceName = Field("auto", description='Torch device: "auto" (cuda if available, else cpu), "cpu", "cuda" or "cuda:N".')
    backend: Literal["auto", "cpu", "gsplat"] = Field(
        "auto", description='Rasterizer: "auto" (gsplat on CUDA when installed, else the kernel\'s PyTorch renderer), '
        '"cpu" (the PyTorch renderer, any device) or "gsplat" (CUDA only).')
    batch_frames: int | None = Field(
        None, ge=1, le=256, description="Frames per call: the deformation network and the rasterizer each run once "
        "for all of them. None: 64 on CUDA, 1 on the CPU (one frame on each of torch's threads at once).")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description='The deformation network\'s arithmetic: "auto" (fp16 on CUDA, fp32 on the CPU), or '
        'one of fp32, fp16, bf16 (half precision on CUDA only).')
    sh_degree: int | None = Field(None, ge=0, le=3, description="SH degree used (None: all the avatar stores).")


class FlashFitConfig(FitConfig):
    """``being fit --avatar flash``: FlashAvatar training (Xiang et al., CVPR 2024). The common fields
    are the harness's ``FitConfig``; the defaults here are the public code's schedule (150 000 steps
    of one frame, Huber loss, LPIPS after the first tenth)."""

    steps: int = Field(150000, ge=1, description="Optimisation steps (each on batch_frames frames).")
    batch_frames: int = Field(1, ge=1, le=64, description="Training frames per step.")
    photometric: Literal["l1", "huber"] = Field("huber", description="Photometric distance: FlashAvatar's Huber.")
    ssim_weight: float = Field(0.0, ge=0, le=1, description="FlashAvatar has no SSIM term.")
    lpips_from: float = Field(0.1, ge=0, le=1, description="LPIPS joins after this fraction (15 000 of 150 000 steps).")
    uv_size: int = Field(128, ge=8, le=1024, description="UV map resolution: one Gaussian per covered texel.")
    mouth_weight: float = Field(40.0, ge=0, description="Extra Huber weight inside the mouth mask (lips and mouth "
                                "interior of the tracked mesh).")
    sh_degree: int = Field(3, ge=0, le=3, description="Spherical-harmonics degree; one band is added every sh_interval steps.")
    sh_interval: int = Field(500, ge=1, description="Steps between SH bands.")
    network_lr: float = Field(1e-4, gt=0, description="Adam learning rate of the deformation network.")
    backend: Literal["auto", "cpu", "gsplat"] = Field("auto", description='Rasterizer: "auto", "cpu" or "gsplat".')


SPEC = PluginSpec(
    contract="avatar",
    description="FlashAvatar (CVPR 2024): Gaussians on a UV map of the head mesh, offsets from an expression-"
                "conditioned MLP; train with being fit",
    config=FlashConfig,
    factory="being_avatar_flash.renderer:FlashRenderer",
    motion_spaces=("being-demo-head", "flame2020", "flame2023"),
    trainer=TrainerSpec("being_avatar_flash.train.method:FlashFit", FlashFitConfig, "tracked-video"),
    bench=BenchSettings(sizes=((256, 256), (512, 512)), warmup=2),
)

"""The ``splatting`` avatar renderer as the kernel lists it: config model and spec.

Light on purpose (pydantic and being_kernel.spec only): listing plugins imports this module; the
torch implementation in ``renderer.py`` is imported only when the plugin is used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from being_kernel.spec import BenchSettings, DeviceName, ImageSize, PathName, PluginConfig, PluginSpec


class SplattingConfig(PluginConfig):
    """Config of the ``splatting`` renderer (SplattingAvatar: Gaussians embedded on a mesh)."""

    path: PathName | None = Field(
        None,
        description="Avatar directory (avatar.json + gaussians.safetensors). None: the built-in demo avatar "
        "made from the kernel's procedural head (no training, no download).",
    )
    size: ImageSize = Field((512, 512), description="Head image (width, height) in pixels.")
    device: DeviceName = Field("auto", description='Torch device: "auto" (cuda if available, else cpu), "cpu", "cuda" or "cuda:N".')
    backend: Literal["auto", "cpu", "gsplat"] = Field(
        "auto", description='Rasterizer: "auto" (gsplat on CUDA when installed, else the kernel\'s PyTorch renderer), '
        '"cpu" (the PyTorch renderer, any device) or "gsplat" (CUDA only).',
    )
    batch_frames: int = Field(4, ge=1, le=256, description="Frames rendered per rasterize call.")
    sh_degree: int | None = Field(
        None, ge=0, le=3,
        description="Spherical-harmonics degree used when the avatar stores SH colours (None: all it stores).",
    )


class SplattingFitConfig(PluginConfig):
    """``being fit --avatar splatting``: SplattingAvatar training (Shao et al., CVPR 2024) on a tracked video."""

    steps: int = Field(30000, ge=1, description="Optimisation steps (each on batch_frames frames).")
    max_minutes: float | None = Field(None, gt=0, description="Stop after this many minutes of training "
                                      "(the schedule then runs on elapsed time); None: run all steps.")
    batch_frames: int = Field(4, ge=1, le=64, description="Training frames per step.")
    init_gaussians: int = Field(30000, ge=100, description="Gaussians placed on the mesh at the start (by area).")
    max_gaussians: int = Field(150000, ge=100, description="Densification stops growing past this count.")
    sh_degree: int = Field(3, ge=0, le=3, description="Spherical-harmonics degree; one band is added every "
                           "sh_interval steps.")
    sh_interval: int = Field(1000, ge=1, description="Steps between SH bands.")
    densify_until: float = Field(0.6, ge=0, le=1, description="Densify and prune until this fraction of training.")
    densify_from: int = Field(500, ge=0, description="Steps before densification starts (the first Gaussians settle).")
    densify_interval: int = Field(500, ge=10, description="Steps between densification rounds.")
    densify_grad: float = Field(2e-4, gt=0, description="Screen-space gradient (3DGS units: NDC) above which a "
                                "Gaussian is cloned or split.")
    prune_opacity: float = Field(0.005, ge=0, lt=1, description="Gaussians less opaque than this are pruned.")
    walk_interval: int = Field(10, ge=1, description="Steps between triangle walks (Gaussians whose barycentric "
                               "coordinates left their triangle move to the neighbour).")
    ssim_weight: float = Field(0.2, ge=0, le=1, description="Loss = (1 - w) L1 + w (1 - SSIM) (+ LPIPS).")
    lpips: Literal["auto", "on", "off"] = Field(
        "auto", description='LPIPS loss term: "auto" uses it when its weights are on disk (never downloaded), '
        '"on" requires them, "off" never.')
    lpips_weight: float = Field(0.05, ge=0, description="Weight of the LPIPS term when used.")

    @field_validator("lpips", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: object) -> object:
        # --set values are read as YAML, where on / off are booleans
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    lpips_from: float = Field(0.5, ge=0, le=1, description="LPIPS joins the loss after this fraction of training.")
    background: Literal["random", "black", "white"] = Field(
        "random", description="What the masked-out pixels show during training: a random colour per frame "
        "(SplattingAvatar; keeps Gaussians off the background) or a fixed colour.")
    preview_every: int = Field(1000, ge=1, description="Steps between preview images (ground truth | render).")
    checkpoint_every: int = Field(2000, ge=1, description="Steps between resumable checkpoints.")
    seed: int = Field(0, description="Random seed (placement, frame order, backgrounds).")
    device: DeviceName = Field("auto", description='Torch device: "auto", "cpu", "cuda" or "cuda:N".')
    backend: Literal["auto", "cpu", "gsplat"] = Field("auto", description='Rasterizer: "auto", "cpu" or "gsplat".')


SPEC = PluginSpec(
    contract="avatar",
    description="SplattingAvatar (CVPR 2024): 3D Gaussians embedded on a FLAME-layout mesh; demo avatar built in",
    config=SplattingConfig,
    factory="being_avatar_splatting.renderer:SplattingRenderer",
    motion_spaces=("being-demo-head", "flame2020", "flame2023"),
    trainer="being_avatar_splatting.train.trainer:fit",
    fit_config=SplattingFitConfig,
    # On the GPU each rasterize call costs a few hundred small kernel launches for skinning and
    # posing, so frames per call sets throughput (H100, 512x512: 836 fps at 4, 3326 at 50).
    bench=BenchSettings(sizes=((256, 256), (512, 512)), warmup=2, device_config={"cuda": {"batch_frames": 50}},
                        notes="batch_frames=50 on CUDA: the rasterizer's per-call cost is amortised over 50 frames"),
)

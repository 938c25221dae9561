"""The ``splatting`` avatar renderer as the kernel lists it: config model and spec.

Light on purpose (pydantic and being_kernel.spec only): listing plugins imports this module; the
torch implementation in ``renderer.py`` is imported only when the plugin is used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel import BenchSettings, DeviceName, ImageSize, PathName, PluginConfig, PluginSpec, TrainerSpec
from being_kernel.train import FitConfig


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
    batch_frames: int | None = Field(
        None, ge=1, le=256, description="Frames rendered per call (skinning, posing, rasterization). None: 64 on "
        "CUDA (the per-call cost of a few hundred kernel launches is amortised), 1 on the CPU (where one call "
        "renders a frame on each of torch's threads at once).")
    sh_degree: int | None = Field(
        None, ge=0, le=3,
        description="Spherical-harmonics degree used when the avatar stores SH colours (None: all it stores).",
    )


class SplattingFitConfig(FitConfig):
    """``being fit --avatar splatting``: SplattingAvatar training (Shao et al., CVPR 2024) on a tracked
    video. The common fields (steps, max_minutes, batch_frames, losses, previews, checkpoints, seed,
    device) are the harness's ``FitConfig``."""

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
    backend: Literal["auto", "cpu", "gsplat"] = Field("auto", description='Rasterizer: "auto", "cpu" or "gsplat".')
    single_view: Literal["auto", "on", "off"] = Field(
        "auto", description='Train from one view with priors for what it does not show (start from the demo '
        'avatar, mirror and palette-matched colours, shape regularisers): "auto" when the dataset has one training '
        'frame (a photo). A one-frame dataset also changes the defaults of steps (150), batch_frames (1), '
        'sh_degree (0) and densify_until (0).')
    color_solve_iterations: int = Field(20, ge=0, description="Single view: least-squares colour iterations "
                                        "before training (each one render and one backward pass).")
    prior_color_weight: float = Field(1.0, ge=0, description="Single view: weight of (colour - prior colour)^2 "
                                      "on the Gaussians the view does not show.")
    prior_opacity_weight: float = Field(0.01, ge=0, description="Single view: weight of (opacity logit - "
                                        "start)^2 on the Gaussians the view does not show.")
    prior_shape_weight: float = Field(0.01, ge=0, description="Single view: weight of every Gaussian's (log "
                                      "size - start)^2 and (normal offset - start, in mm)^2.")


SPEC = PluginSpec(
    contract="avatar",
    description="SplattingAvatar (CVPR 2024): 3D Gaussians embedded on a FLAME-layout mesh; demo avatar built in",
    config=SplattingConfig,
    factory="being_avatar_splatting.renderer:SplattingRenderer",
    motion_spaces=("being-demo-head", "flame2020", "flame2023"),
    trainer=TrainerSpec("being_avatar_splatting.train.method:SplattingFit", SplattingFitConfig, "tracked-video"),
    # batch_frames is chosen per device by the renderer itself (64 on CUDA), so the bench needs no
    # setting of its own: it measures what being run gets.
    bench=BenchSettings(sizes=((256, 256), (512, 512)), warmup=2),
)

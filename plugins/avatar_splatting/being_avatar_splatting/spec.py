"""The ``splatting`` avatar renderer as the kernel lists it: config model and spec.

Light on purpose (pydantic and being_kernel.spec only): listing plugins imports this module; the
torch implementation in ``renderer.py`` is imported only when the plugin is used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel.spec import DeviceName, ImageSize, PathName, PluginConfig, PluginSpec



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


SPEC = PluginSpec(
    contract="avatar",
    description="SplattingAvatar (CVPR 2024): 3D Gaussians embedded on a FLAME-layout mesh; demo avatar built in",
    config=SplattingConfig,
    factory="being_avatar_splatting.renderer:SplattingRenderer",
    motion_spaces=("being-demo-head", "flame2020", "flame2023"),
)

"""The ``warp`` torso as the kernel lists it: the compositor's config, the trainer's config, the spec.

Light on purpose (pydantic and being_kernel only): listing plugins imports this module; the torch
code loads when the plugin is used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel import DeviceName, PathName, PluginConfig, PluginSpec, TrainerSpec, VideoSize
from being_kernel.train import FitConfig


class WarpConfig(PluginConfig):
    """Config of the ``warp`` torso compositor (a trained torso that follows the head)."""

    path: PathName | None = Field(
        None,
        description="The trained torso: the --out directory of `being fit --torso warp --data DIR` (torso.json, "
        "torso.safetensors, background.png). Required.",
    )
    size: VideoSize | None = Field(
        None,
        description="Output (width, height); None: the size the torso was trained at. Another size of the same "
        "aspect ratio draws the torso at that resolution (the texture and MLPs work in frame-relative "
        "coordinates); another aspect ratio is refused.",
    )
    mode: Literal["full", "fast"] = Field(
        "fast",
        description='"full": the warp MLP and the colour MLP per pixel (the trained model); "fast": the '
        "distilled model, one homography per frame fitted to the anchors and the colour baked into the texture.",
    )
    feather_px: float = Field(
        0.0, ge=0,
        description="The head's alpha fades out over this many output pixels below its neck base (0: the head, "
        "neck included, is drawn as rendered; the torso's neck continues below it).",
    )
    batch_frames: int = Field(16, ge=1, le=256, description="Frames composited per call (memory bound).")
    half: bool = Field(True, description="On CUDA, run the MLPs in bfloat16 (the texture and warp stay float32).")
    device: DeviceName = Field(
        "auto",
        description='Torch device: "auto" (cuda when the incoming frames are on cuda, else cpu), "cpu", "cuda" '
        'or "cuda:N".',
    )


class WarpFitConfig(FitConfig):
    """Training of the warped torso (Gaussian Head & Shoulders' settings, rescaled to fractions of training).

    The photometric loss is the harness's with L2 and a little D-SSIM, LPIPS late (the paper's VGG term)."""

    steps: int = Field(6000, ge=1, description="Optimisation steps (each on batch_frames frames).")
    batch_frames: int = Field(2, ge=1, le=64, description="Training frames per step.")
    photometric: Literal["l1", "huber", "l2"] = Field("l2", description="Photometric distance (the paper: L2).")
    ssim_weight: float = Field(0.09, ge=0, le=1, description="D-SSIM share: L2 + 0.1 D-SSIM, as the paper weighs them.")
    lpips_weight: float = Field(0.1, ge=0, description="Perceptual term weight (the paper's VGG loss: 0.1).")
    lpips_from: float = Field(0.15, ge=0, le=1, description="The perceptual term joins after this fraction.")
    features: int = Field(32, ge=0, le=64, description="Neural texture feature channels besides colour and alpha.")
    hidden: int = Field(128, ge=16, le=512, description="Width of the warp and colour MLPs (4 layers each).")
    uv_frequencies: int = Field(10, ge=0, le=16, description="Positional-encoding octaves of image coordinates.")
    pose_frequencies: int = Field(2, ge=0, le=8, description="Positional-encoding octaves of the head pose.")
    anchors: int = Field(32, ge=4, le=64, description="Anchors per side of the grid they are drawn from (up to "
                         "anchors^2 on the torso).")
    texture_padding: float = Field(0.1, ge=0, le=0.5, description="Texture margin beyond the frame, as a "
                                   "fraction of its size (where warped coordinates may land).")
    lr: float = Field(1e-3, gt=0, description="Learning rate of the MLPs.")
    texture_lr: float = Field(1e-2, gt=0, description="Learning rate of the neural texture.")
    anchor_lr: float = Field(5e-3, gt=0, description="Learning rate of the anchors (skinning weights, opacity).")
    warp_from: float = Field(0.06, ge=0, lt=1, description="The warp MLP starts after this fraction (the paper: "
                             "4k of 70k iterations).")
    colour_from: float = Field(0.2, ge=0, lt=1, description="The colour MLP starts after this fraction (15k of 70k).")
    hide_anchors_from: float = Field(0.7, ge=0, le=1, description="Anchors stop being drawn after this "
                                     "fraction (50k of 70k); they still guide the warp.")
    mask_weight: float = Field(1.0, ge=0, description="Torso alpha against the torso mask (L1).")
    anchor_deform_weight: float = Field(1.0, ge=0, description="Anchor deformation: the warp must carry each "
                                        "posed anchor to its texture position.")
    anchor_opacity_weight: float = Field(0.15, ge=0, description="Pushes the anchors' opacity to its minimum.")
    anchor_opacity_min: float = Field(0.05, gt=0, lt=1, description="The anchors' lowest opacity.")
    delta_uv_weight: float = Field(0.025, ge=0, description="|delta uv|: keeps the warp small.")
    regularise_until: float = Field(0.7, ge=0, le=1, description="The anchor-opacity and |delta uv| terms stop "
                                    "after this fraction (the paper: 50k of 70k).")
    distill_steps: int = Field(300, ge=0, description="Steps fitting the anchors' skinning to the warp MLP at "
                               "export (the fast mode's homographies then follow the full model).")
    background: Literal["random", "black", "white"] = Field("black", description="Unused: full frames have no "
                                                            "masked-out pixels.")
    preview_every: int = Field(500, ge=1, description="Steps between preview images.")
    checkpoint_every: int = Field(1000, ge=1, description="Steps between resumable checkpoints.")


SPEC = PluginSpec(
    contract="torso",
    description="Warped torso (Gaussian Head & Shoulders, ICLR 2025): a neural texture warped to follow the head, "
    "trained per subject with `being fit --torso warp`",
    config=WarpConfig,
    factory="being_torso_warp.compositor:WarpTorso",
    trainer=TrainerSpec("being_torso_warp.fit:WarpFit", WarpFitConfig, "full-frame"),
)

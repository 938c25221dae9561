"""The ``restorer`` torso as the kernel lists it: the compositor's config, the trainer's config, the spec.

Light on purpose (pydantic and being_kernel only): listing plugins imports this module; the torch
code loads when the plugin is used.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel import DeviceName, PathName, PluginConfig, PluginSpec, TrainerSpec, VideoSize
from being_kernel.train import FitConfig


class RestorerConfig(PluginConfig):
    """Config of the ``restorer`` torso compositor (a base torso, then the seam restored)."""

    path: PathName | None = Field(
        None,
        description="The trained restorer: the --out directory of `being fit --torso restorer --data DIR` "
        "(restorer.json, restorer.safetensors and base/, the base torso it was trained over). Required.",
    )
    size: VideoSize | None = Field(
        None, description="Output (width, height); None or the trained size (the network works in pixels).")
    batch_frames: int | None = Field(
        None, ge=1, le=256, description="Frames a network call. Every call has this batch size (a short batch is "
        "padded), so the stream equals the batch exactly. None: 8 on CUDA, 1 on the CPU (where batching gains "
        "little, and a live stream pushing one frame at a time would pay for the padding).")
    half: bool = Field(True, description="On CUDA, run the network in float16.")
    device: DeviceName = Field(
        "auto",
        description='Torch device: "auto" (cuda when the incoming frames are on cuda, else cpu), "cpu", "cuda" '
        'or "cuda:N".',
    )


class RestorerFitConfig(FitConfig):
    """Training of the restorer, self-supervised from the subject's frames: the composite the pipeline
    would make (the frame's own head, or the avatar's, over the base torso) against the real frame, in the band."""

    steps: int = Field(4000, ge=1, description="Optimisation steps (each on batch_frames frames).")
    batch_frames: int = Field(8, ge=1, le=64, description="Training frames per step.")
    photometric: Literal["l1", "huber", "l2"] = Field("l1", description="Photometric distance (SyncTalk++: L1).")
    ssim_weight: float = Field(0.0, ge=0, le=1, description="D-SSIM share of the photometric loss.")
    lpips_weight: float = Field(0.1, ge=0, description="Perceptual (LPIPS) weight, when its weights are on disk.")
    lpips_from: float = Field(0.3, ge=0, le=1, description="The perceptual term joins after this fraction.")
    base: str = Field("static", description='The base torso the head is composited over: "static" (the '
                      "dataset's scene: its background plate and torso at rest) or another installed torso "
                      'that reports where it drew the head, such as "warp".')
    base_path: PathName | None = Field(
        None, description="The base torso's own directory: for static a scene directory (default: the "
        "dataset's scene/), for warp a trained torso (being fit --torso warp). It is copied into the restorer.")
    base_mode: str | None = Field(None, description='warp only: "fast" or "full" (default: the torso\'s default).')
    avatar: str | None = Field(None, description="Train on heads rendered by this installed avatar plugin through "
                               "the tracked cameras (what the pipeline will composite); None: the frames' own "
                               "heads (image x head mask).")
    avatar_path: PathName | None = Field(None, description="The avatar's asset directory (its path field).")
    work_height: int | None = Field(128, ge=16, description="The network works on the crops resized to this "
                                    "frame height (never enlarged), so it sees the neck whole at any frame size; "
                                    "None: at the frame's resolution.")
    width: int = Field(24, ge=8, le=128, description="Channels of the U-Net's first level (doubling per level).")
    levels: int = Field(3, ge=2, le=5, description="U-Net levels (resolutions).")
    radius: float = Field(0.08, gt=0, le=0.2, description="How far the band reaches into the torso (the head "
                          "is grown by this to find it), as a fraction of the frame height (41 px at 512; 0.04 gave "
                          "0.24 dB less in the held-out band at 128²).")
    head_radius: float = Field(0.02, gt=0, le=0.2, description="How far the band reaches into the head (the torso "
                               "is grown by this), as a fraction of the frame height (10 px at 512): the head is "
                               "the renderer's, so only its edge is repainted.")
    shift_px: float = Field(1.5, ge=0, description="Perturbation: the head moved by up to this many pixels at "
                            "512 (scaled with the frame).")
    scale_jitter: float = Field(0.02, ge=0, lt=0.5, description="Perturbation: the head's scale by up to this fraction.")
    colour_jitter: float = Field(0.04, ge=0, lt=0.5, description="Perturbation: the head's colour gain per channel "
                                 "by up to this fraction.")
    rotation_deg: float = Field(2.0, ge=0, description="Perturbation: the head pose a base torso sees, turned by "
                                "up to this many degrees (warp follows it; static ignores it).")
    flip: bool = Field(False, description="Train on mirrored frames too (half of them): poses turned the other way. "
                       "Off: on the synthetic set it cost 1.6 dB in the held-out band (the subject and scene are "
                       "not symmetric).")
    perturb: float = Field(0.0, ge=0, le=1, description="Fraction of training heads that are perturbed (shift, "
                           "scale, colour, pose). 0 by default: against the real frame, a perturbed head teaches the "
                           "network to repaint the head's edge, which cost 1.3-2.3 dB in the held-out band; train on "
                           "the avatar's own renders (fit.avatar) for its real errors instead.")
    lr: float = Field(1e-3, gt=0, description="Learning rate (Adam), cosine-decayed to 5 % by the end.")
    background: Literal["random", "black", "white"] = Field("black", description="Unused: full frames have no "
                                                            "masked-out pixels.")
    preview_every: int = Field(500, ge=1, description="Steps between preview images.")
    checkpoint_every: int = Field(1000, ge=1, description="Steps between resumable checkpoints.")


SPEC = PluginSpec(
    contract="torso",
    description="Torso restorer (SyncTalk++): a base torso, then a per-subject U-Net repaints the seam at the neck; "
    "trained with `being fit --torso restorer`",
    config=RestorerConfig,
    factory="being_torso_restorer.compositor:RestorerTorso",
    trainer=TrainerSpec("being_torso_restorer.fit:RestorerFit", RestorerFitConfig, "full-frame"),
)

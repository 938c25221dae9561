"""The config fields every trainer shares (a method's config subclasses :class:`FitConfig`).

Light on purpose (pydantic only): spec modules import it, and listing plugins must stay cheap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..spec import DeviceName, PluginConfig

class FitConfig(PluginConfig):
    """Fields every trainer has; a method's config subclasses this and adds its own."""

    steps: int = Field(30000, ge=1, description="Optimisation steps (each on batch_frames frames).")
    max_minutes: float | None = Field(None, gt=0, description="Stop after this many minutes of training (the "
                                      "schedules then run on elapsed time); None: run all steps.")
    batch_frames: int = Field(4, ge=1, le=64, description="Training frames per step.")
    ssim_weight: float = Field(0.2, ge=0, le=1, description="Loss = (1 - w) D + w (1 - SSIM) (+ LPIPS), D the "
                               "photometric distance.")
    photometric: Literal["l1", "huber", "l2"] = Field(
        "l1", description='Photometric distance D per pixel and channel, averaged: "l1" |x - y|, "huber" '
        '(0.5 d^2 below huber_delta, linear above: FlashAvatar\'s loss) or "l2" (x - y)^2.')
    huber_delta: float = Field(0.1, gt=0, description="Where the Huber distance turns from quadratic to linear.")
    lpips: Literal["auto", "on", "off"] = Field(
        "auto", description='LPIPS loss term: "auto" uses it when its weights are on disk (never downloaded), '
        '"on" requires them, "off" never.')
    lpips_weight: float = Field(0.05, ge=0, description="Weight of the LPIPS term when used.")
    lpips_from: float = Field(0.5, ge=0, le=1, description="LPIPS joins the loss after this fraction of training.")
    background: Literal["random", "black", "white"] = Field(
        "random", description="What masked-out pixels show during training: a random colour per frame (keeps "
        "the model off the background) or a fixed colour.")
    preview_every: int = Field(1000, ge=1, description="Steps between preview images (ground truth | render).")
    checkpoint_every: int = Field(2000, ge=1, description="Steps between resumable checkpoints.")
    seed: int = Field(0, description="Random seed (initialisation, frame order, backgrounds).")
    device: DeviceName = Field("auto", description='Torch device: "auto", "cpu", "cuda" or "cuda:N".')

    @field_validator("lpips", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: object) -> object:
        # --set values are read as YAML, where on / off are booleans
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

"""What `being plugins` reads: cheap to import (pydantic only; no torch, no model code)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from being_kernel import DeviceName, PathName, PluginConfig, PluginSpec

#: inferno's AffectNetExpressions in index order: the emotion one-hot EMOTE is conditioned on
EMOTIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


class EmoteConfig(PluginConfig):
    weights: PathName | None = Field(
        None, description="EMOTE model folder (TalkingHead/models/EMOTE_v2 or EMOTE, with cfg.yaml and checkpoints/; "
        "from https://emote.is.tue.mpg.de after accepting its licence) or its .ckpt; unset: $BEING_EMOTE_DIR, then "
        "~/.cache/being/emote/ (never downloaded)")
    emotion: str = Field("neutral", description=f"one of {', '.join(EMOTIONS)} (the 8 conditioning emotions)")
    intensity: int = Field(2, ge=0, le=2, description="emotion intensity, 0 (weak) to 2 (strong), as the demo numbers it")
    style: str = Field("M003", description="speaking style: a MEAD training subject (M003, M005, ..., W029) or its "
                       "index in the model's list")
    pose: Literal["posevae", "none"] = Field(
        "posevae", description="head motion: SadTalker's PoseVAE from the speech, or none (EMOTE has no head motion)")
    pose_weights: PathName | None = Field(
        None, description="SadTalker_V0.0.2_256.safetensors (or _512, or the legacy auido2pose_00140-model.pth) or "
        "its folder; unset: $BEING_SADTALKER_DIR, then ~/.cache/being/sadtalker/")
    pose_style: int = Field(0, ge=0, le=45, description="PoseVAE pose style, 0-45 (SadTalker's --pose_style)")
    seed: int = Field(0, ge=0, description="seed of PoseVAE's latent samples: the same seed gives the same head motion")
    window_s: float = Field(
        10.0, ge=1.0, le=48.0, description="seconds of speech EMOTE sees at once; a clip up to this long is processed "
        "whole, as published; longer speech in windows of this length (the streaming latency)")
    device: DeviceName = Field("auto", description='"auto" (CUDA if available), "cpu", "cuda" or "cuda:N"')

    @field_validator("emotion")
    @classmethod
    def _known_emotion(cls, value: str) -> str:
        if value.lower() not in EMOTIONS:
            raise ValueError(f"unknown emotion {value!r}: one of {', '.join(EMOTIONS)}")
        return value.lower()


SPEC = PluginSpec(
    contract="audio",
    description="EMOTE (SIGGRAPH Asia 2023): emotional speech to FLAME lips and expression, with SadTalker's PoseVAE "
    "head motion",
    config=EmoteConfig,
    factory="being_audio_emote.plugin:EmoteAudio",
    motion_spaces=("flame2020",),
)

"""What `being plugins` reads: cheap to import (pydantic only; no torch, no model code)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from being_kernel import DeviceName, PathName, PluginConfig, PluginSpec


class ArtalkConfig(PluginConfig):
    weights: PathName | None = Field(
        None, description="directory with ARTalk_wav2vec.pt, config.json and style_motion/ from the Hugging Face "
        "repository xg-chu/ARTalk (or the .pt file itself); unset: $BEING_ARTALK_DIR, then the local Hugging Face "
        "cache (never downloaded)")
    style: str | None = Field(
        None, description="speaking style: a clip name from the weights' style_motion/ (natural_0, happy_1, angry_0, "
        "curious_0, doubtful_0, ...) or the path of a 50x106 .pt clip; unset or 'default': the learned neutral style")
    device: DeviceName = Field("auto", description='"auto" (CUDA if available), "cpu", "cuda" or "cuda:N"')
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="weights and activations; the quantiser and motion statistics stay float32")
    fixed_pose: bool = Field(False, description="keep the head still: global rotation set to zero (published fix_pose)")
    smooth: bool = Field(True, description="Savitzky-Golay smoothing as published (adds 4 frames of streaming latency)")


SPEC = PluginSpec(
    contract="audio",
    description="ARTalk (SIGGRAPH Asia 2025): autoregressive speech to FLAME lips, head pose and blinks, with styles",
    config=ArtalkConfig,
    factory="being_audio_artalk.plugin:ArtalkAudio",
    motion_spaces=("flame2020",),
)

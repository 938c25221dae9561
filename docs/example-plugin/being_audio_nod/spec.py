"""What `being plugins` reads: cheap to import (no torch, no model code)."""

from pydantic import Field

from being_kernel import PluginConfig, PluginSpec


class NodConfig(PluginConfig):
    fps: float = Field(25.0, gt=0, description="motion frames per second")
    nod_deg: float = Field(8.0, ge=0, description="head pitch (degrees) at full loudness")


SPEC = PluginSpec(
    contract="audio",
    description="example: the head nods with loudness",
    config=NodConfig,
    factory="being_audio_nod.model:Nod",
    motion_spaces=("being-fake",),
)

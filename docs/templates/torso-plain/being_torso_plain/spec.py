"""What listing imports: the config and the spec (pydantic only)."""

from pydantic import Field

from being_kernel import PluginConfig, PluginSpec, VideoSize


class PlainConfig(PluginConfig):
    size: VideoSize = Field((256, 256), description="Output (width, height)")
    color: tuple[float, float, float] = Field((0.85, 0.87, 0.9), description="Background RGB in [0, 1]")
    neck_xy: tuple[float, float] = Field((0.5, 0.95), description="Where the neck base goes, as fractions of size")


SPEC = PluginSpec(
    contract="torso",
    description="template: the head over a plain colour, a shadow that follows its yaw",
    config=PlainConfig,
    factory="being_torso_plain.model:PlainTorso",
)

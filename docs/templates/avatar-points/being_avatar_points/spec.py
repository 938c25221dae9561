"""What listing imports: configs and the spec (pydantic only)."""

from pydantic import Field

from being_kernel import ImageSize, PathName, PluginConfig, PluginSpec, TrainerSpec
from being_kernel.train import FitConfig


class PointsConfig(PluginConfig):
    path: PathName | None = Field(None, description="Directory written by 'being fit --avatar points'; None: grey")
    size: ImageSize = Field((128, 128), description="Head image (width, height)")


class PointsFitConfig(FitConfig):
    point_size: float = Field(0.004, gt=0, description="Gaussian standard deviation in metres")


SPEC = PluginSpec(
    contract="avatar",
    description="template: the demo head's vertices as small Gaussians with trainable colours",
    config=PointsConfig,
    factory="being_avatar_points.model:PointsRenderer",
    motion_spaces=("being-demo-head",),
    trainer=TrainerSpec("being_avatar_points.train:PointsFit", PointsFitConfig, "tracked-video"),
)

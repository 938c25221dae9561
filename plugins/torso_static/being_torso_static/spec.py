"""The ``static`` torso compositor as the kernel lists it: config model and spec.

Kept light on purpose (pydantic and being_kernel.spec only): listing plugins imports this module,
the torch implementation in ``compositor.py`` is imported only when the plugin is used.
"""

from __future__ import annotations


from pydantic import Field, field_validator

from being_kernel import DeviceName, PathName, PluginConfig, PluginSpec, VideoSize



def _unit_rgb(value: tuple[float, float, float], name: str) -> tuple[float, float, float]:
    if not all(0.0 <= c <= 1.0 for c in value):
        raise ValueError(f"{name} components must be in [0, 1], got {value}")
    return value


class StaticConfig(PluginConfig):
    """Config of the ``static`` torso compositor (a fixed background and torso under the head)."""

    scene: PathName | None = Field(
        None,
        description="A scene directory (being prepare's photo scene, or the one an avatar carries: `being run` "
        "sets it from the avatar unless you do): its background plate, torso layer, neck position and head "
        "scale, and its size as the output size. Fields you set explicitly win. None: no scene.",
    )
    size: VideoSize = Field(
        (512, 512),
        description="Output (width, height) in pixels; both even and >= 16 (H.264 yuv420p needs even sizes). "
        "With a `scene` and no `size`: the scene's.",
    )
    background: PathName | None = Field(
        None,
        description="Background plate: an image (png/jpg) or a video (mp4, ...) played in a loop "
        "(output frame i shows video frame i mod n). Cover-fit to `size`. None: `background_color`.",
    )
    background_color: tuple[float, float, float] = Field(
        (0.86, 0.88, 0.9),
        description="RGB in [0, 1] of the plain background used when `background` is None "
        "(also shown through transparent parts of a background image).",
    )
    torso: PathName | None = Field(
        None,
        description="Torso layer: an RGBA image (png with alpha) or a video, drawn over the background and "
        "under the head; cover-fit to `size`. None: a procedural neck, shoulders and shirt.",
    )
    shirt_color: tuple[float, float, float] = Field(
        (0.23, 0.32, 0.45),
        description="RGB in [0, 1] of the procedural torso's shirt (used when `torso` is None).",
    )
    neck_xy: tuple[float, float] = Field(
        (0.5, 0.74),
        description="Where the head's anchor (neck base) goes, as fractions of the output width and height.",
    )
    head_px_per_metre: float | None = Field(
        None,
        gt=0,
        description="Output scale of the head in pixels per metre; the head image is resized by "
        "head_px_per_metre / placement.px_per_metre. None keeps the renderer's pixel scale (no resampling) "
        "and draws the procedural torso at that scale.",
    )
    feather_px: float = Field(
        10.0,
        ge=0,
        description="The head's alpha fades to 0 (smoothstep) over this many output pixels below the anchor, "
        "so its neck cut blends into the torso's neck.",
    )
    device: DeviceName = Field(
        "auto",
        description='Torch device: "auto" (cuda when the incoming frames are on cuda, else cpu), "cpu", '
        '"cuda" or "cuda:N".',
    )

    @field_validator("background_color")
    @classmethod
    def _bg_rgb(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        return _unit_rgb(value, "background_color")

    @field_validator("shirt_color")
    @classmethod
    def _shirt_rgb(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        return _unit_rgb(value, "shirt_color")

    @field_validator("neck_xy")
    @classmethod
    def _neck_in_frame(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= v <= 1.0 for v in value):
            raise ValueError(f"neck_xy are fractions of the output width and height, in [0, 1]; got {value}")
        return value


SPEC = PluginSpec(
    contract="torso",
    description="Static compositor: head over a fixed background plate and a still, looping or procedural torso",
    config=StaticConfig,
    factory="being_torso_static.compositor:StaticTorso",
)

"""Entry-point specs of the testing kit's fakes (``--audio fake --avatar fake --torso fake``).

They are small but real: the fake audio model opens the jaw with loudness, the fake renderer
draws a 2-D cartoon head, the fake compositor lays it over a plain colour. They make the whole
pipeline runnable with nothing else installed, and give plugin authors partners to test with."""

from __future__ import annotations

from pydantic import Field

from ..spec import PluginConfig, PluginSpec, TrainerSpec
from ..train import FitConfig

FAKE_SPACE = "being-fake"


class FakeAudioConfig(PluginConfig):
    sample_rate: int = Field(16000, gt=0, description="audio rate (Hz) the model wants")
    fps: float = Field(25.0, gt=0, description="motion frames per second")
    motion_space: str = Field(FAKE_SPACE, description="motion space id it claims to produce")
    n_expression: int = Field(0, ge=0, description="expression coefficients per frame (all zero)")
    jaw_gain: float = Field(4.0, ge=0, description="jaw opening (radians) per unit RMS loudness")
    blink_every_s: float = Field(3.0, gt=0, description="one blink every this many seconds")
    fail_after_frames: int | None = Field(None, description="raise after this many frames (tests error handling)")


class FakeRendererConfig(PluginConfig):
    size: tuple[int, int] = Field((256, 256), description="head image (width, height)")
    motion_spaces: tuple[str, ...] = Field((FAKE_SPACE,), description="motion spaces it claims to consume")
    n_expression: int = Field(0, ge=0, description="expression width it expects in those spaces")
    accepts_pose_only: bool = Field(True, description="accept other spaces by rotations alone")
    fps: float | None = Field(None, description="motion rate it needs (None: any)")
    delay_s: float = Field(0.0, ge=0, description="sleep per frame (tests live-mode dropping)")


class FakeCompositorConfig(PluginConfig):
    size: tuple[int, int] = Field((256, 256), description="output (width, height)")
    color: tuple[float, float, float] = Field((0.2, 0.4, 0.3), description="background RGB in [0, 1]")


class FakeTorsoFitConfig(FitConfig):
    """The fake torso's trainer has only the common fields (steps, batch_frames, losses, ...)."""


AUDIO = PluginSpec("audio", "testing-kit fake: jaw opens with loudness, periodic blinks",
                   FakeAudioConfig, "being_kernel.testing.fakes:FakeAudioToFlame", motion_spaces=(FAKE_SPACE,))
AVATAR = PluginSpec("avatar", "testing-kit fake: a 2-D cartoon head (any motion space, pose only)",
                    FakeRendererConfig, "being_kernel.testing.fakes:FakeRenderer", motion_spaces=(FAKE_SPACE,))
TORSO = PluginSpec("torso", "testing-kit fake: the head centred over a plain colour",
                   FakeCompositorConfig, "being_kernel.testing.fakes:FakeCompositor",
                   # learns the colour from full-frame data: ``being fit --torso fake`` (the harness for non-avatars)
                   trainer=TrainerSpec("being_kernel.testing.fake_training:FakeTorsoFit", FakeTorsoFitConfig, "full-frame"))

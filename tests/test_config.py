from __future__ import annotations

import pytest

from being_kernel import config as cfg
from being_kernel.errors import ConfigError
from being_kernel.testing.specs import FakeRendererConfig


def test_set_values_are_typed_and_nested() -> None:
    got = cfg.parse_sets(["avatar.size=[128, 96]", "avatar.accepts_pose_only=false", "audio.fps=30", "torso.x.y=hi"])
    assert got == {"avatar": {"size": [128, 96], "accepts_pose_only": False}, "audio": {"fps": 30}, "torso": {"x": {"y": "hi"}}}


@pytest.mark.parametrize("bad", ["avatar", "avatar.size", "=3", "camera.fov=3"])
def test_malformed_set_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        cfg.parse_sets([bad])


def test_toml_and_yaml_files_and_set_wins(tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[avatar]\nsize = [64, 64]\nfps = 25.0\n')
    yml = tmp_path / "c.yaml"
    yml.write_text("avatar:\n  size: [64, 64]\n  fps: 25.0\n")
    for path in (toml, yml):
        merged = cfg.merge(cfg.load_file(path), cfg.parse_sets(["avatar.size=[32,32]"]))
        model = cfg.build(FakeRendererConfig, "avatar", merged["avatar"])
        assert model.size == (32, 32) and model.fps == 25.0


def test_bad_field_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        cfg.build(FakeRendererConfig, "avatar", {"sh_degree": 3})
    assert str(err.value).startswith("avatar.sh_degree: unknown field") and "size" in err.value.hint
    with pytest.raises(ConfigError) as err:
        cfg.build(FakeRendererConfig, "avatar", {"size": "big"})
    assert str(err.value).startswith("avatar.size:") and "'big'" in str(err.value)


def test_bad_files(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[avatar\n")
    with pytest.raises(ConfigError, match="not valid"):
        cfg.load_file(bad)
    other = tmp_path / "o.toml"
    other.write_text("[camera]\nfov = 3\n")
    with pytest.raises(ConfigError, match="camera"):
        cfg.load_file(other)
    with pytest.raises(ConfigError, match="does not exist"):
        cfg.load_file(tmp_path / "none.toml")


def test_device_field_and_resolution() -> None:
    import torch

    from being_kernel.devices import resolve_device
    from being_kernel.spec import DeviceName, PluginConfig

    class WithDevice(PluginConfig):
        device: DeviceName = "auto"

    assert WithDevice(device="cuda:1").device == "cuda:1"
    with pytest.raises(ConfigError, match="x.device: Value error, device must be"):
        cfg.build(WithDevice, "x", {"device": "gpu"})
    assert resolve_device("auto") is None and resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")


def test_path_field_refuses_an_empty_string() -> None:
    from being_kernel.spec import PathName, PluginConfig

    class WithPath(PluginConfig):
        path: PathName | None = None

    assert WithPath().path is None and WithPath(path="a/b").path == "a/b"
    with pytest.raises(ConfigError, match="x.path: Value error, a path must not be empty"):
        cfg.build(WithPath, "x", {"path": "  "})


def test_size_fields() -> None:
    from being_kernel.spec import ImageSize, PluginConfig, VideoSize

    class Sizes(PluginConfig):
        image: ImageSize = (8, 8)
        video: VideoSize = (16, 16)

    assert Sizes(image=(9, 8), video=(640, 360)).video == (640, 360)
    with pytest.raises(ConfigError, match="x.video: .*must be even"):
        cfg.build(Sizes, "x", {"video": [641, 360]})
    with pytest.raises(ConfigError, match="x.image: .*at least 8 x 8"):
        cfg.build(Sizes, "x", {"image": [7, 64]})

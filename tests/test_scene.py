"""The scene format (being_kernel.datasets.Scene): written by write_scene, read back exactly by
read_scene; every way a scene on disk can be wrong is an InputError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from being_kernel import InputError
from being_kernel.datasets import SCENE_DIR, SCENE_FILE, Scene, read_scene, write_scene
from being_kernel.media import read_image, write_png


def _images(w: int = 24, h: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    torso = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    torso[: h // 2, :, 3] = 0  # a transparent top half, and every alpha value below it
    return background, torso


@pytest.fixture
def scene_dir(tmp_path: Path) -> Path:
    background, torso = _images()
    return write_scene(tmp_path / SCENE_DIR, background, torso, (11.25, 9.5), 812.5, source="me.jpg")


def test_round_trip_is_exact(tmp_path: Path) -> None:
    background, torso = _images()
    out = write_scene(tmp_path / "a" / "scene", background, torso, (11.25, 9.5), 812.5, source="me.jpg")
    assert out == tmp_path / "a" / "scene" and SCENE_DIR == "scene" and SCENE_FILE == "scene.json"
    scene = read_scene(out)
    assert scene == Scene(root=out, size=(24, 16), neck_xy=(11.25, 9.5), head_px_per_metre=812.5,
                          background=out / "background.png", torso=out / "torso.png", source="me.jpg")
    np.testing.assert_array_equal(read_image(scene.background), background)
    np.testing.assert_array_equal(read_image(scene.torso), torso)  # straight alpha kept, colour under alpha 0 too
    meta = json.loads((out / SCENE_FILE).read_text())
    assert meta == {"format": "being-scene", "format_version": 1, "size": [24, 16], "neck_xy": [11.25, 9.5],
                    "head_px_per_metre": 812.5, "background": "background.png", "torso": "torso.png",
                    "source": "me.jpg"}
    assert sorted(p.name for p in out.iterdir()) == ["background.png", "scene.json", "torso.png"]  # no temporaries


def test_rewriting_a_scene_replaces_it(scene_dir: Path) -> None:
    background, torso = _images(8, 6)
    write_scene(scene_dir, background, torso, (4.0, 3.0), 100.0)
    scene = read_scene(scene_dir)
    assert scene.size == (8, 6) and scene.source is None and scene.neck_xy == (4.0, 3.0)
    np.testing.assert_array_equal(read_image(scene.torso), torso)


@pytest.mark.parametrize("size, why", [((23, 16), "even"), ((24, 15), "even")])
def test_write_refuses_odd_sizes(tmp_path: Path, size: tuple[int, int], why: str) -> None:
    background, torso = _images(*size)
    with pytest.raises(ValueError, match=why):
        write_scene(tmp_path / "s", background, torso, (1.0, 1.0), 100.0)
    assert not (tmp_path / "s" / SCENE_FILE).exists()


@pytest.mark.parametrize("change, why", [
    (lambda b, t: (b, t), None),
    (lambda b, t: (b[..., :2], t), "background"),
    (lambda b, t: (b, t[..., :3]), "torso"),
    (lambda b, t: (b.astype(np.float32), t), "background"),
    (lambda b, t: (b, t[:, :-2]), "differ"),
])
def test_write_refuses_bad_images(tmp_path: Path, change, why: str | None) -> None:  # noqa: ANN001
    background, torso = change(*_images())
    if why is None:
        write_scene(tmp_path / "s", background, torso, (1.0, 1.0), 100.0)
        return
    with pytest.raises(ValueError, match=why):
        write_scene(tmp_path / "s", background, torso, (1.0, 1.0), 100.0)


@pytest.mark.parametrize("neck, scale", [((1.0, float("nan")), 100.0), ((1.0, 2.0), 0.0), ((1.0, 2.0), -3.0),
                                         ((1.0, 2.0), float("inf")), ((1.0,), 100.0)])
def test_write_refuses_bad_numbers(tmp_path: Path, neck, scale: float) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        write_scene(tmp_path / "s", *_images(), neck, scale)


def _edit(key: str, value: object):  # noqa: ANN202
    def edit(d: Path) -> None:
        meta = json.loads((d / SCENE_FILE).read_text())
        meta[key] = value
        (d / SCENE_FILE).write_text(json.dumps(meta))
    return edit


def _remove(name: str):  # noqa: ANN202
    return lambda d: (d / name).unlink()


def _replace_image(name: str, pixels: np.ndarray):  # noqa: ANN202
    return lambda d: write_png(d / name, pixels)


BAD = {
    "no scene.json": (_remove(SCENE_FILE), "scene.json missing"),
    "not json": (lambda d: (d / SCENE_FILE).write_text("{not json"), "unreadable"),
    "another format": (_edit("format", "being-dataset"), "not a 'being-scene' file"),
    "a newer version": (_edit("format_version", 2), "newer than this software reads"),
    "no background": (_remove("background.png"), "background image is missing"),
    "no torso": (_remove("torso.png"), "torso image is missing"),
    "a corrupt torso": (lambda d: (d / "torso.png").write_bytes(b"not a png" * 20), "not a readable image"),
    "a background of another size": (_replace_image("background.png", np.zeros((16, 22, 3), np.uint8)),
                                     "22x16, but the scene is 24x16"),
    "a torso without alpha": (_replace_image("torso.png", np.zeros((16, 24, 3), np.uint8)), "RGBA"),
    "size not a pair": (_edit("size", [24]), "'size'"),
    "size of strings": (_edit("size", ["24", "16"]), "'size'"),
    "a size unlike the images": (_edit("size", [12, 8]), "but the scene is 12x8"),
    "odd size": (_edit("size", [23, 16]), "even"),
    "neck_xy not numbers": (_edit("neck_xy", ["a", 1]), "neck_xy"),
    "neck_xy missing": (_edit("neck_xy", None), "neck_xy"),
    "scale zero": (_edit("head_px_per_metre", 0), "head_px_per_metre"),
    "scale a string": (_edit("head_px_per_metre", "800"), "head_px_per_metre"),
    "scale missing": (_edit("head_px_per_metre", None), "head_px_per_metre"),
    "an image outside the folder": (_edit("torso", "../torso.png"), "'torso' must name a file"),
    "source not a string": (_edit("source", 3), "'source'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_read_refuses_a_bad_scene(scene_dir: Path, case: str) -> None:
    damage, message = BAD[case]
    read_scene(scene_dir)  # fine before the damage
    damage(scene_dir)
    with pytest.raises(InputError, match=message) as err:
        read_scene(scene_dir)
    assert str(scene_dir) in str(err.value)
    assert err.value.hint  # what to do


def test_read_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such scene directory") as err:
        read_scene(tmp_path / "nowhere")
    assert err.value.hint
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="no such scene directory"):
        read_scene(tmp_path / "file")


# -- handing an avatar's scene to the torso (being run) -----------------------------------------------


def test_the_torso_gets_the_avatars_scene_unless_told_otherwise() -> None:
    from pydantic import BaseModel

    from being_kernel.api import FlameRendererInfo
    from being_kernel.pipeline import torso_scene

    class WithScene(BaseModel):
        scene: str | None = None
        size: tuple[int, int] = (512, 512)

    class WithoutScene(BaseModel):
        size: tuple[int, int] = (512, 512)

    info = FlameRendererInfo(motion_spaces=("x",), n_expression=0, accepts_pose_only=True, size=(8, 8),
                             scene="/avatars/me/scene")
    assert FlameRendererInfo(motion_spaces=("x",), n_expression=0, accepts_pose_only=True, size=(8, 8)).scene is None
    assert torso_scene(info, WithScene, {}) == "/avatars/me/scene"
    assert torso_scene(info, WithScene, {"size": [64, 64]}) == "/avatars/me/scene"  # other fields set: still
    assert torso_scene(info, WithScene, {"scene": None}) is None                     # --set torso.scene=null
    assert torso_scene(info, WithScene, {"scene": "/elsewhere"}) is None             # the user's own scene
    assert torso_scene(info, WithoutScene, {}) is None                               # a torso that takes none
    no_scene = FlameRendererInfo(motion_spaces=("x",), n_expression=0, accepts_pose_only=True, size=(8, 8))
    assert torso_scene(no_scene, WithScene, {}) is None

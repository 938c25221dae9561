"""An avatar that carries a scene (AVATAR/scene: the photo it was made from) reports it in
``info().scene``, and ``being run --torso static`` puts the head into it with no further flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from being_avatar_splatting.demo import export_demo_avatar
from being_avatar_splatting.renderer import SplattingRenderer
from being_avatar_splatting.spec import SplattingConfig
from being_kernel.datasets import SCENE_DIR, write_scene

#: the scene: 96 x 128, a flat unusual background colour, a torso layer in the lower part
SCENE_W, SCENE_H = 96, 128
BACKGROUND = (23, 201, 140)
TORSO = (150, 30, 200)
PLAIN = tuple(round(255 * c) for c in (0.86, 0.88, 0.9))  # the static compositor's default background colour


def _scene_images() -> tuple[np.ndarray, np.ndarray]:
    background = np.empty((SCENE_H, SCENE_W, 3), np.uint8)
    background[:] = BACKGROUND
    torso = np.zeros((SCENE_H, SCENE_W, 4), np.uint8)
    torso[96:, 16:80] = (*TORSO, 255)  # shoulders
    torso[110:120, 40:56, 3] = 0       # a transparent patch: the background shows
    return background, torso


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = export_demo_avatar(tmp_path_factory.mktemp("avatar") / "me")
    write_scene(d / SCENE_DIR, *_scene_images(), neck_xy=(48.0, 96.0), head_px_per_metre=150.0, source="me.jpg")
    return d


def test_info_reports_the_avatars_scene(avatar: Path, tmp_path: Path) -> None:
    info = SplattingRenderer(SplattingConfig(path=str(avatar), size=(32, 32), device="cpu")).info()
    assert info.scene == str(avatar / SCENE_DIR)
    plain = export_demo_avatar(tmp_path / "plain")
    assert SplattingRenderer(SplattingConfig(path=str(plain), size=(32, 32), device="cpu")).info().scene is None
    assert SplattingRenderer(SplattingConfig(size=(32, 32), device="cpu")).info().scene is None  # the built-in demo
    (plain / SCENE_DIR).mkdir()  # a scene folder without scene.json is no scene
    assert SplattingRenderer(SplattingConfig(path=str(plain), size=(32, 32), device="cpu")).info().scene is None


def _being(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    return subprocess.run([sys.executable, "-m", "being_kernel.cli", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _corners(frame: np.ndarray) -> np.ndarray:
    """The mean colour of each 4 x 4 top corner ``[2, 3]`` (the bottom ones are the torso's)."""
    return np.stack([frame[:4, :4].reshape(-1, 3).mean(0), frame[:4, -4:].reshape(-1, 3).mean(0)])


def test_being_run_places_the_head_in_its_avatars_scene(avatar: Path, tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    t = np.arange(3200) / 16000  # 0.2 s: 5 frames at 25 fps
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    run = ["run", "--audio", "fake", "--avatar", "splatting", "--torso", "static", "--set", f"avatar.path={avatar}",
           "--set", "avatar.size=[64,64]", "--device", "cpu", "--input", str(wav)]

    proc = _being(*run, "--out", str(tmp_path / "scene.mp4"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"placing the head in its avatar's scene ({avatar / SCENE_DIR})" in proc.stderr
    assert "torso.scene=null" in proc.stderr
    frame = _first_frame(tmp_path / "scene.mp4").astype(float)
    assert frame.shape == (SCENE_H, SCENE_W, 3)  # the scene's size, with no --size
    np.testing.assert_allclose(_corners(frame), [BACKGROUND, BACKGROUND], atol=6)
    np.testing.assert_allclose(frame[124, 20], TORSO, atol=12)        # the scene's torso
    np.testing.assert_allclose(frame[115, 48], BACKGROUND, atol=12)   # its transparent patch
    face = frame[50:90, 30:66]  # the head, above the neck at (48, 96)
    assert np.abs(face - BACKGROUND).max(-1).mean() > 40  # mostly not background: the head is there

    proc = _being(*run, "--set", "torso.scene=null", "--out", str(tmp_path / "plain.mp4"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scene" not in proc.stderr
    frame = _first_frame(tmp_path / "plain.mp4").astype(float)
    assert frame.shape == (512, 512, 3)  # the static compositor's own default
    np.testing.assert_allclose(_corners(frame), [PLAIN, PLAIN], atol=6)

"""``being prepare PHOTO`` and ``being avatar from-photo`` end to end on scikit-image's
public-domain astronaut photo (mediapipe on the CPU): the one-frame dataset, its scene checked
against the photo's own landmarks, bad photos, and the avatar driven on the photo's scene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from being_kernel import InputError
from being_kernel.datasets import SCENE_DIR, load_tracked_video, read_scene
from being_kernel.media import read_image, write_png

pytest.importorskip("mediapipe", reason="being prepare needs mediapipe 0.10.21 (CPython 3.9-3.12)")

from being_prepare.landmarks import CHIN, FaceFollower, FaceLandmarker  # noqa: E402
from being_prepare.pipeline import PrepareOptions, prepare_video  # noqa: E402

NOSE = 1  # mediapipe face-mesh nose tip


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> tuple[Path, np.ndarray]:
    skimage_data = pytest.importorskip("skimage.data", reason="the photo comes from scikit-image")
    rgb = np.ascontiguousarray(skimage_data.astronaut())
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    from PIL import Image
    Image.fromarray(rgb).save(path, quality=95)
    return path, rgb


@pytest.fixture(scope="module")
def prepared(astronaut, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "data"
    prepare_video(astronaut[0], out, PrepareOptions(size=128, device="cpu", progress=False, overlay=False),
                  say=lambda s: None)
    return out


def _landmarks(rgb: np.ndarray) -> np.ndarray:
    with FaceLandmarker() as lm:
        return FaceFollower().choose(lm(rgb))


def test_a_photo_becomes_a_one_frame_dataset_with_its_scene(prepared: Path, astronaut) -> None:
    video = load_tracked_video(prepared)
    assert len(video) == 1 and video.split() == ([0], [])
    sidecar = json.loads((prepared / "being_dataset.json").read_text())
    assert sidecar["single_view"] and sidecar["generator"]["source_kind"] == "photo" and "audio" not in sidecar
    scene = read_scene(prepared / SCENE_DIR)
    assert scene.size == (512, 512)
    points = _landmarks(astronaut[1])  # found again, independently of the tracking
    face = float(np.linalg.norm(points[10] - points[CHIN]))
    nx, ny = scene.neck_xy
    # the neck base lies below the chin, by less than a face height, and near the face's midline
    assert points[CHIN, 1] < ny < points[CHIN, 1] + face
    assert abs(nx - points[NOSE, 0]) < 0.35 * face
    # forehead to chin is about 0.2 m on an adult: the scale must put the face in that range
    assert 0.1 < face / scene.head_px_per_metre < 0.3
    torso = read_image(scene.torso)
    nose = np.round(points[NOSE]).astype(int)
    assert torso[nose[1], nose[0], 3] < 20  # the face is the avatar's, not the torso layer's
    assert torso[500, 100, 3] > 235  # the space suit at the bottom left is the person's torso
    assert torso[30, 480, 3] < 20  # the backdrop is not
    plate = read_image(scene.background).astype(float)
    photo = astronaut[1].astype(float)
    # behind the face the plate is inpainted from the backdrop: far from skin, near the backdrop's colour
    assert np.abs(plate[nose[1], nose[0]] - photo[nose[1], nose[0]]).mean() > 25
    assert np.abs(plate[30, 480] - photo[30, 480]).mean() < 3


def test_bad_photos_are_refused_and_leave_nothing(astronaut, tmp_path: Path) -> None:
    noise = tmp_path / "noise.png"
    write_png(noise, np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    for photo, opts, words in [(noise, PrepareOptions(size=128, progress=False), "no face was found"),
                               (astronaut[0], PrepareOptions(size=128, progress=False, start=1.0), "it has no time line")]:
        out = tmp_path / "out"
        with pytest.raises(InputError, match=words):
            prepare_video(photo, out, opts, say=lambda s: None)
        assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    cut = tmp_path / "cut.png"
    write_png(cut, np.ascontiguousarray(astronaut[1][:, 190:]))  # the left of the face cut away
    with pytest.raises(InputError, match="cut by the photo's border|no face was found"):
        prepare_video(cut, tmp_path / "out", PrepareOptions(size=128, progress=False), say=lambda s: None)


def test_several_faces_follow_the_largest_with_a_note(astronaut, tmp_path: Path) -> None:
    from PIL import Image

    rgb = astronaut[1]
    canvas = np.full((512, 1000, 3), 200, np.uint8)
    canvas[:, :512] = rgb
    canvas[56:456, 560:960] = np.asarray(Image.fromarray(rgb).resize((400, 400)))  # a smaller second person
    path = tmp_path / "two.png"
    write_png(path, canvas)
    said: list[str] = []
    prepare_video(path, tmp_path / "out", PrepareOptions(size=128, progress=False, photometric=False, overlay=False),
                  say=said.append)
    assert any("2 faces in view" in s for s in said)
    scene = read_scene(tmp_path / "out" / SCENE_DIR)
    assert scene.neck_xy[0] / scene.size[0] < 0.5  # the larger face's neck, in the left half


def _being(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    return subprocess.run([sys.executable, "-m", "being_kernel.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900)


def test_from_photo_makes_an_avatar_that_talks_on_the_photo(astronaut, tmp_path: Path) -> None:
    proc = _being("avatar", "from-photo", str(astronaut[0]), "--out", "me", "--size", "128", "--steps", "3",
                  "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "dB PSNR" in proc.stderr and "preview" in proc.stderr
    avatar = tmp_path / "me"
    assert (avatar / "avatar.json").is_file() and (avatar / SCENE_DIR / "scene.json").is_file()
    assert read_image(avatar / "preview.png").shape == (128, 384, 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the scratch dataset is gone
    speech = tmp_path / "speech.wav"
    _tone(speech)
    proc = _being("run", "--audio", "viseme", "--avatar", "splatting", "--set", "avatar.path=me", "--torso", "static",
                  "--input", str(speech), "--out", "talk.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scene" in proc.stderr
    with av.open(str(tmp_path / "talk.mp4")) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (512, 512, 3)  # the photo's size, not the default torso's
    photo = astronaut[1].astype(float)
    assert np.abs(frame[500, 100].astype(float) - photo[500, 100]).mean() < 12  # the suit, from the torso layer
    assert np.abs(frame[30, 480].astype(float) - photo[30, 480]).mean() < 12  # the backdrop, from the plate


def _tone(path: Path, seconds: float = 0.6, rate: int = 16000) -> None:
    import wave
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())

"""``being prepare`` end to end, against videos whose truth is known: the demo head rendered with
known motion over a torso and a background (testvideo.make_test_video), and a real photograph
(scikit-image's public-domain ``astronaut``) moved by known similarity transforms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from being_kernel import InputError
from being_kernel.datasets import load_tracked_video
from being_kernel.media import Mp4Writer, read_image

pytest.importorskip("mediapipe", reason="being prepare needs mediapipe 0.10.21 (CPython 3.9-3.12)")

from being_prepare.pipeline import PrepareOptions, prepare_video  # noqa: E402
from being_prepare.report import head_euler_deg  # noqa: E402
from being_prepare.testvideo import (make_similarity_video, make_test_video, similarity_motion,  # noqa: E402
                                     tracking_errors)

FRAMES = 40


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "talk.mp4"
    return path, make_test_video(path, frames=FRAMES)


@pytest.fixture(scope="module")
def prepared(demo_video, tmp_path_factory):
    path, gt = demo_video
    out = tmp_path_factory.mktemp("prepared") / "data"
    opts = PrepareOptions(size=256, device="cpu", progress=False, focal=float(gt.camera.K[0, 0, 0]),
                          photometric_epochs=6)  # as on a GPU (the CPU default is 3, for speed)
    summary = prepare_video(path, out, opts, say=lambda s: None)
    return out, gt, summary


def _astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data", reason="the photo comes from scikit-image")
    return skimage_data.astronaut()


def test_the_demo_head_video_is_tracked_within_the_stated_errors(prepared) -> None:
    """Thresholds (docs/prepare.md): head rotation within 7° on average (head-pose estimators on
    real faces report 3-5° mean error; 3.9° measured here), the face in the head's own frame
    within 5 mm (4.2 mm measured), the mesh in camera space within 15 mm with the focal length
    given (8.1 mm measured, mostly depth), the jaw within 0.05 rad (0.043 measured)."""
    out, gt, summary = prepared
    e = tracking_errors(out, gt)
    assert e["rotation_deg_mean"] < 7.0 and e["rotation_deg_max"] < 10.0, e
    assert e["face_mm_mean"] < 5.0, e
    assert e["mesh_mm_mean"] < 15.0, e
    assert e["jaw_rad_mean"] < 0.05, e
    assert summary.failed == [] and summary.reprojection_px_median < 3.0


def test_the_dataset_is_what_being_fit_reads(prepared) -> None:
    out, gt, _ = prepared
    video = load_tracked_video(out)
    assert len(video.image_paths) == FRAMES and video.fps == 25.0 and video.audio_path is not None
    assert video.test_frames == 4 and not video.full_frame
    assert read_image(video.image_paths[0]).shape == (256, 256, 3)
    assert video.load_mask(0).shape == (256, 256, 1) and float(video.load_mask(0).mean()) > 0.1
    assert (video.cameras.R[:, 2, 2] < 0).all()  # the camera looks at the face
    audio = video.load_audio()
    assert abs(audio.duration - FRAMES / 25.0) < 0.05  # the video's sound track, start to end
    for sub in ("masks/person", "masks/head", "masks/mouth"):
        assert len(list((out / sub).glob("*.png"))) == FRAMES
    assert (out / "background.png").is_file() and (out / "head_model" / "model.json").is_file()
    quality = json.loads((out / "report" / "quality.json").read_text())
    assert len(quality["reprojection_px"]) == FRAMES
    for name in ("tracking.png", "overlay.mp4"):
        assert (out / "report" / name).stat().st_size > 1000
    import av

    with av.open(str(out / "report" / "overlay.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == FRAMES


def test_the_head_mask_excludes_the_torso_and_the_plate_shows_the_background(prepared) -> None:
    out, _, _ = prepared
    head = read_image(out / "masks/head/00000.png")[..., 0] / 255.0
    person = read_image(out / "masks/person/00000.png")[..., 0] / 255.0
    assert person[-10:].mean() > 0.5  # the torso fills the bottom of the crop ...
    assert head[-10:].mean() < 0.05  # ... and is not head
    plate = read_image(out / "background.png").astype(float)
    first = read_image(out / "input/00000.png").astype(float)
    bg = person < 0.05
    assert np.abs(plate - first)[bg].mean() < 6.0  # where the background shows, the plate is it


def test_the_roll_of_a_real_photo_follows_the_known_roll(tmp_path) -> None:
    """The astronaut photo turned by known similarity transforms: the tracked roll about the
    camera axis follows the known roll (0.31° mean, 0.94° max measured; 0.36° mean with the CPU's
    default 3 photometric epochs, 1.34° with the landmark fit alone)."""
    motion = similarity_motion(40)
    video = make_similarity_video(_astronaut(), tmp_path / "astro.mp4", motion, centre=(225.0, 125.0))
    notes: list[str] = []
    prepare_video(video, tmp_path / "data", PrepareOptions(size=256, device="cpu", progress=False, overlay=False,
                                                           photometric_epochs=6), say=notes.append)
    assert any("no audio" in n for n in notes)
    v = load_tracked_video(tmp_path / "data")
    assert v.audio_path is None
    roll = head_euler_deg(v.cameras.R.double().numpy())[:, 2]
    err = np.abs((roll - roll[0]) - (motion[:, 0] - motion[0, 0]))
    assert err.mean() < 1.0 and err.max() < 2.0, err


def test_several_faces_follow_the_largest_or_the_chosen_one(tmp_path) -> None:
    import torch

    photo = _astronaut()
    small = torch.nn.functional.interpolate(torch.from_numpy(photo[:, ::-1].copy()).permute(2, 0, 1)[None].float(),
                                            size=(384, 384), mode="area")[0].permute(1, 2, 0).byte().numpy()
    canvas = np.zeros((512, 896, 3), np.uint8)
    canvas[:, :512] = photo
    canvas[64:448, 512:] = small  # a second, mirrored person, three quarters the size
    motion = np.array([[0.0, 1.0, 0.0, 0.0]] * 6)
    video = make_similarity_video(canvas, tmp_path / "two.mp4", motion, centre=(448.0, 256.0), size=(896, 512))
    notes: list[str] = []
    fast = dict(size=128, device="cpu", progress=False, photometric=False, overlay=False)
    prepare_video(video, tmp_path / "a", PrepareOptions(**fast), say=notes.append)
    assert any("2 faces" in n for n in notes)
    crop_a = json.loads((tmp_path / "a" / "being_dataset.json").read_text())["generator"]["crop"]
    prepare_video(video, tmp_path / "b", PrepareOptions(face=1, **fast), say=notes.append)
    crop_b = json.loads((tmp_path / "b" / "being_dataset.json").read_text())["generator"]["crop"]
    assert crop_a["x0"] < 400 < crop_b["x0"]  # the large face is on the left, the small one on the right
    assert crop_b["side"] < crop_a["side"]


def _blank_video(path: Path, frames: int = 5) -> Path:
    with Mp4Writer(path, 25.0, (128, 96)) as w:
        for k in range(frames):
            w.write(np.full((96, 128, 3), 40 + k, np.uint8))
        w.finish(expected_frames=frames)
    return path


def test_bad_input_is_a_clear_error_and_leaves_nothing(tmp_path, demo_video) -> None:
    fast = PrepareOptions(size=128, device="cpu", progress=False, photometric=False, overlay=False)
    with pytest.raises(InputError, match="no face"):
        prepare_video(_blank_video(tmp_path / "blank.mp4"), tmp_path / "out", fast)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    (tmp_path / "junk.mp4").write_bytes(os.urandom(4000))
    with pytest.raises(InputError, match="junk.mp4"):
        prepare_video(tmp_path / "junk.mp4", tmp_path / "out", fast)
    with pytest.raises(InputError):
        prepare_video(tmp_path / "missing.mp4", tmp_path / "out", fast)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty") as e:
        prepare_video(demo_video[0], tmp_path / "full", fast)
    assert "--overwrite" in e.value.hint
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_an_interrupt_leaves_nothing_half_written(tmp_path, demo_video, monkeypatch) -> None:
    from being_prepare import tracking

    def stop(self, progress=None):  # noqa: ANN001
        raise KeyboardInterrupt

    monkeypatch.setattr(tracking.Tracker, "fit_landmarks", stop)
    with pytest.raises(KeyboardInterrupt):
        prepare_video(demo_video[0], tmp_path / "out",
                      PrepareOptions(size=128, device="cpu", progress=False, overlay=False))
    assert list(tmp_path.iterdir()) == []


def test_the_cli_reports_errors_in_one_line(tmp_path) -> None:
    being = [sys.executable, "-m", "being_kernel.cli"]
    r = subprocess.run(being + ["prepare", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "nope.mp4" in r.stderr and "Traceback" not in r.stderr
    blank = _blank_video(tmp_path / "blank.mp4")
    r = subprocess.run(being + ["prepare", str(blank), "--out", str(tmp_path / "o"), "-q", "--device", "cpu"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no face" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.gpu
def test_the_gpu_path_tracks_within_the_same_errors(demo_video, tmp_path) -> None:
    """Tracking on CUDA (gsplat draws the photometric stage, batches of 32 frames, 6 epochs)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    path, gt = demo_video
    opts = PrepareOptions(size=256, device="cuda", progress=False, focal=float(gt.camera.K[0, 0, 0]))
    prepare_video(path, tmp_path / "data", opts, say=lambda s: None)
    e = tracking_errors(tmp_path / "data", gt)
    assert e["rotation_deg_mean"] < 7.0 and e["face_mm_mean"] < 5.0 and e["jaw_rad_mean"] < 0.05, e


def test_a_face_leaving_the_frame_is_listed_and_interpolated_or_dropped(tmp_path) -> None:
    motion = np.array([[0.0, 1.0, 0.0, 0.0]] * 16)
    motion[6:10, 2] = 1.2  # frames 6-9: the photo slides out of the frame to the right
    video = make_similarity_video(_astronaut(), tmp_path / "out.mp4", motion, centre=(225.0, 125.0))
    fast = dict(size=128, device="cpu", progress=False, photometric=False, overlay=False)
    summary = prepare_video(video, tmp_path / "a", PrepareOptions(**fast), say=lambda s: None)
    assert set(summary.failed) == {6, 7, 8, 9}
    v = load_tracked_video(tmp_path / "a")
    assert len(v.image_paths) == 16  # kept, their tracking interpolated from frames 5 and 10
    quality = json.loads((tmp_path / "a" / "report" / "quality.json").read_text())
    assert quality["failed_frames"] == [6, 7, 8, 9] and quality["reprojection_px"][7] is None
    dropped = prepare_video(video, tmp_path / "b", PrepareOptions(drop_failed=True, **fast), say=lambda s: None)
    assert set(dropped.dropped) >= {6, 7, 8, 9}
    assert len(load_tracked_video(tmp_path / "b").image_paths) == 16 - len(dropped.dropped)

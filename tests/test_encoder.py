"""Mp4Writer's H.264 encoder choice: libx264 presets, NVENC when it opens, "auto" falling back.

The oracles are independent of the writer: PyAV decodes the files (frame count, timestamps,
colour tags, PSNR against the source frames), and x264's own settings string, which it stores
in every stream it writes, tells which preset and crf it was given."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from being_kernel.errors import InputError
from being_kernel.media import Mp4Writer
from being_kernel.media import video_writer as vw

from conftest import run_being

W, H, N = 96, 64, 20


def source_frames(n: int = N, width: int = W, height: int = H) -> list[np.ndarray]:
    """Smooth moving gradients with a moving block: easy to compress well, different per frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for i in range(n):
        r = 128 + 100 * np.sin(2 * np.pi * (x / width + i / 17))
        g = 128 + 100 * np.cos(2 * np.pi * (y / height - i / 13))
        b = np.full_like(x, 60 + 7 * i)
        img = np.stack([r, g, b], axis=-1)
        img[8:24, 4 * i % (width - 16):4 * i % (width - 16) + 16] = (240, 240, 40)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def write(path: Path, frames: list[np.ndarray], fps: float = 25, **kw) -> Mp4Writer:
    w = Mp4Writer(path, fps, (frames[0].shape[1], frames[0].shape[0]), **kw)
    for f in frames:
        w.write(f)
    w.finish(expected_frames=len(frames))
    return w


def decode(path: Path) -> tuple[list[av.VideoFrame], av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        return frames, stream


def x264_settings(path: Path) -> str:
    """The settings string libx264 stores in its stream (an SEI message), '' if there is none."""
    data = path.read_bytes()
    start = data.find(b"x264 - core")
    return "" if start < 0 else data[start:data.find(b"\0", start)].decode("ascii", "replace")


def check_file(path: Path, source: list[np.ndarray], fps: Fraction, min_psnr: float) -> None:
    """Frame count, pts = frame index, yuv420p with BT.709 limited-range tags, each decoded
    frame closest to its own source frame, and every frame's PSNR above ``min_psnr``."""
    frames, stream = decode(path)
    assert stream.codec_context.name == "h264"
    assert len(frames) == len(source)
    assert [round(f.pts * f.time_base * fps) for f in frames] == list(range(len(source)))
    assert abs(float(frames[-1].pts * frames[-1].time_base) - (len(source) - 1) / fps) < 1e-3
    f0 = frames[0]
    assert f0.format.name == "yuv420p"
    assert (int(f0.colorspace), int(f0.color_range)) == (vw._BT709, vw._LIMITED_RANGE)
    rgb = [f.reformat(format="rgb24", src_colorspace=vw._BT709, src_color_range=vw._LIMITED_RANGE).to_ndarray()
           for f in frames]
    for i, img in enumerate(rgb):
        own = psnr(img, source[i])
        assert own > min_psnr, f"frame {i}: PSNR {own:.1f} dB"
        for j in (i - 1, i + 1):
            if 0 <= j < len(source):
                assert own > psnr(img, source[j]) + 3, f"frame {i} looks like source frame {j}"


@pytest.fixture
def no_nvenc(monkeypatch):
    monkeypatch.setattr(vw, "nvenc_available", lambda: False)


@pytest.mark.parametrize("preset, subme", [("ultrafast", 0), (vw.DEFAULT_X264_PRESET, None), ("medium", 7)])
def test_x264_presets_encode_the_frames_exactly(tmp_path: Path, preset: str, subme: int | None) -> None:
    out, src = tmp_path / "x.mp4", source_frames()
    w = write(out, src, fps=Fraction(30000, 1001), encoder="libx264", preset=preset, crf=18)
    assert (w.encoder, w.preset) == ("libx264", preset)
    check_file(out, src, Fraction(30000, 1001), min_psnr=33)
    settings = x264_settings(out)
    assert "crf=18.0" in settings
    if subme is not None:  # x264's documented preset tables: ultrafast subme=0, medium subme=7
        assert re.search(rf"\bsubme={subme}\b", settings), settings


def test_default_preset_is_the_x264_default_and_not_medium(tmp_path: Path, no_nvenc) -> None:
    out, src = tmp_path / "d.mp4", source_frames(6)
    w = write(out, src)
    assert (w.encoder, w.preset) == ("libx264", vw.DEFAULT_X264_PRESET)
    settings = x264_settings(out)
    medium = tmp_path / "m.mp4"
    write(medium, src, preset="medium")
    assert settings and settings.split("options:")[1] != x264_settings(medium).split("options:")[1]


def test_lower_crf_gives_higher_quality(tmp_path: Path) -> None:
    src = source_frames(8)
    scores = {}
    for crf in (10, 35):
        write(out := tmp_path / f"c{crf}.mp4", src, encoder="libx264", crf=crf)
        frames, _ = decode(out)
        scores[crf] = np.mean([psnr(f.reformat(format="rgb24", src_colorspace=vw._BT709,
                                               src_color_range=vw._LIMITED_RANGE).to_ndarray(), s)
                               for f, s in zip(frames, src)])
    assert scores[10] > scores[35] + 3


@pytest.mark.parametrize("kwargs, match", [
    ({"encoder": "x265"}, "unknown H.264 encoder 'x265'"),
    ({"encoder": "libx264", "preset": "turbo"}, "unknown H.264 preset 'turbo'"),
    ({"encoder": "libx264", "preset": "p4"}, "NVENC preset"),
    ({"encoder": "h264_nvenc"}, "h264_nvenc does not open"),
])
def test_bad_encoder_or_preset_is_a_clear_error_and_writes_nothing(tmp_path: Path, no_nvenc, kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        Mp4Writer(tmp_path / "bad.mp4", 25, (W, H), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_auto_falls_back_to_libx264_when_nvenc_does_not_open(tmp_path: Path, no_nvenc) -> None:
    out, src = tmp_path / "auto.mp4", source_frames()
    audio = np.sin(2 * np.pi * 440 * np.arange(16000 * N // 25) / 16000).astype(np.float32) * 0.3
    w = write(out, src, encoder="auto", audio=audio, audio_rate=16000)
    assert w.encoder == "libx264"
    check_file(out, src, Fraction(25), min_psnr=33)
    assert x264_settings(out)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert [p.name for p in tmp_path.iterdir()] == ["auto.mp4"]


def test_auto_chooses_nvenc_when_it_opens_and_maps_x264_presets(monkeypatch) -> None:
    monkeypatch.setattr(vw, "nvenc_available", lambda: True)
    assert vw.resolve_encoder("auto") == ("h264_nvenc", vw.DEFAULT_NVENC_PRESET)
    assert vw.resolve_encoder("auto", "p7") == ("h264_nvenc", "p7")
    assert vw.resolve_encoder("auto", "ultrafast") == ("h264_nvenc", "p1")
    assert vw.resolve_encoder("libx264", "medium") == ("libx264", "medium")
    monkeypatch.setattr(vw, "nvenc_available", lambda: False)
    assert vw.resolve_encoder("auto", "medium") == ("libx264", "medium")
    with pytest.raises(InputError, match="NVENC preset"):
        vw.resolve_encoder("auto", "p7")


def test_probe_is_false_without_the_codec_and_asked_once(monkeypatch) -> None:
    vw.nvenc_available.cache_clear()
    try:
        monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {"h264_nvenc"})
        assert vw.nvenc_available() is False
        monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) | {"h264_nvenc"})
        assert vw.nvenc_available() is False  # cached: not asked again in this process
    finally:
        vw.nvenc_available.cache_clear()


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="an NVIDIA driver is present")
def test_without_an_nvidia_driver_auto_is_silently_libx264(tmp_path: Path, capfd) -> None:
    """This PyAV build may well carry h264_nvenc; without a driver it must not open, and "auto"
    must say nothing about it."""
    vw.nvenc_available.cache_clear()
    out, src = tmp_path / "a.mp4", source_frames(5)
    w = write(out, src)
    assert w.encoder == "libx264" and vw.nvenc_available() is False
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    check_file(out, src, Fraction(25), min_psnr=33)


@pytest.mark.gpu
def test_nvenc_encodes_the_frames_exactly(tmp_path: Path) -> None:
    vw.nvenc_available.cache_clear()
    if not vw.nvenc_available():
        pytest.skip("h264_nvenc does not open here (no NVENC on this GPU, or not in this PyAV build)")
    out, src = tmp_path / "nv.mp4", source_frames(30, 256, 128)
    audio = np.zeros((2, 16000 * 30 // 25), np.float32)
    w = write(out, src, encoder="h264_nvenc", crf=18, audio=audio, audio_rate=16000)
    assert (w.encoder, w.preset) == ("h264_nvenc", vw.DEFAULT_NVENC_PRESET)
    check_file(out, src, Fraction(25), min_psnr=33)
    assert x264_settings(out) == ""  # not written by x264
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_being_run_takes_encoder_and_preset(tmp_path: Path) -> None:
    run = ["run", "--audio", "fake", "--avatar", "fake", "--torso", "static", "--set", "torso.size=[64,64]"]
    out = tmp_path / "talk.mp4"
    r = run_being(*run, "--encoder", "libx264", "--preset", "ultrafast", "--crf", "23", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    settings = x264_settings(out)
    assert re.search(r"\bsubme=0\b", settings) and "crf=23.0" in settings
    frames, _ = decode(out)
    assert len(frames) == 100  # the 4 s demo clip at 25 fps

    bad = tmp_path / "bad.mp4"
    r = run_being(*run, "--encoder", "x265", "--out", str(bad))
    assert r.returncode != 0 and "unknown H.264 encoder 'x265'" in r.stderr
    r = run_being(*run, "--preset", "turbo", "--out", str(bad))
    assert r.returncode != 0 and "unknown H.264 preset 'turbo'" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]

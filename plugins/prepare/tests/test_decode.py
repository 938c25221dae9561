"""decode.py against clips made here with PyAV. Each frame carries its index in 8 black/white bars
(bit b = bar b), so the index is read back from the pixels; audio carries a sine plus a click at a
known time, so the cut start is checked against the clock the clips were written on."""

from __future__ import annotations

import math
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from being_kernel import InputError
from being_prepare import decode
from being_prepare.decode import extract_audio, probe_video, read_frames

W, H = 64, 48
CLICK_S, SINE_HZ = 1.0, 250.0


def bars(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(8):
        if (i >> b) & 1:
            img[:, b * 8 : (b + 1) * 8] = 255
    return img


def index_of(rgb: np.ndarray) -> int:
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    return sum(1 << b for b in range(8) if rgb[8:-8, b * 8 + 2 : b * 8 + 6].mean() > 127)


def make_clip(path: Path, n: int, fps: float = 25, codec: str = "libx264", *, pts_ms: list[int] | None = None,
              audio: tuple[str, int, np.ndarray] | None = None, matrix: list[int] | None = None,
              images: list[np.ndarray] | None = None, options: dict | None = None,
              faststart: bool = False) -> Path:  # fmt: skip
    """``n`` frames at ``fps`` (or at ``pts_ms``); audio = (codec, rate, float [C, N]) from t = 0."""
    with av.open(str(path), "w", options={"movflags": "+faststart"} if faststart else {}) as c:
        v = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options or {"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        tb = Fraction(1, 1000) if pts_ms else 1 / Fraction(fps).limit_denominator(1001)
        v.codec_context.time_base = tb
        if matrix is not None:
            v.set_display_matrix(matrix)
        a = None
        if audio is not None:
            acodec, rate, samples = audio
            a = c.add_stream(acodec, rate=rate, layout="mono" if samples.shape[0] == 1 else "stereo")
        for i in range(n):
            f = av.VideoFrame.from_ndarray(images[i] if images else bars(i), format="rgb24")
            f.pts, f.time_base = (pts_ms[i] if pts_ms else i), tb
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        if a is not None:
            fmt = "s16" if acodec.startswith("pcm") else "fltp"
            for s in range(0, samples.shape[1], 1024):
                chunk = samples[:, s : s + 1024]
                data = (chunk.T.reshape(1, -1) * 32767).round().astype(np.int16) if fmt == "s16" else chunk
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout=a.layout.name)
                af.sample_rate, af.pts, af.time_base = rate, s, Fraction(1, rate)
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


def click_audio(rate: int, seconds: float, stereo: bool) -> np.ndarray:
    """A 250 Hz sine (mono mix 0.2) replaced by a 2 ms click of 0.9 at CLICK_S: [C, N] float32."""
    t = np.arange(round(seconds * rate)) / rate
    sine = np.sin(2 * np.pi * SINE_HZ * t)
    click = (t >= CLICK_S) & (t < CLICK_S + 0.002)
    chans = [0.6 * sine, -0.2 * sine] if stereo else [0.2 * sine]
    chans = [np.where(click, 0.9, c) for c in chans]
    return np.array(chans, np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0, w.getframerate()


def onset(x: np.ndarray) -> int:
    return int(np.argmax(np.abs(x) > 0.5))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "25": make_clip(d / "c25.mp4", 50, 25, audio=("aac", 48000, click_audio(48000, 2.0, False))),
        "50": make_clip(d / "c50.mp4", 40, 50),
        # B-frames and keyframes every few frames (x264 puts some at the bars' 'scene cuts'): a
        # keyframe's pts lies after its dts, and a cut must still start at the right frame.
        "gop": make_clip(d / "gop.mp4", 50, 25, options={"preset": "veryfast", "g": "12", "bf": "3"}),
        # Matroska keeps ms timestamps: 1024 samples at 44.1 kHz are 23.22 ms, so they jitter by up to 0.5 ms.
        "pcm": make_clip(d / "pcm.mkv", 50, 25, audio=("pcm_s16le", 44100, click_audio(44100, 2.0, True))),
    }


@pytest.mark.parametrize("name, fps, n", [("25", 25, 50), ("50", 50, 40), ("webm", 25, 20)])
def test_every_frame_in_order(clips: dict[str, Path], tmp_path: Path, name: str, fps: float, n: int) -> None:
    if name == "webm":
        if "libvpx-vp9" not in av.codecs_available:
            pytest.skip("this PyAV build has no libvpx-vp9 encoder")
        path = make_clip(tmp_path / "c.webm", n, fps, "libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"})
    else:
        path = clips[name]
    out = list(read_frames(path))
    assert [k for k, _, _ in out] == list(range(n))
    assert [index_of(rgb) for _, _, rgb in out] == list(range(n))
    np.testing.assert_allclose([t for _, t, _ in out], np.arange(n) / fps, atol=1e-3)


def test_probe(clips: dict[str, Path]) -> None:
    info = probe_video(clips["25"])
    assert (info.width, info.height, info.rotation, info.has_audio) == (W, H, 0, True)
    assert info.fps == pytest.approx(25) and info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.path == clips["25"]
    assert probe_video(clips["50"]).fps == pytest.approx(50) and not probe_video(clips["50"]).has_audio


def test_resample_50_to_25_takes_every_other_and_25_to_50_repeats(clips: dict[str, Path]) -> None:
    down = list(read_frames(clips["50"], fps=25))
    assert [index_of(rgb) for _, _, rgb in down] == list(range(0, 40, 2))
    np.testing.assert_allclose([t for _, t, _ in down], np.arange(20) / 25, atol=1e-9)
    up = list(read_frames(clips["25"], fps=50))
    assert [index_of(rgb) for _, _, rgb in up] == [i // 2 for i in range(100)]
    assert [k for k, _, _ in up] == list(range(100))


@pytest.mark.parametrize("start, end", [(0.6, 1.4), (0.0, 0.5), (0.47, None), (1.0, 1.01), (1.53, 1.97), (1.96, None)])
@pytest.mark.parametrize("fps", [None, 25, 10])
@pytest.mark.parametrize("margin", [1.0, 0.0, -0.3])  # < 0: the seek lands after start, and must retry
def test_cut_yields_exactly_the_frames_in_start_end(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                   start: float, end: float | None, fps: float | None,
                                                   margin: float) -> None:  # fmt: skip
    monkeypatch.setattr(decode, "_SEEK_MARGIN_S", margin)
    stop = 2.0 if end is None else end
    if fps is None:  # oracle: the source frames i/25 in [start, stop)
        want_t = [i / 25 for i in range(50) if start - 1e-6 <= i / 25 < stop - 1e-6]
        want_i = [round(t * 25) for t in want_t]
    else:  # oracle: output times start + k/fps, each showing the last source frame at or before it
        want_t = [start + k / fps for k in range(200) if start + k / fps < stop - 1e-6]
        want_i = [math.floor(t * 25 + 1e-6) for t in want_t]
    out = list(read_frames(clips["gop"], start=start, end=end, fps=fps))
    assert [index_of(rgb) for _, _, rgb in out] == want_i
    np.testing.assert_allclose([t for _, t, _ in out], want_t, atol=1e-6)
    assert [k for k, _, _ in out] == list(range(len(want_i)))


def test_a_late_start_seeks_instead_of_decoding_from_zero(clips: dict[str, Path]) -> None:
    t0 = next(decode._timed_frames(clips["gop"], 1.6))[0]  # the first frame decoded after the seek
    assert 0 < t0 <= 1.6


def test_variable_frame_rate(tmp_path: Path) -> None:
    pts_ms = [0, 40, 60, 130, 140, 150, 240, 250, 330, 400]
    path = make_clip(tmp_path / "vfr.mkv", len(pts_ms), 25, pts_ms=pts_ms)
    assert [round(t * 1000) for _, t, _ in read_frames(path)] == pts_ms
    out = list(read_frames(path, fps=50, end=0.4))
    want = [max(i for i, p in enumerate(pts_ms) if p <= k * 20) for k in range(20)]
    assert [index_of(rgb) for _, _, rgb in out] == want


def test_audio_cut_starts_with_the_first_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    start, end = 0.6, 1.4
    (k, t, rgb), *_ = read_frames(clips["pcm"], start=start, end=end)
    assert (k, index_of(rgb)) == (0, 15) and t == pytest.approx(start, abs=1e-6)
    assert extract_audio(clips["pcm"], tmp_path / "a.wav", start=start, end=end)
    x, rate = read_wav(tmp_path / "a.wav")
    assert rate == 44100 and len(x) == round((end - start) * rate)
    assert onset(x) == round((CLICK_S - start) * rate)
    # PCM is exact: the mono mix (0.6 - 0.2) / 2 of the sine has its phase at `start` at sample 0.
    j = np.arange(200)
    np.testing.assert_allclose(x[:200], 0.2 * np.sin(2 * np.pi * SINE_HZ * (start + j / rate)), atol=2e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temporary left beside it


def test_audio_is_the_mono_mix_sample_for_sample(clips: dict[str, Path], tmp_path: Path) -> None:
    assert extract_audio(clips["pcm"], tmp_path / "a.wav")
    x, rate = read_wav(tmp_path / "a.wav")
    want = click_audio(rate, 2.0, True).mean(axis=0)
    assert len(x) == len(want)
    np.testing.assert_allclose(x, want, atol=2e-4)  # no sample dropped or doubled at the ms-rounded pts


def test_aac_audio_keeps_the_clock(clips: dict[str, Path], tmp_path: Path) -> None:
    assert extract_audio(clips["25"], tmp_path / "full.wav")
    x, rate = read_wav(tmp_path / "full.wav")
    assert rate == 48000 and abs(len(x) - 2 * rate) < 0.05 * rate
    assert abs(onset(x) - CLICK_S * rate) < 0.002 * rate
    assert extract_audio(clips["25"], tmp_path / "cut.wav", start=0.76)
    x, _ = read_wav(tmp_path / "cut.wav")
    assert abs(onset(x) - (CLICK_S - 0.76) * rate) < 0.002 * rate


def test_no_audio_writes_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    assert extract_audio(clips["50"], tmp_path / "a.wav") is False
    assert list(tmp_path.iterdir()) == []


def test_interrupted_extract_leaves_nothing(clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(_: np.ndarray) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(decode, "_pcm16", interrupt)
    with pytest.raises(KeyboardInterrupt):
        extract_audio(clips["pcm"], tmp_path / "a.wav")
    assert list(tmp_path.iterdir()) == []


# Display matrices written by hand from the QuickTime/ISO tkhd definition: a coded pixel (p, q)
# is shown at (a p + c q + x, b p + d q + y), a..d and x, y in 16.16 fixed point. 90 is the matrix an
# iPhone writes for a portrait clip (players turn the coded picture clockwise).
_ONE = 1 << 16
MATRICES = {
    90: (0, 1, -1, 0, H, 0),
    180: (-1, 0, 0, -1, W, H),
    270: (0, -1, 1, 0, 0, W),
}


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_turns_the_picture_upright(tmp_path: Path, rotation: int) -> None:
    if not hasattr(av.video.stream.VideoStream, "set_display_matrix"):
        pytest.skip("this PyAV cannot write a display matrix (VideoStream.set_display_matrix)")
    a, b, c, d, x, y = MATRICES[rotation]
    img = np.zeros((H, W, 3), np.uint8)
    markers = {(4, 4): (255, 0, 0), (W - 8, 4): (0, 255, 0), (4, H - 8): (0, 0, 255)}  # (p, q) top-left corners
    for (p, q), colour in markers.items():
        img[q : q + 4, p : p + 4] = colour
    path = make_clip(tmp_path / "rot.mp4", 2, 25, images=[img, img],
                     matrix=[a * _ONE, b * _ONE, 0, c * _ONE, d * _ONE, 0, x * _ONE, y * _ONE, 1 << 30])  # fmt: skip
    info = probe_video(path)
    dw, dh = (H, W) if rotation in (90, 270) else (W, H)
    assert (info.rotation, info.width, info.height) == (rotation, dw, dh)
    _, _, rgb = next(iter(read_frames(path)))
    assert rgb.shape == (dh, dw, 3)
    for (p, q), colour in markers.items():
        cp, cq = p + 2, q + 2  # the marker's centre, mapped through the matrix
        dp, dq = a * cp + c * cq + x, b * cp + d * cq + y
        np.testing.assert_allclose(rgb[int(dq), int(dp)], colour, atol=60)


def _bad_files(d: Path) -> dict[str, Path]:
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    whole = make_clip(d / "whole.mp4", 25, 25).read_bytes()  # moov written last: a cut file has none
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    with av.open(str(d / "sound.wav"), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000, layout="mono")
        f = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        f.sample_rate = 8000
        c.mux(s.encode(f))
        c.mux(s.encode(None))
    with av.open(str(d / "noframes.mkv"), "w") as c:  # a video stream with nothing in it
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        c.start_encoding()
    audio = ("aac", 48000, click_audio(48000, 0.4, False))
    fast = bytearray(make_clip(d / "whole_fast.mp4", 10, 25, faststart=True, audio=audio).read_bytes())
    at = fast.index(b"mdat") + 4  # the index survives, every video and audio packet is zeroed
    (d / "zeroed.mp4").write_bytes(fast[:at] + bytes(len(fast) - at))
    (d / "folder.mp4").mkdir()
    return {p.stem: p for p in d.iterdir() if not p.stem.startswith("whole")} | {"missing": d / "missing.mp4"}


@pytest.mark.parametrize("call", ["probe", "frames", "audio"])
def test_unusable_files_raise_input_error_naming_the_file(tmp_path: Path, call: str) -> None:
    files = _bad_files(tmp_path)
    assert len(files) == 8
    for name, path in files.items():
        if call == "audio" and name == "sound":
            continue  # a sound file's audio can be extracted
        with pytest.raises(InputError) as e:
            if call == "probe":
                probe_video(path)
            elif call == "frames":
                list(read_frames(path))
            else:
                extract_audio(path, tmp_path / "out.wav")
        assert str(path) in str(e.value) and e.value.hint, name
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("kw", [{"start": -0.1}, {"start": 1.0, "end": 1.0}, {"start": 1.0, "end": 0.5},
                                {"end": 0}, {"start": float("nan")}, {"fps": 0}, {"fps": -25}, {"fps": float("inf")}])  # fmt: skip
def test_bad_cut_arguments(clips: dict[str, Path], tmp_path: Path, kw: dict) -> None:
    with pytest.raises(InputError, match="c25.mp4"):
        read_frames(clips["25"], **kw)  # checked before any decoding
    if "fps" not in kw:
        with pytest.raises(InputError, match="c25.mp4"):
            extract_audio(clips["25"], tmp_path / "a.wav", **kw)
    assert list(tmp_path.iterdir()) == []


def test_cut_past_the_end_raises(clips: dict[str, Path]) -> None:
    for fps in (None, 25):
        with pytest.raises(InputError, match="no frame"):
            list(read_frames(clips["25"], start=5.0, fps=fps))

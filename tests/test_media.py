"""Media I/O against independent oracles: analytic signals written by soundfile/PyAV encoders,
and MP4s checked by decoding them again with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from being_kernel.errors import InputError
from being_kernel.media import Mp4Writer, check_output_path, demo_speech, read_audio, read_audio_channels

OUT_RATE = 16000


def chirp(t: np.ndarray, f0: float, f1: float, span: float) -> np.ndarray:
    """Linear chirp: not periodic, so cross-correlation has a single clear peak."""
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * span)))


def signal_a(t: np.ndarray) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t) + 0.15 * chirp(t, 300, 3000, 1.0)


def signal_b(t: np.ndarray) -> np.ndarray:
    return 0.25 * np.sin(2 * np.pi * 660 * t) + 0.2 * chirp(t, 2500, 200, 2.0)


def times(n: int, rate: int) -> np.ndarray:
    return np.arange(n) / rate


def best_lag(ref: np.ndarray, got: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, correlation) maximising corr(ref[i], got[i + lag]) over |lag| <= max_lag."""
    best = (0, -2.0)
    n = min(len(ref), len(got)) - 2 * max_lag
    for lag in range(-max_lag, max_lag + 1):
        r = ref[max_lag : max_lag + n]
        g = got[max_lag + lag : max_lag + lag + n]
        c = float(np.corrcoef(r, g)[0, 1])
        if c > best[1]:
            best = (lag, c)
    return best


# ---------------------------------------------------------------- reading


LOSSLESS = [
    ("wav", 8000, "PCM_16", 2e-3),
    ("wav", 44100, "PCM_16", 2e-3),
    ("wav", 48000, "PCM_16", 2e-3),
    ("wav", 44100, "PCM_24", 2e-3),
    ("wav", 22050, "PCM_32", 2e-3),
    ("wav", 32000, "FLOAT", 2e-3),
    ("wav", 16000, "PCM_U8", 1.2e-2),  # 8-bit quantisation step is 1/128
    ("flac", 44100, "PCM_16", 2e-3),
]


@pytest.mark.parametrize("ext,rate,subtype,tol", LOSSLESS)
def test_read_lossless_matches_analytic(tmp_path: Path, ext: str, rate: int, subtype: str, tol: float) -> None:
    n = rate + 7  # odd length: checks the round(N*new/old) rule
    path = tmp_path / f"sig_{subtype}.{ext}"
    sf.write(path, signal_a(times(n, rate)).astype(np.float32), rate, subtype=subtype)
    audio = read_audio(path, OUT_RATE)
    expected_len = round(Fraction(n * OUT_RATE, rate))
    assert audio.sample_rate == OUT_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.shape == (expected_len,)
    ref = signal_a(times(expected_len, OUT_RATE))
    err = np.abs(audio.samples - ref)[200:-200].max()
    assert err < tol, f"max abs error {err}"


def test_read_native_rate_no_resample(tmp_path: Path) -> None:
    path = tmp_path / "native.wav"
    sf.write(path, signal_a(times(22050, 22050)), 22050, subtype="FLOAT")
    audio = read_audio(path)
    assert audio.sample_rate == 22050 and len(audio.samples) == 22050
    assert np.abs(audio.samples - signal_a(times(22050, 22050))).max() < 1e-6


@pytest.mark.parametrize("channels", [2, 3])
def test_read_multichannel_downmix(tmp_path: Path, channels: int) -> None:
    rate, n = 44100, 44100
    t = times(n, rate)
    chans = [signal_a(t), signal_b(t), 0.1 * np.sin(2 * np.pi * 300 * t)][:channels]
    path = tmp_path / f"multi{channels}.wav"
    sf.write(path, np.stack(chans, axis=1), rate, subtype="PCM_24")
    data, native = read_audio_channels(path)
    assert native == rate and data.shape == (channels, n) and data.dtype == np.float32
    for c in range(channels):
        assert np.abs(data[c] - chans[c]).max() < 1e-5  # channel order kept
    mono = read_audio(path)
    assert np.abs(mono.samples - np.mean(chans, axis=0)).max() < 1e-5
    resampled = read_audio(path, OUT_RATE)
    t16 = times(len(resampled.samples), OUT_RATE)
    ref = np.mean([signal_a(t16), signal_b(t16), 0.1 * np.sin(2 * np.pi * 300 * t16)][:channels], axis=0)
    assert np.abs(resampled.samples - ref)[200:-200].max() < 2e-3


def _encode_mp3(path: Path, samples: np.ndarray, rate: int) -> None:
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=rate, layout="mono")
        stream.bit_rate = 192_000
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize("kind", ["ogg", "mp3"])
def test_read_lossy_correlates(tmp_path: Path, kind: str) -> None:
    rate, n = 44100, 44100
    sig = signal_a(times(n, rate))
    path = tmp_path / f"lossy.{kind}"
    if kind == "ogg":
        sf.write(path, sig, rate, format="OGG", subtype="VORBIS")
    else:
        try:
            av.codec.Codec("mp3", "w")
        except Exception:  # noqa: BLE001
            pytest.skip("PyAV has no mp3 encoder")
        _encode_mp3(path, sig, rate)
    audio = read_audio(path, OUT_RATE)
    assert audio.sample_rate == OUT_RATE
    assert abs(len(audio.samples) - OUT_RATE) < 0.1 * OUT_RATE
    ref = signal_a(times(len(audio.samples) + 2000, OUT_RATE))
    lag, corr = best_lag(ref[:OUT_RATE - 1000], np.pad(audio.samples, (0, 2000))[: OUT_RATE - 1000], 500)
    assert corr > 0.99, (lag, corr)
    assert abs(lag) <= 2, f"decoder kept {lag} samples of encoder delay"


# ---------------------------------------------------------------- read errors


def _video_only_mp4(path: Path) -> None:
    with Mp4Writer(path, 25, (64, 64)) as w:
        for _ in range(3):
            w.write(np.zeros((64, 64, 3), np.uint8))
        w.finish()


def _make_bad(tmp_path: Path, case: str) -> Path:
    if case == "missing":
        return tmp_path / "missing.wav"
    if case == "directory":
        (p := tmp_path / "folder.wav").mkdir()
        return p
    if case == "zero_bytes":
        (p := tmp_path / "empty.wav").touch()
        return p
    if case == "garbage":
        (p := tmp_path / "garbage.wav").write_bytes(np.random.default_rng(0).bytes(4096))
        return p
    if case == "text":
        (p := tmp_path / "notes.mp3").write_text("not audio at all\n" * 100)
        return p
    if case == "truncated_header":
        sf.write(p := tmp_path / "cut.wav", np.zeros(1000, np.float32), 16000)
        p.write_bytes(p.read_bytes()[:20])
        return p
    if case == "no_audio_stream":
        _video_only_mp4(p := tmp_path / "silent_video.mp4")
        return p
    if case == "no_samples":
        sf.write(p := tmp_path / "nosamples.wav", np.zeros((0, 1), np.float32), 16000)
        return p
    if case in ("nan", "inf"):
        x = np.zeros(1000, np.float32)
        x[500] = np.nan if case == "nan" else np.inf
        sf.write(p := tmp_path / f"{case}.wav", x, 16000, subtype="FLOAT")
        return p
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["missing", "directory", "zero_bytes", "garbage", "text", "truncated_header", "no_audio_stream", "no_samples", "nan", "inf"],
)
def test_read_errors_are_input_errors(tmp_path: Path, case: str) -> None:
    path = _make_bad(tmp_path, case)
    for reader in (read_audio, read_audio_channels):
        with pytest.raises(InputError) as info:
            reader(path)
        assert path.name in str(info.value)
        assert "\n" not in str(info.value) and info.value.hint


# ---------------------------------------------------------------- writer


def bar_frame(index: int, width: int, height: int) -> np.ndarray:
    """Black frame with a 4-px white bar at x = 4*index: the index is readable after decoding."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, 4 * index : 4 * index + 4] = 255
    return img


def decoded_bar_index(frame: av.VideoFrame) -> int:
    """The index ``bar_frame`` drew: its bar's centre is at x = 4*index + 1.5 (the bright columns'
    weighted mean, read to the nearest of those centres: compression noise moves it a little)."""
    columns = frame.to_ndarray(format="gray").astype(np.float32).mean(axis=0)
    x = np.average(np.arange(len(columns)), weights=np.maximum(columns - 128, 0))
    return int(round((x - 1.5) / 4))


WRITER_CASES = [
    # (audio rate, channels, fps, seconds, rate expected in the file)
    (44100, 2, Fraction(25), 2.0, 44100),
    (8000, 1, Fraction(25), 2.0, 8000),
    (22050, 2, Fraction(30000, 1001), 2.0, 22050),
    (37800, 3, Fraction(25), 1.0, 48000),  # not an AAC rate, and >2 channels: mono at 48 kHz
]


def _channels(t: np.ndarray, count: int) -> np.ndarray:
    """[count, N] distinct analytic channels."""
    return np.stack([signal_a(t), signal_b(t), 0.1 * np.sin(2 * np.pi * 300 * t)][:count])


@pytest.mark.parametrize("rate,channels,fps,seconds,stored_rate", WRITER_CASES)
def test_writer_roundtrip(tmp_path: Path, rate: int, channels: int, fps: Fraction, seconds: float, stored_rate: int) -> None:
    width, height = 256, 64
    n = round(seconds * rate)
    audio = _channels(times(n, rate), channels).astype(np.float32)
    frames = round(Fraction(n, rate) * fps)  # independent of types.frames_for
    out = tmp_path / "out.mp4"
    with Mp4Writer(out, fps, (width, height), audio, rate) as w:
        for i in range(frames):
            img = bar_frame(i, width, height)
            w.write(img if i % 2 else torch.from_numpy(img).float() / 255)  # both input kinds
            if i == frames // 2:  # audio is encoded alongside video, not all at the end
                assert abs(w._audio_pos - (i + 1) * stored_rate / fps) <= 1024
        assert w.frames_written == frames
        assert not out.exists()  # until finish() only the hidden partial file exists
        assert [p.name for p in tmp_path.iterdir()] == [f".out.mp4.{os.getpid()}.partial.mp4"]
        assert w.finish(expected_frames=frames) == out.resolve()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]

    with av.open(str(out)) as c:
        vs, as_ = c.streams.video[0], c.streams.audio[0]
        assert vs.codec_context.name == "h264"
        assert as_.codec_context.name == "aac" and as_.rate == stored_rate
        assert as_.channels == (channels if channels <= 2 else 1)
        v_dur, a_dur = float(vs.duration * vs.time_base), float(as_.duration * as_.time_base)
        assert abs(v_dur - frames / fps) < 1e-3
        assert abs(v_dur - a_dur) <= 1 / fps
        video = list(c.decode(vs))
    assert len(video) == frames
    assert abs(video[0].time) < 1e-3
    assert [decoded_bar_index(f) for f in video] == list(range(frames))  # the frames, in order
    assert abs(video[-1].time - (frames - 1) / fps) < 1e-3

    with av.open(str(out)) as c:
        chunks = list(c.decode(audio=0))
    assert abs(chunks[0].time) < 1e-3
    got = np.concatenate([f.to_ndarray() for f in chunks], axis=1)
    n_stored = round(seconds * stored_rate)
    assert n_stored <= got.shape[1] <= n_stored + 1024 + 1  # nothing lost; at most AAC end padding
    ref = _channels(times(n_stored, stored_rate), channels)
    ref = ref if channels <= 2 else ref.mean(axis=0, keepdims=True)
    for c in range(got.shape[0]):
        g = got[c, :n_stored]
        lag, corr = best_lag(ref[c], g, 40)
        assert abs(lag) <= 2, f"channel {c}: audio offset by {lag} samples"
        assert corr > 0.99, f"channel {c}: correlation {corr}"
        margin = stored_rate // 20
        rms_ratio = np.sqrt(np.mean(g[margin:-margin] ** 2) / np.mean(ref[c][margin:-margin] ** 2))
        assert 0.9 < rms_ratio < 1.1, f"channel {c}: gain {rms_ratio}"


def test_writer_silent_video_and_frame_checks(tmp_path: Path) -> None:
    out = tmp_path / "silent.mp4"
    with Mp4Writer(out, 25, (32, 16)) as w:
        with pytest.raises(ValueError):
            w.write(np.zeros((16, 32, 4), np.uint8))
        with pytest.raises(ValueError):
            w.write(np.zeros((32, 16, 3), np.uint8))
        w.write(torch.full((16, 32, 3), 2.0))  # out of range: clamped, not wrapped
        w.write(torch.full((16, 32, 3), -1.0))
        w.finish(expected_frames=2)
    with av.open(str(out)) as c:
        assert not c.streams.audio
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 2 and frames[0].min() > 240 and frames[1].max() < 15


def test_writer_rejects_odd_size(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", 25, (33, 16))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- atomicity


def test_exception_in_block_leaves_nothing(tmp_path: Path) -> None:
    audio = _channels(times(16000, 16000), 1).astype(np.float32)
    with pytest.raises(KeyError):
        with Mp4Writer(tmp_path / "out.mp4", 25, (64, 64), audio, 16000) as w:
            for i in range(5):
                w.write(bar_frame(i, 64, 64))
            raise KeyError("boom")
    assert list(tmp_path.iterdir()) == []


def test_block_without_finish_leaves_nothing(tmp_path: Path) -> None:
    with Mp4Writer(tmp_path / "out.mp4", 25, (64, 64)) as w:
        w.write(bar_frame(0, 64, 64))
    assert list(tmp_path.iterdir()) == []
    w.abort()  # idempotent


def test_wrong_frame_count_leaves_nothing(tmp_path: Path) -> None:
    w = Mp4Writer(tmp_path / "out.mp4", 25, (64, 64))
    for i in range(3):
        w.write(bar_frame(i, 64, 64))
    with pytest.raises(RuntimeError, match=r"3.*5|5.*3"):
        w.finish(expected_frames=5)
    assert list(tmp_path.iterdir()) == []
    w.abort()


def test_finish_replaces_existing_and_abort_after_finish_is_noop(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    w = Mp4Writer(out, 25, (64, 64))
    w.write(bar_frame(0, 64, 64))
    w.finish()
    w.abort()
    assert out.stat().st_size > 100 and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_check_output_path(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "ok.mp4") == (tmp_path / "ok.mp4").resolve()
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.mp4")
    with pytest.raises(InputError, match=r"\.mp4"):
        check_output_path(tmp_path / "out.mov")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(InputError, match="directory"):
        check_output_path(tmp_path / "dir.mp4")
    (tmp_path / "file").touch()
    with pytest.raises(InputError, match="not a directory"):
        check_output_path(tmp_path / "file" / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mp4", "file"]  # the probe file is gone


def test_check_output_path_read_only_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        try:
            (ro / "probe").touch()
            (ro / "probe").unlink()
            pytest.skip("running as a user who can write to a 0o500 directory (root)")
        except PermissionError:
            pass
        with pytest.raises(InputError, match="not writable"):
            check_output_path(ro / "out.mp4")
    finally:
        ro.chmod(0o700)


def test_check_output_path_unwritable_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both guards, even as root: permission bits (os.access) and a real probe file failing."""
    import tempfile

    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(InputError, match="not writable"):
        check_output_path(tmp_path / "out.mp4")
    monkeypatch.undo()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(InputError, match="not writable"):
        check_output_path(tmp_path / "out.mp4")


# ---------------------------------------------------------------- demo audio


def test_demo_speech_is_deterministic_speech_like() -> None:
    a = demo_speech()
    assert a.sample_rate == 16000 and a.samples.shape == (64000,) and a.samples.dtype == np.float32
    assert abs(np.abs(a.samples).max() - 0.5) < 1e-6
    assert np.array_equal(a.samples, demo_speech().samples)
    assert not np.array_equal(a.samples, demo_speech(seed=1).samples)
    frames = a.samples.reshape(-1, 160)  # 10 ms
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = rms > 0.05
    assert 0.3 < loud.mean() < 0.9  # syllables and pauses, not a steady tone
    # a pause of >= 0.3 s between phrases
    quiet = np.concatenate([[0], (rms < 0.005).astype(int), [0]])
    runs = np.diff(np.flatnonzero(np.diff(quiet)))[::2]
    assert runs.max() >= 30
    # voiced: pitch between 90 and 160 Hz in loud stretches (autocorrelation peak)
    centre = int(np.argmax(np.convolve(rms, np.ones(5), "same"))) * 160
    seg = a.samples[centre - 400 : centre + 400].astype(np.float64)
    ac = np.correlate(seg, seg, "full")[len(seg) - 1 :]
    lag = 100 + int(np.argmax(ac[100:180]))
    assert 90 < 16000 / lag < 160
    assert demo_speech(1.0, 8000, seed=2).samples.shape == (8000,)


def test_write_png_round_trips_exactly(tmp_path) -> None:
    from being_kernel.media import write_png

    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    path = write_png(tmp_path / "x.png", rgb)
    with av.open(str(path)) as c:
        back = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert np.array_equal(back, rgb)


def test_to_uint8_rounds_clamps_and_zeroes_nan_for_arrays_and_tensors() -> None:
    from being_kernel.media import to_uint8

    values = [[[0.0, 1.0, 0.5], [-0.2, 1.7, float("nan")], [0.502, 0.498, 1 / 255]]]
    expect = np.array([[[0, 255, 128], [0, 255, 0], [128, 127, 1]]], np.uint8)  # round(x * 255), clamped
    for image in (torch.tensor(values), np.array(values, np.float32)):
        out = to_uint8(image)
        assert out.dtype == np.uint8 and np.array_equal(out, expect)
    assert np.array_equal(to_uint8(torch.from_numpy(expect)), expect)  # uint8 passes through


def test_stale_partials_of_gone_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    import subprocess

    from being_kernel.media.video_writer import remove_stale_partials

    child = subprocess.Popen(["true"])
    child.wait()  # its pid now names a process that is gone
    gone, live = child.pid, os.getpid()
    files = [tmp_path / f".talk.mp4.{pid}.partial.mp4" for pid in (gone, live)]
    folders = [tmp_path / f".asset.{pid}.partial" for pid in (gone, live)]
    for f in files:
        f.write_bytes(b"half")
    for d in folders:
        (d / "sub").mkdir(parents=True)
    other = tmp_path / ".other.mp4.1.partial.mp4"  # another output's: not touched
    other.write_bytes(b"x")
    assert remove_stale_partials(tmp_path / "talk.mp4") == [files[0]]
    assert remove_stale_partials(tmp_path / "asset") == [folders[0]]
    assert [p.exists() for p in (*files, *folders, other)] == [False, True, False, True, True]

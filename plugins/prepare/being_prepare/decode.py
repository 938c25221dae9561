"""Decode a person's video into upright RGB frames on a fixed time grid, and its audio into a WAV
cut to the same interval, so every later stage of ``being prepare`` sees frame k and audio sample
0 on one clock: seconds from the start of the video stream.

Phones store portrait clips sideways with a display matrix; a player turns them upright, so we do
too. Every failure a user can cause surfaces as an ``InputError`` naming the file; no PyAV/FFmpeg
exception escapes.
"""

from __future__ import annotations

import math
import os
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import av
import numpy as np

from being_kernel import InputError
from being_kernel.media import check_media_file

EPS = 1e-6  # seconds: a frame at t counts as shown from t - EPS (float rounding of timestamps)
_SEEK_MARGIN_S = 1.0  # seek this far before `start`; B-frames can put a keyframe's pts after its dts
_AUDIO_RESYNC_S = 0.02  # an audio timestamp further than this from the running sample count is a gap
_HINT = "give a video file FFmpeg can play (mp4, mov, webm, mkv, ...) with a video track"
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, IndexError)


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` found in a file's first video stream."""

    path: Path
    width: int  # displayed width, after the rotation metadata is applied
    height: int  # displayed height
    fps: float  # the video stream's average frame rate
    duration_s: float  # of the video stream
    rotation: int  # degrees clockwise the decoded picture must be turned to display upright
    has_audio: bool


def _bad(path: Path, why: str) -> InputError:
    return InputError(f"cannot read video '{path}': {why}".replace("\n", " "), hint=_HINT)


def _av_why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__  # FFmpegError's str() repeats the path


def _check_cut(path: Path, start: float | None, end: float | None, fps: float | None = None) -> float:
    """``start`` (0 if None) after checking start >= 0, end > start and fps > 0."""
    s = 0.0 if start is None else float(start)
    if not (math.isfinite(s) and s >= 0):
        raise InputError(f"'{path}': start must be >= 0 seconds, got {start}", hint="pass a start time >= 0")
    if end is not None and not float(end) > s:  # NaN fails too
        raise InputError(f"'{path}': end ({end} s) must be after start ({s} s)", hint="pass an end later than start")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise InputError(f"'{path}': fps must be a positive number, got {fps}", hint="pass e.g. --fps 25")
    return s


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise _bad(path, "the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _rotation(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    """Clockwise degrees (0/90/180/270) to turn ``frame`` upright. FFmpeg's display-matrix angle
    (``VideoFrame.rotation``) is counter-clockwise, hence the minus; the legacy ``rotate`` tag of old
    muxers is already clockwise."""
    ccw = getattr(frame, "rotation", 0) or 0
    if ccw:
        return round(-ccw / 90) % 4 * 90
    try:
        return round(float(stream.metadata.get("rotate", 0)) / 90) % 4 * 90
    except ValueError:
        return 0


def _upright(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` as displayed (``np.rot90`` turns counter-clockwise for k > 0)."""
    rgb = frame.to_ndarray(format="rgb24")
    return np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90)) if rotation else rgb


def probe_video(path: str | Path) -> VideoInfo:
    """Size, rate, length and orientation of the first video stream (decodes one frame)."""
    p = check_media_file(path, "video", _HINT)
    try:
        with av.open(str(p), mode="r") as container:
            stream = _video_stream(container, p)
            frame = next(iter(container.decode(stream)), None)
            if frame is None:
                raise _bad(p, "the video stream has no decodable frames")
            rotation = _rotation(frame, stream)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base - float((stream.start_time or 0) * stream.time_base)
            else:
                duration = 0.0
            has_audio = bool(container.streams.audio)
    except _AV_ERRORS as e:
        raise _bad(p, f"not a decodable video ({_av_why(e)})") from e
    if not rate or rate <= 0:
        raise _bad(p, "the video stream has no frame rate")
    w, h = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
    return VideoInfo(p, w, h, float(rate), max(duration, 0.0), rotation, has_audio)


def _timed_frames(path: Path, start: float) -> Iterator[tuple[float, float, av.VideoFrame, int]]:
    """``(t, duration, frame, rotation)`` in decode order, from the last frame at or before ``start``
    on (or the first frame if none is). Seeks to a keyframe before ``start``, further back if the
    keyframe found turns out to start after it."""
    try:
        with av.open(str(path), mode="r") as container:
            stream = _video_stream(container, path)
            tb, origin = stream.time_base, stream.start_time or 0
            rate = stream.average_rate or stream.guessed_rate or 25
            rotation: int | None = None
            margin = _SEEK_MARGIN_S
            while True:
                target = start - margin
                if start > 0:
                    container.seek(origin + max(int(target / tb), 0), stream=stream, backward=True)
                t = -1 / float(rate)
                for i, frame in enumerate(container.decode(stream)):  # no pts (rare): one period on
                    t = float((frame.pts - origin) * tb) if frame.pts is not None else t + 1 / float(rate)
                    if i == 0 and target > 0 and t > start + EPS:
                        break  # landed after start: retry from further back
                    rotation = _rotation(frame, stream) if rotation is None else rotation
                    dur = float(frame.duration * tb) if getattr(frame, "duration", 0) else 1 / float(rate)
                    yield t, dur, frame, rotation
                else:
                    return
                margin = max(4 * margin, 0.5)
    except _AV_ERRORS as e:
        raise _bad(path, f"not a decodable video ({_av_why(e)})") from e


def read_frames(
    path: str | Path, *, start: float | None = None, end: float | None = None, fps: float | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(k, t, rgb)``: output index k = 0, 1, ..., its time t (seconds from the start of the
    video stream) and the upright RGB uint8 ``[H, W, 3]`` picture shown then, for start <= t < end.

    fps=None: every decoded frame, t its presentation time. fps given: t = start + k / fps and the
    frame is the last one whose presentation time is <= t (+1e-6 s; the first frame for times before
    it), so 50 -> 25 fps takes every other frame and 25 -> 50 shows each twice. Arguments are
    checked now, the file when iterated; InputError if the cut holds no frame.
    """
    p = check_media_file(path, "video", _HINT)
    s = _check_cut(p, start, end, fps)
    stop = math.inf if end is None else float(end)
    return _frames(p, s, stop, fps)


def _frames(path: Path, start: float, stop: float, fps: float | None) -> Iterator[tuple[int, float, np.ndarray]]:
    k = 0
    if fps is None:
        for t, _, frame, rot in _timed_frames(path, start):
            if t + EPS >= stop:
                break
            if t + EPS >= start:
                yield k, t, _upright(frame, rot)
                k += 1
    else:
        prev: tuple[av.VideoFrame, int, float] | None = None  # (frame, rotation, end of its own span)
        shown: np.ndarray | None = None  # prev's picture once converted
        for item in chain(_timed_frames(path, start), [None]):
            # prev is shown until the next frame starts, or (the last one) for its own duration
            until = item[0] if item is not None else prev[2] if prev is not None else -math.inf
            while prev is not None and (t_out := start + k / fps) + EPS < min(until, stop):
                shown = _upright(prev[0], prev[1]) if shown is None else shown.copy()
                yield k, t_out, shown
                k += 1
            if item is None or start + k / fps + EPS >= stop:
                break
            t, dur, frame, rot = item
            prev, shown = (frame, rot, t + dur), None
    if k == 0:
        cut = f"[{start:g} s, {stop:g} s)" if math.isfinite(stop) else f"from {start:g} s on"
        raise InputError(f"video '{path}' has no frame {cut}", hint="pick a start/end inside the video")


def _pcm16(mono: np.ndarray) -> bytes:
    """float ``[n]`` in [-1, 1] -> little-endian 16-bit PCM bytes."""
    return (np.clip(mono, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _placed_audio(path: Path, container: av.container.InputContainer, start: float) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(rate, pos, mono)``: the first audio track decoded as float32 ``[n]`` chunks (channel mean),
    ``pos`` the output sample of ``mono[0]`` with output sample 0 at ``start`` on the video's clock."""
    astream = container.streams.audio[0]
    vs = container.streams.video[0] if container.streams.video else astream
    clock0 = float((vs.start_time or 0) * vs.time_base)  # the video stream's t = 0, container time
    to_float = av.AudioResampler(format="fltp")  # any sample format -> float [C, n], same rate and layout
    rate, pos = 0, None
    for decoded in container.decode(astream):
        for frame in to_float.resample(decoded):
            if rate and frame.sample_rate != rate:
                raise _bad(path, "the audio sample rate changes mid-stream")
            rate = frame.sample_rate
            if frame.pts is not None:  # follow the timestamps, except for their rounding jitter
                at = round((float(frame.pts * frame.time_base) - clock0 - start) * rate)
                pos = at if pos is None or abs(at - pos) > _AUDIO_RESYNC_S * rate else pos
            mono = frame.to_ndarray().mean(axis=0, dtype=np.float32)
            yield rate, pos or 0, mono
            pos = (pos or 0) + len(mono)


def extract_audio(path: str | Path, out_wav: str | Path, *, start: float | None = None, end: float | None = None) -> bool:
    """Write the first audio track over [start, end) (on the video stream's clock, so sample 0 is
    at ``start``, or 0) to ``out_wav`` as mono 16-bit PCM at the track's own rate, atomically.
    Gaps, and audio starting after ``start``, are filled with silence. Returns False, writing
    nothing, when there is no audio track."""
    p = check_media_file(path, "video", _HINT)
    s = _check_cut(p, start, end)
    out = Path(out_wav).expanduser()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial.wav")
    try:
        with av.open(str(p), mode="r") as container:
            if not container.streams.audio:
                return False
            written = 0  # output samples in the file so far
            with wave.open(str(tmp), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(container.streams.audio[0].rate or 8000)  # the decoded rate replaces it
                for rate, pos, mono in _placed_audio(p, container, s):
                    n_stop = math.inf if end is None else round((float(end) - s) * rate)
                    if written == 0:
                        wav.setframerate(rate)
                    lo, hi = max(written - pos, 0), int(min(len(mono), n_stop - pos))
                    if lo < hi:
                        wav.writeframes(b"\0\0" * (pos + lo - written))  # silence over a gap, if any
                        wav.writeframes(_pcm16(mono[lo:hi]))
                        written = pos + hi
                    if written >= n_stop:
                        break
                if written == 0:
                    raise _bad(p, "the audio track has no samples in the cut")
        os.replace(tmp, out)
    except BaseException as e:  # KeyboardInterrupt and bugs too: nothing half-written survives
        tmp.unlink(missing_ok=True)
        if isinstance(e, InputError) or not isinstance(e, _AV_ERRORS):
            raise
        if isinstance(e, OSError) and e.filename == str(tmp):
            raise InputError(f"cannot write '{out}': {e.strerror}", hint="pick a writable output directory") from e
        raise _bad(p, f"not decodable audio ({_av_why(e)})") from e
    return True

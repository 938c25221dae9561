"""Read audio files (wav, flac, ogg, mp3, ... anything FFmpeg decodes) into float32 arrays.

Every failure a user can cause (missing, empty, corrupt or silent-less files) surfaces as an
``InputError`` naming the file; no PyAV/FFmpeg exception escapes.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd
from pathlib import Path

import av
import numpy as np
from scipy.signal import resample_poly

from being_kernel.errors import InputError
from being_kernel.types import Audio

# Integer sample formats -> the scale that maps them to [-1, 1). 24-bit PCM decodes as s32.
_INT_SCALE = {"s16": 2.0**15, "s32": 2.0**31, "s64": 2.0**63}

_FORMATS_HINT = "give a wav, flac, ogg or mp3 file with an audio track"


def _decode_error(path: Path, why: str) -> InputError:
    return InputError(f"cannot read audio '{path}': {why}", hint=_FORMATS_HINT)


def _frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame -> float32 ``[C, n]``."""
    fmt = frame.format
    channels = len(frame.layout.channels)
    arr = frame.to_ndarray()
    if not fmt.is_planar:  # packed: [1, n*C] interleaved
        arr = arr.reshape(-1, channels).T
    name = fmt.name.rstrip("p")
    if name == "u8":
        out = (arr.astype(np.float32) - 128.0) / 128.0
    elif name in _INT_SCALE:
        out = (arr.astype(np.float64) / _INT_SCALE[name]).astype(np.float32)
    else:  # flt / dbl
        out = arr.astype(np.float32)
    return out


def check_media_file(path: str | Path, kind: str, hint: str) -> Path:
    """``path`` as a Path when it is a non-empty file; else an InputError naming it ("``kind``
    file ... does not exist / is a directory / is empty"), ``hint`` for the empty case."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{kind} file '{path}' does not exist", hint="check the path")
    if path.is_dir():
        article = "an" if kind[0] in "aeiou" else "a"
        raise InputError(f"{kind} path '{path}' is a directory, not a file", hint=f"give the path of {article} {kind} file")
    if path.stat().st_size == 0:
        raise InputError(f"{kind} file '{path}' is empty (0 bytes)", hint=hint)
    return path


def read_audio_channels(path: str | Path) -> tuple[np.ndarray, int]:
    """The file's first audio stream as float32 ``[C, N]`` at its native rate, and that rate."""
    path = Path(path).expanduser()
    check_media_file(path, "audio", _FORMATS_HINT)
    chunks: list[np.ndarray] = []
    rate = channels = 0
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.audio:
                raise _decode_error(path, "the file has no audio stream")
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                data = _frame_to_float(frame)
                if not chunks:
                    rate, channels = frame.sample_rate, data.shape[0]
                elif (frame.sample_rate, data.shape[0]) != (rate, channels):
                    raise _decode_error(path, "sample rate or channel count changes mid-stream")
                chunks.append(data)
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as e:
        # FFmpegError: undecodable bytes; ValueError/EOFError: PyAV's own complaints on odd streams.
        why = getattr(e, "strerror", None) or str(e)  # FFmpegError's str() repeats the path
        raise _decode_error(path, f"not decodable audio ({why})".replace("\n", " ")) from e
    samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    if samples.shape[1] == 0 or rate <= 0:
        raise InputError(f"audio file '{path}' contains no audio samples", hint="give a non-empty recording")
    if not np.isfinite(samples).all():
        raise InputError(f"audio file '{path}' contains NaN or infinite samples", hint="re-export the audio")
    return samples, rate


def resample(samples: np.ndarray, old_rate: int, new_rate: int) -> np.ndarray:
    """Polyphase-resample ``[..., N]`` along the last axis to ``round(N*new/old)`` samples (float32)."""
    if old_rate == new_rate:
        return samples.astype(np.float32, copy=False)
    g = gcd(old_rate, new_rate)
    up, down = new_rate // g, old_rate // g
    n_out = round(Fraction(samples.shape[-1] * up, down))
    # resample_poly yields ceil(N*up/down); trimming to round() keeps lengths frame-exact.
    out = resample_poly(samples, up, down, axis=-1)[..., :n_out]
    return np.ascontiguousarray(out, dtype=np.float32)


def read_audio(path: str | Path, sample_rate: int | None = None) -> Audio:
    """Decode ``path``, downmix to mono (channel mean) and resample to ``sample_rate`` if given."""
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    samples, rate = read_audio_channels(path)
    mono = samples.mean(axis=0, dtype=np.float32)
    if sample_rate is not None and sample_rate != rate:
        mono = resample(mono, rate, sample_rate)
        rate = sample_rate
    return Audio(np.ascontiguousarray(mono, dtype=np.float32), int(rate))

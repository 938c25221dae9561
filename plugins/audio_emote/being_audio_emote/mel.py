"""The mel spectrogram SadTalker's audio-to-pose model was trained on (Wav2Lip's hparams,
src/utils/audio.py and hparams.py), in numpy: no librosa at run time.

16 kHz audio -> pre-emphasis (0.97) -> STFT magnitude (n_fft 800, hop 200, periodic Hann 800,
centred with zero padding, as librosa >= 0.9 pads) -> 80 Slaney-scale, area-normalised mel bands
55-7600 Hz -> 20 log10(max(1e-5, x)) - 20 dB -> clip(8 (S + 100) / 100 - 4, -4, 4).
80 mel frames per second; 16-frame windows, one per 25 fps video frame.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS, F_MIN, F_MAX = 800, 200, 80, 55.0, 7600.0
PREEMPHASIS = 0.97
WINDOW = 16  # mel frames per video frame's window (syncnet_mel_step_size)
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


@functools.lru_cache(maxsize=None)
def mel_filters() -> np.ndarray:
    """``[80, 401]`` float32 triangular filters on the Slaney scale, each scaled to unit area
    (2 / bandwidth in Hz)."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2))
    lower = (freqs[None] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - freqs[None]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


MEL_BLOCK = 64  # mel frames per computation: one fixed shape, so a frame's bits never depend on how many are asked


def mel_frames(wav: np.ndarray, first: int, count: int, length: int) -> np.ndarray:
    """Mel frames ``first .. first + count - 1`` of the spectrogram of ``wav[:length]`` (zero-padded
    to ``length`` if shorter; ``wav`` may hold more) -> ``[count, 80]`` in [-4, 4]. Frame m reads
    samples [200 m - 400, 200 m + 400) of the pre-emphasised clip, zero outside [0, length)."""
    out = np.empty((count, N_MELS), np.float32)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    for b in range(0, count, MEL_BLOCK):
        m0 = first + b
        lo = HOP * m0 - N_FFT // 2  # the first sample the block reads
        span = HOP * (MEL_BLOCK - 1) + N_FFT
        x = np.zeros(span + 1, np.float64)  # one sample before, for the pre-emphasis
        a, z = max(lo - 1, 0), min(lo + span, length, len(wav))
        if z > a:
            x[a - (lo - 1):z - (lo - 1)] = wav[a:z]
        y = x[1:] - PREEMPHASIS * x[:-1]  # x[-1] = 0 at the clip's start: x is zero there
        y[max(0, min(length, len(wav)) - lo):] = 0.0  # the filtered clip is padded, not filtered into the padding
        index = np.arange(N_FFT)[None] + HOP * np.arange(MEL_BLOCK)[:, None]
        magnitude = np.abs(np.fft.rfft(y[index] * window, axis=-1))  # [MEL_BLOCK, 401]
        mel = magnitude @ mel_filters().T.astype(np.float64)
        db = 20.0 * np.log10(np.maximum(1e-5, mel)) - 20.0
        n = min(MEL_BLOCK, count - b)
        out[b:b + n] = np.clip(8.0 * (db[:n] + 100.0) / 100.0 - 4.0, -4.0, 4.0)
    return out


def mel_count(length: int) -> int:
    """Mel frames of a ``length``-sample clip: 1 + length // 200 (centred STFT)."""
    return 1 + length // HOP


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """float ``[N]`` 16 kHz -> ``[1 + N // 200, 80]`` normalised log-mel frames in [-4, 4]."""
    return mel_frames(wav, 0, mel_count(len(wav)), len(wav))


def last_sample(m: int) -> int:
    """The sample after the last one mel frame ``m`` reads."""
    return HOP * m + N_FFT // 2


def window_start(frame: np.ndarray | int) -> np.ndarray:
    """The first mel frame of video frame ``frame``'s window: int(80 (i - 2) / 25), truncated
    toward zero (frames 0 and 1 start at -6 and -3), in exact integer arithmetic."""
    offset = 16 * (np.asarray(frame, dtype=np.int64) - 2)
    return np.sign(offset) * (np.abs(offset) // 5)


def frame_windows(mel: np.ndarray, frames: int, first: int = 0) -> np.ndarray:
    """``[M, 80]`` mel -> the windows of frames ``first..frames - 1``, ``[frames - first, 80, 16]``:
    frame i's window starts at mel frame trunc(80 (i - 2) / 25) (truncation toward zero: frames 0
    and 1 start at -6 and -3), indices clamped to the spectrogram (edge frames repeated), as
    SadTalker's generate_batch.py cuts them."""
    start = window_start(np.arange(first, frames))
    index = np.clip(start[:, None] + np.arange(WINDOW)[None], 0, len(mel) - 1)
    return np.ascontiguousarray(mel[index].transpose(0, 2, 1))

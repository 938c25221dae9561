"""A built-in, deterministic speech-like clip (babble, no words) for runs without an input file."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from being_kernel.types import Audio

# F1, F2, F3 (Hz) of /a/ /i/ /u/ /e/ /o/ (Peterson & Barney style averages) and their bandwidths.
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]])
_BANDWIDTHS = (90.0, 110.0, 170.0)
_BLOCK = 0.005  # s; formant filters are re-tuned every block, their state carried across


def demo_speech(duration_s: float = 4.0, sample_rate: int = 16000, seed: int = 0) -> Audio:
    """Source-filter babble: glottal pulses with a falling pitch through moving formants.

    Phrases of 1.2-2 s separated by ~0.4 s pauses; syllables of 150-250 ms with smooth envelopes,
    some preceded by a closure (silence) and a noise burst like a plosive. Peak 0.5, float32 [N].
    """
    rng = np.random.default_rng(seed)
    sr, n = sample_rate, max(1, round(duration_s * sample_rate))
    f0 = np.full(n, 120.0)
    env, burst_env = np.zeros(n), np.zeros(n)
    centres, targets = [0], [_VOWELS[0]]
    t = 0.1
    while t < duration_s - 0.25:  # one phrase per iteration
        p0, p1 = int(t * sr), int(min(t + rng.uniform(1.2, 2.0), duration_s - 0.1) * sr)
        f0[p0:p1] = np.linspace(140, 110, max(p1 - p0, 0)) * rng.uniform(0.95, 1.05)  # declination
        f0[p1:] = f0[max(p1 - 1, 0)]  # a syllable running past the phrase end keeps its last pitch
        syllable_end = t
        while int(t * sr) < p1 - int(0.1 * sr):
            if rng.random() < 0.4:  # plosive: closure (silence) then a short noise burst
                t = max(t, syllable_end) + rng.uniform(0.03, 0.06)
                b0 = int(t * sr)
                burst = np.hanning(int(rng.uniform(0.015, 0.03) * sr))[: max(n - b0, 0)]
                burst_env[b0 : b0 + len(burst)] = burst
                t += len(burst) / sr
            s0, length = int(t * sr), int(rng.uniform(0.15, 0.25) * sr)
            seg = np.sin(np.linspace(0, np.pi, length)) ** 0.7 * rng.uniform(0.6, 1.0)
            env[s0 : s0 + length] = np.maximum(env[s0 : s0 + length], seg[: max(n - s0, 0)])
            centres.append(s0 + length // 2)
            targets.append(_VOWELS[rng.integers(len(_VOWELS))])
            syllable_end = t + length / sr
            t += length / sr * rng.uniform(0.8, 1.0)  # slight overlap: coarticulation
        t = p1 / sr + rng.uniform(0.35, 0.45)  # pause between phrases
    f0 *= 1 + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n)  # slow jitter
    # Glottal source: one impulse per pitch period, spectrally tilted, plus a little breath noise.
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    source = lfilter([1.0, -1.0], [1.0, -1.9, 0.9025], pulses) + 0.02 * rng.standard_normal(n)
    source *= env
    # Cascade of three formant resonators whose frequencies glide between syllable targets.
    idx = np.arange(n)
    formants = np.stack([np.interp(idx, centres, np.array(targets)[:, k]) for k in range(3)], 1)
    formants = np.minimum(formants, 0.45 * sr)
    out = source
    block = max(1, int(_BLOCK * sr))
    for k, bw in enumerate(_BANDWIDTHS):
        r = np.exp(-np.pi * bw / sr)
        y, zi = np.empty(n), np.zeros(2)
        for b in range(0, n, block):
            a = [1.0, -2 * r * np.cos(2 * np.pi * formants[b, k] / sr), r * r]
            y[b : b + block], zi = lfilter([sum(a)], a, out[b : b + block], zi=zi)  # unity gain at DC
        out = y
    noise = np.diff(rng.standard_normal(n + 1)) * burst_env  # high-passed noise for bursts
    out = out / (np.abs(out).max() + 1e-12) + 0.12 * noise
    out *= 0.5 / (np.abs(out).max() + 1e-12)
    return Audio(out.astype(np.float32), sample_rate)

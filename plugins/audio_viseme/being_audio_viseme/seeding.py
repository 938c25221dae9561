"""Seeds drawn from the audio itself, so different clips blink and move differently by default
while the same clip (and seed) always gives the same motion."""

from __future__ import annotations

import hashlib

import numpy as np


def audio_seed(seed: int | None, samples: np.ndarray) -> int:
    """A 64-bit seed from ``seed`` (None: none) and float32 ``samples [N]``, quantised to 16 bits
    first so the seed does not depend on float rounding of the decoder or resampler."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    digest = hashlib.blake2b(pcm.tobytes(), digest_size=8, key=repr(seed).encode())
    return int.from_bytes(digest.digest(), "little")

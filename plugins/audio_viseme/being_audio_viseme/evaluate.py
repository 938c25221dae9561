"""Reading the 16 kHz test clips; the lip-sync metrics themselves live in the kernel
(``being_kernel.metrics``), where ``being bench`` uses them too."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> np.ndarray:
    """A 16 kHz mono 16-bit wav as float32 ``[N]`` in [-1, 1)."""
    import wave

    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0

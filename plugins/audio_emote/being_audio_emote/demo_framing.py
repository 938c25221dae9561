"""The public demo's audio framing (inferno_apps/TalkingHead/evaluation/evaluation_functions.py:
``read_audio``, ``process_audio``, ``create_base_sample``), reproduced so Being's framing can be
measured against it; Being does not use it to make motion.

The demo: samples scaled by 32768 and cast to int16 (truncated toward zero; values at or beyond
full scale wrap around), cut to 22 s, cut to whole 640-sample frames (T = floor(N / 640)), then
``np.pad(frames, (0, 1))`` on the [T, 640] array pads *both* axes: one more frame, and one zero
sample after every 640. The model sees (T + 1) x 641 samples and gives T + 1 frames.
"""

from __future__ import annotations

import numpy as np

from .emote_config import SAMPLE_RATE, SAMPLES_PER_FRAME

MAX_SECONDS = 22


def demo_samples(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """float 16 kHz samples -> (the int16-valued samples the demo's processor gets, as float64;
    the frame count it gives)."""
    wav = (np.asarray(samples, np.float64) * 32768.0).astype(np.int16)[:MAX_SECONDS * SAMPLE_RATE]
    frames = len(wav) // SAMPLES_PER_FRAME
    grid = wav[:frames * SAMPLES_PER_FRAME].reshape(frames, SAMPLES_PER_FRAME)
    grid = np.pad(grid, (0, 1))  # the quirk: [T + 1, 641]
    return grid.reshape(-1).astype(np.float64), frames + 1


def demo_normalised(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """``demo_samples`` normalised as the processor does: (x - mean) / sqrt(var + 1e-7), float32."""
    x, frames = demo_samples(samples)
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32), frames

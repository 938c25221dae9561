"""The method: head pitch follows the loudness of each frame's audio window."""

import math

import numpy as np

from being_kernel.api import Audio, AudioToFlame, AudioToFlameInfo, Motion, Stream, frames_for

RATE = 16000


class Nod(AudioToFlame):
    def info(self) -> AudioToFlameInfo:
        return AudioToFlameInfo(sample_rate=RATE, fps=self.config.fps, motion_space="being-fake",
                                n_expression=0, latency_s=1.0 / self.config.fps)

    def motion(self, samples: np.ndarray, first: int, count: int) -> Motion:
        """Frames first..first+count; ``samples`` starts at frame ``first``'s window."""
        step = RATE / self.config.fps
        m = Motion.zeros(count, 0, fps=self.config.fps, space="being-fake")
        for k in range(count):
            a, b = int((first + k) * step) - int(first * step), int((first + k + 1) * step) - int(first * step)
            window = samples[a:b]
            loud = math.sqrt(float(np.mean(window ** 2))) if len(window) else 0.0
            m.global_rot[k, 0] = math.radians(self.config.nod_deg) * min(1.0, 4.0 * loud)
        return m

    def generate(self, audio: Audio) -> Motion:
        return self.motion(audio.samples, 0, audio.num_frames(self.config.fps))

    def open_stream(self) -> Stream[np.ndarray, Motion]:
        return NodStream(self)


class NodStream(Stream[np.ndarray, Motion]):
    """Keeps all samples heard so far; emits each frame once its window is complete."""

    def __init__(self, model: Nod) -> None:
        self.model, self.samples, self.done = model, np.zeros(0, np.float32), 0

    def _emit(self, upto: int) -> Motion:
        start = int(self.done * RATE / self.model.config.fps)
        out = self.model.motion(self.samples[start:], self.done, upto - self.done)
        self.done = upto
        return out

    def push(self, chunk: np.ndarray) -> Motion:
        self.samples = np.concatenate([self.samples, chunk])
        complete = int(len(self.samples) * self.model.config.fps / RATE)  # frames whose window is full
        return self._emit(max(self.done, complete))

    def finish(self) -> Motion:
        return self._emit(frames_for(len(self.samples), RATE, self.model.config.fps))


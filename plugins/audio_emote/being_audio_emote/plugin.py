"""The ``emote`` AudioToFlame plugin: 16 kHz speech -> 25 fps FLAME 2020 motion: EMOTE's
expression and jaw, SadTalker's PoseVAE head rotation and translation.

Batch and streaming run one computation (``generate`` is a stream fed the whole clip), so they
give the same motion bit for bit:

* EMOTE sees speech in windows of ``window_s`` seconds (whole frames); a clip no longer than that
  is one window, processed whole as the published demo processes a clip. Each window is
  normalised as the demo's Wav2Vec2Processor normalises a clip (the int16-scaled samples to zero
  mean, unit variance, eps 1e-7) and run once its audio is complete; the last, partial window is
  the last ``window_s`` of the clip (or the whole clip), of which the frames not yet given are kept.
* PoseVAE runs in its own 32-frame chunks (``pose.PoseStream``).

A frame comes out when both parts have it. Latency: ``window_s`` (EMOTE) or PoseVAE's 1.64 s,
whichever is longer, plus compute.
"""

from __future__ import annotations

import numpy as np
import torch

from being_kernel import ConfigError
from being_kernel.api import (FLAME_2020, Audio, AudioToFlame, AudioToFlameInfo, Motion, Stream, default_device,
                              frames_for, resolve_device)
from being_kernel.media import resample
from being_kernel.render import matrix_to_axis_angle, rotation_6d_to_matrix

from .emote_config import FPS, MEAD_TRAINING_SUBJECTS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .emote_model import EmoteModel
from .emote_weights import find_emote, find_pose_weights, load_emote
from .pose import POSE_LATENCY_FRAMES, PoseStream, head_motion
from .posevae import POSE, Audio2Pose
from .sadtalker_weights import load_audio2pose
from .spec import EMOTIONS

N_EXPRESSION = 100  # the flame2020 space; EMOTE v1's 50 components are its first 50
INT16_SCALE = 32768.0  # the demo feeds the processor int16 samples


def normalise(samples: np.ndarray) -> np.ndarray:
    """Wav2Vec2Processor's normalisation of the demo's int16-scaled clip: (x - mean) / sqrt(var + 1e-7)."""
    x = samples.astype(np.float64) * INT16_SCALE
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)


def style_index(style: str, subjects: int) -> int:
    """A MEAD subject name or an index -> the identity index, checked against the model's count."""
    if style.isdigit():
        index = int(style)
    elif style.upper() in MEAD_TRAINING_SUBJECTS:
        index = MEAD_TRAINING_SUBJECTS.index(style.upper())
    else:
        raise ConfigError(f"audio.style: {style!r} is not a MEAD training subject",
                          hint=f"one of {', '.join(MEAD_TRAINING_SUBJECTS)}, or an index 0-{subjects - 1}")
    if index >= subjects:
        raise ConfigError(f"audio.style: index {index} is past the model's {subjects} training subjects")
    return index


class EmoteAudio(AudioToFlame):
    def __init__(self, config, model: EmoteModel | None = None,  # noqa: ANN001 - EmoteConfig
                 pose_model: Audio2Pose | None = None) -> None:
        """``config``: an EmoteConfig. ``model`` / ``pose_model``: in-memory float32 models to use
        (and own) instead of the weight files, for tests and benchmarks; a ``pose_model`` is only
        looked for when ``config.pose`` is "posevae"."""
        super().__init__(config)
        self.device = resolve_device(config.device) or default_device()
        pose_path = None
        if config.pose == "posevae" and pose_model is None:
            pose_path = find_pose_weights(config.pose_weights)  # fail on a missing file before the big load
        if model is None:
            model = load_emote(find_emote(config.weights), self.device)
        self.model = model.to(self.device).eval()
        s = self.model.sizes
        self.window = round(config.window_s * FPS)  # frames
        if self.window > s.max_len:
            raise ConfigError(f"audio.window_s: {config.window_s} s is longer than the model's {s.max_len} frames")
        self.condition = self.model.condition(EMOTIONS.index(config.emotion), config.intensity,
                                              style_index(config.style, s.n_identities), 1, self.device)
        self.pose_model = None
        if config.pose == "posevae":
            self.pose_model = (pose_model or load_audio2pose(pose_path, self.device)).to(self.device).eval()

    def info(self) -> AudioToFlameInfo:
        latency = self.window / FPS
        if self.pose_model is not None:
            latency = max(latency, POSE_LATENCY_FRAMES / FPS)
        return AudioToFlameInfo(sample_rate=SAMPLE_RATE, fps=FPS, motion_space=FLAME_2020, n_expression=N_EXPRESSION,
                                latency_s=latency)

    def generate(self, audio: Audio) -> Motion:
        samples = resample(audio.samples, audio.sample_rate, SAMPLE_RATE)
        stream = self.open_stream()
        first = stream.push(samples)
        return Motion.cat([first, stream.finish(frames=audio.num_frames(FPS))])

    def open_stream(self) -> EmoteStream:
        return EmoteStream(self)

    def close(self) -> None:
        self.model = self.pose_model = self.condition = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def face(self, samples: np.ndarray, frames: int) -> torch.Tensor:
        """One window: ``640 x frames`` samples -> ``[frames, exp + jaw]``."""
        audio = torch.from_numpy(normalise(samples))[None].to(self.device)
        with torch.no_grad():
            return self.model(audio, frames, self.condition)[0]


class EmoteStream(Stream[np.ndarray, Motion]):
    """Push float32 16 kHz samples of any count; motion comes out a window at a time."""

    def __init__(self, owner: EmoteAudio) -> None:
        if owner.model is None:
            raise RuntimeError("the emote plugin was closed")
        self.owner = owner
        self.samples = np.zeros(0, np.float32)  # from the start of the last whole window on
        self.offset = 0  # frame index of samples[0]
        self.faces: list[torch.Tensor] = []  # EMOTE frames not yet given
        self.face_frames = 0  # EMOTE frames computed
        self.poses: list[torch.Tensor] = []
        self.pose = None
        if owner.pose_model is not None:
            c = owner.config
            self.pose = PoseStream(owner.pose_model, c.pose_style, c.seed, torch.zeros(POSE))
        self.heard = 0
        self.emitted = 0

    def push(self, chunk: np.ndarray) -> Motion:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.heard += len(chunk)
        self.samples = np.concatenate([self.samples, chunk])
        w = self.owner.window
        while len(self.samples) - (self.face_frames - self.offset) * SAMPLES_PER_FRAME >= w * SAMPLES_PER_FRAME:
            start = (self.face_frames - self.offset) * SAMPLES_PER_FRAME
            self.faces.append(self.owner.face(self.samples[start:start + w * SAMPLES_PER_FRAME], w))
            self.face_frames += w
        # keep one window of audio before the next one's start, for a short last window
        drop = max(0, self.face_frames - w - self.offset)
        self.samples, self.offset = self.samples[drop * SAMPLES_PER_FRAME:], self.offset + drop
        if self.pose is not None:
            self.poses.append(self.pose.push(chunk))
        return self._emit()

    def finish(self, frames: int | None = None) -> Motion:
        """Flush: the last window and the last poses. ``frames``: the total frame count to give
        (default round(seconds x 25))."""
        total = frames_for(self.heard, SAMPLE_RATE, FPS) if frames is None else frames
        rest = total - self.face_frames
        if rest > 0:  # the last window: the last `window` frames of the clip (or all), cut or zero-padded
            first = max(0, total - self.owner.window)
            need = (total - first) * SAMPLES_PER_FRAME
            start = (first - self.offset) * SAMPLES_PER_FRAME
            window = np.zeros(need, np.float32)
            part = self.samples[start:start + need]
            window[:len(part)] = part
            self.faces.append(self.owner.face(window, total - first)[-rest:])
            self.face_frames = total
        if self.pose is not None:
            self.poses.append(self.pose.finish(total))
        return self._emit(total)

    def _emit(self, cap: int | None = None) -> Motion:
        face = torch.cat(self.faces) if self.faces else torch.zeros(0, self.owner.model.sizes.prior.out_dim,
                                                                     device=self.owner.device)
        n = len(face)
        pose = None
        if self.pose is not None:
            pose = torch.cat(self.poses) if self.poses else torch.zeros(0, POSE, device=self.owner.device)
            n = min(n, len(pose))
            self.poses = [pose[n:]]
        if cap is not None:
            n = min(n, max(0, cap - self.emitted))
        self.faces = [face[n:]]
        self.emitted += n
        return self._motion(face[:n], None if pose is None else pose[:n])

    def _motion(self, face: torch.Tensor, pose: torch.Tensor | None) -> Motion:
        p = self.owner.model.sizes.prior
        m = Motion.zeros(len(face), N_EXPRESSION, fps=FPS, space=FLAME_2020, device=face.device)
        m.expression[:, :p.n_exp] = face[:, :p.n_exp]
        jaw = face[:, p.n_exp:]
        m.jaw = jaw.contiguous() if p.jaw_rep == "aa" else matrix_to_axis_angle(rotation_6d_to_matrix(jaw))
        if pose is not None:
            m.global_rot, m.translation = head_motion(pose, torch.zeros(POSE))
        return m

"""PoseVAE head motion as a stream: 16 kHz samples in, 25 fps head poses out.

As SadTalker's ``Audio2Pose.test`` and ``Audio2Coeff.generate`` compute it, with the framing
differences the plugin README lists: frame 0 is the reference pose; frames 1.. go in 32-frame
chunks, each with a fresh latent drawn from a generator seeded by ``seed`` (SadTalker draws from
torch's unseeded global generator); a last partial chunk is predicted from the last 32 frames and
keeps its tail; the absolute pose (reference + predicted change) is smoothed over time by
Savitzky-Golay (window 13, order 2; shorter clips: the longest odd window that fits).

A chunk is computed once the audio its mel windows read is final, so streaming equals batch bit
for bit: mel frames come in fixed blocks, each chunk is one fixed-shape call, the smoother is
the kernel's exact streaming one.
"""

from __future__ import annotations

import numpy as np
import torch

from being_kernel.audio import Smoother
from being_kernel.render import matrix_to_axis_angle

from .mel import MEL_BLOCK, SAMPLES_PER_FRAME, WINDOW, frame_windows, last_sample, mel_count, mel_frames, window_start
from .posevae import POSE, Audio2Pose

SMOOTH_WINDOW, SMOOTH_ORDER = 13, 2
#: frames of audio after a pose's frame before the pose is final, at most: its chunk's other 31
#: frames, the smoother's 6, and 3.8 for the mel windows (the last one reads 3.8 frames ahead)
POSE_LATENCY_FRAMES = 31 + SMOOTH_WINDOW // 2 + 4


def smoothing_window(frames: int) -> int:
    """SadTalker's window: 13, or for shorter clips the largest odd number <= frames."""
    return SMOOTH_WINDOW if frames >= SMOOTH_WINDOW else (frames - 1) // 2 * 2 + 1


class PoseStream:
    """Push samples; get absolute poses ``[n, 6]`` (pitch, yaw, roll in radians; x, y, z in
    SadTalker's decimetres) that became final. ``reference`` ``[6]``: the pose of frame 0."""

    def __init__(self, model: Audio2Pose, style: int, seed: int, reference: torch.Tensor) -> None:
        self.model = model
        self.device = model.netG.decoder.classbias.device
        self.style = torch.tensor([style], device=self.device)
        self.reference = reference.to(self.device, torch.float32).reshape(1, POSE)
        self.generator = torch.Generator().manual_seed(seed)
        self.samples = np.zeros(0, np.float32)  # every sample heard (pose audio is small: 64 kB/s)
        self.mel = np.zeros((0, 80), np.float32)  # mel frames that are final
        self.chunks = 0  # whole 32-frame chunks predicted
        self.smoother = Smoother(((slice(0, POSE), SMOOTH_WINDOW, SMOOTH_ORDER),), POSE, self.device)
        self.smoother.push(self.reference.clone())  # frame 0: the reference, no change

    @property
    def seq_len(self) -> int:
        return self.model.sizes.seq_len

    def _predict(self, windows: np.ndarray) -> torch.Tensor:
        """``[n <= 32, 80, 16]`` mel windows -> absolute poses ``[n, 6]``, with a fresh latent."""
        z = torch.randn(1, self.model.sizes.latent, generator=self.generator).to(self.device)
        mels = torch.from_numpy(windows).to(self.device)[None, :, None]
        return self.reference + self.model.chunk(mels, z, self.style, self.reference)[0]

    def push(self, chunk: np.ndarray) -> torch.Tensor:
        self.samples = np.concatenate([self.samples, np.asarray(chunk, np.float32).reshape(-1)])
        # the clip is cut or padded to 640 x round(len / 640) samples at the end: audio more than half
        # a frame before the current end is final
        final = len(self.samples) - SAMPLES_PER_FRAME // 2
        while last_sample(len(self.mel) + MEL_BLOCK - 1) <= final:
            self.mel = np.concatenate([self.mel, mel_frames(self.samples, len(self.mel), MEL_BLOCK, final)])
        frames_now = round(len(self.samples) / SAMPLES_PER_FRAME)
        out = []
        with torch.no_grad():
            while True:
                first = 1 + self.seq_len * self.chunks
                last = first + self.seq_len - 1
                if last >= frames_now or int(window_start(last)) + WINDOW - 1 >= len(self.mel):
                    break
                out.append(self.smoother.push(self._predict(frame_windows(self.mel, last + 1, first))))
                self.chunks += 1
        return torch.cat(out) if out else torch.zeros(0, POSE, device=self.device)

    def finish(self, frames: int) -> torch.Tensor:
        """End of the clip: ``frames`` in all (the clip is cut or zero-padded to 640 x frames
        samples) -> the remaining poses."""
        length = SAMPLES_PER_FRAME * frames
        known = min(len(self.mel), mel_count(length))  # final already: the same values at this length
        mel = np.concatenate([self.mel[:known], mel_frames(self.samples, known, mel_count(length) - known, length)])
        tail = []
        with torch.no_grad():
            n = frames - 1  # frames after the reference one
            while self.seq_len * (self.chunks + 1) <= n:  # whole chunks the stream could not yet know were whole
                first = 1 + self.seq_len * self.chunks
                tail.append(self._predict(frame_windows(mel, first + self.seq_len, first)))
                self.chunks += 1
            rest = n - self.seq_len * self.chunks
            if rest > 0:  # the last chunk: the last 32 frames (front-padded if fewer), keep its tail
                tail.append(self._predict(frame_windows(mel, frames, max(1, frames - self.seq_len)))[-rest:])
        raw = torch.cat(tail) if tail else torch.zeros(0, POSE, device=self.device)
        window = smoothing_window(frames)
        if window != SMOOTH_WINDOW:  # a clip shorter than the window: one smoothing of the whole clip
            whole = torch.cat([self.smoother.raw, raw])
            self.smoother = Smoother(((slice(0, POSE), window, SMOOTH_ORDER),) if window > SMOOTH_ORDER else (),
                                     POSE, self.device)
            raw = whole
        return self.smoother.finish(raw, frames)[:frames]


def euler_matrix(angles: torch.Tensor) -> torch.Tensor:
    """SadTalker's (Deep3DFaceRecon's) angles ``[..., 3]`` (about x, y, z, radians) -> the matrix
    ``Rz Ry Rx`` that rotates column vectors (face3d/models/bfm.py ``compute_rotation``, which returns
    its transpose for row vectors)."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[..., 0]), torch.zeros_like(c[..., 0])

    def mat(*rows: torch.Tensor) -> torch.Tensor:
        return torch.stack(rows, -1).reshape(*angles.shape[:-1], 3, 3)

    rx = mat(one, zero, zero, zero, c[..., 0], -s[..., 0], zero, s[..., 0], c[..., 0])
    ry = mat(c[..., 1], zero, s[..., 1], zero, one, zero, -s[..., 1], zero, c[..., 1])
    rz = mat(c[..., 2], -s[..., 2], zero, s[..., 2], c[..., 2], zero, zero, zero, one)
    return rz @ ry @ rx


DECIMETRE = 0.1  # metres: SadTalker's 3DMM is in decimetres (BFM scaled by 1e-5)


def head_motion(poses: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute SadTalker poses ``[n, 6]`` -> the kernel's ``global_rot`` (axis-angle) and
    ``translation`` (metres), each ``[n, 3]``: the motion relative to the reference pose, since the
    avatar has its own rest pose. The 3DMM's axes (x right, y up, z toward the camera) are FLAME's;
    the rotation is applied about FLAME's root joint instead of the 3DMM's origin (see the README)."""
    ref = reference.to(poses)
    relative = euler_matrix(poses[:, :3]) @ euler_matrix(ref[:3]).transpose(-1, -2)
    return matrix_to_axis_angle(relative), (poses[:, 3:] - ref[3:]) * DECIMETRE

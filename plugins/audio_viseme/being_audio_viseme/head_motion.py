"""Speech-driven head motion: a phrase-level posture, a sway that follows the voice, and nods on
stressed syllables; all settling when the speaker pauses.

Angles are radians, axis-angle on the FLAME ``global_rot`` (about the neck base) and ``neck``
(head on the neck) joints; +x pitches the head down. One ``HeadMotion`` is stepped frame by frame
in time order; each step reads only audio up to ``t + ahead_s + 0.05``, which the stream has
always heard by then, so streaming equals batch.

Sizes follow measured head motion of speakers (rotation standard deviations of a few degrees,
pitch and yaw larger than roll; nods of 2-5 degrees on stressed syllables, e.g. Busso et al.,
"Rigid head motion in expressive speech animation", IEEE TASLP 2007; Munhall et al., "Visual
prosody and speech intelligibility", Psychological Science 2004).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: How far past a frame the stress detector looks (seconds), at most (the stream's lookahead less
#: the 50 ms loudness window caps it).
AHEAD_S = 0.15
#: Posture change at each phrase onset: uniform in +- these (pitch, yaw, roll) degrees.
POSTURE_DEG = (3.0, 6.0, 2.0)
#: Time constant (s) of the move to a new posture.
POSTURE_TAU_S = 0.7
#: Sway while speaking: standard deviation in (pitch, yaw, roll) degrees at full voice energy
#: (three sinusoids per axis).
SWAY_DEG = (2.2, 3.0, 1.2)
#: A nod: pitch down by up to this many degrees, peaking NOD_PEAK_S after the stressed syllable.
NOD_DEG, NOD_PEAK_S = 4.5, 0.18
#: Stressed syllable: a local loudness maximum over +-AHEAD_S, at least this loud relative to the
#: clip's running peak, and at least NOD_GAP_S after the previous nod.
NOD_LOUDNESS, NOD_GAP_S = 0.55, 0.45
#: A pause (posture holds, nods stop, sway fades) after this long below SPEAKING loudness.
PAUSE_S, SPEAKING = 0.35, 0.25
#: Share of the rotation given to the neck joint (the rest turns the head and neck about the base).
NECK_SHARE = 0.6

_DEG = math.pi / 180.0


class HeadMotion:
    """Per-frame head rotation. ``loudness(t0, t1)`` is the RMS of the heard audio over [t0, t1)
    divided by the clip's running peak; ``rng`` draws postures and nod sizes, in frame order;
    ``lookahead_s``: audio past a frame that is heard when it is computed."""

    def __init__(self, rng: np.random.Generator, fps: float, gain: float, lookahead_s: float) -> None:
        self.rng, self.dt, self.gain = rng, 1.0 / fps, gain
        self.ahead = max(0.0, min(AHEAD_S, lookahead_s - 0.05))
        self.sway_f = rng.uniform(0.2, 0.7, size=(3, 3))  # [axis, component] Hz
        self.sway_p = rng.uniform(0.0, 2 * math.pi, size=(3, 3))
        self.posture = np.zeros(3)  # current (pitch, yaw, roll), radians
        self.target = np.zeros(3)
        self.energy = 0.0  # smoothed voice energy in [0, 1]
        self.quiet_s = PAUSE_S  # time since the voice was last above SPEAKING (start: as after a pause)
        self.nods: list[tuple[float, float]] = []  # (time, amplitude in radians)

    def step(self, t: float, loudness: Callable[[float, float], float]) -> np.ndarray:
        """Rotation at frame time ``t``: ``[2, 3]`` = (global_rot, neck) axis-angle."""
        now = loudness(t - 0.05, t + 0.05)
        if now >= SPEAKING:
            if self.quiet_s >= PAUSE_S:  # a phrase begins: turn to a new posture
                self.target = self.rng.uniform(-1.0, 1.0, 3) * np.array(POSTURE_DEG) * _DEG
            self.quiet_s = 0.0
        else:
            self.quiet_s += self.dt
        self._maybe_nod(t, now, loudness)
        self.posture += (self.target - self.posture) * (1.0 - math.exp(-self.dt / POSTURE_TAU_S))
        env = min(1.0, loudness(t - 0.5, t + self.ahead + 0.05))
        self.energy += 0.1 * (env - self.energy)
        # three unit sinusoids per axis: standard deviation sqrt(1.5), scaled to SWAY_DEG
        sway = np.sin(2 * math.pi * self.sway_f * t + self.sway_p).sum(1) / math.sqrt(1.5) * np.array(SWAY_DEG) * _DEG
        angles = self.posture + (0.2 + 0.8 * self.energy) * sway
        angles[0] += sum(a * _nod_shape(t - t0) for t0, a in self.nods)
        angles *= self.gain
        return np.stack([(1.0 - NECK_SHARE) * angles, NECK_SHARE * angles])  # rows: global_rot, neck

    def _maybe_nod(self, t: float, now: float, loudness: Callable[[float, float], float]) -> None:
        self.nods = [(t0, a) for t0, a in self.nods if t - t0 < 8 * NOD_PEAK_S]
        if now < NOD_LOUDNESS or (self.nods and t - self.nods[-1][0] < NOD_GAP_S):
            return
        steps = np.arange(-AHEAD_S, self.ahead + 1e-9, 0.025)
        around = [loudness(t + d - 0.05, t + d + 0.05) for d in steps]
        if now >= max(around) - 1e-9:  # the loudest moment of its neighbourhood: a stressed syllable
            self.nods.append((t, NOD_DEG * _DEG * min(1.0, now) * float(self.rng.uniform(0.6, 1.0))))


def _nod_shape(tau: float) -> float:
    """Unit nod at ``tau`` seconds after its syllable: rises to 1 at NOD_PEAK_S, settles by ~1 s."""
    if tau <= 0.0:
        return 0.0
    u = tau / NOD_PEAK_S
    return u * math.exp(1.0 - u)

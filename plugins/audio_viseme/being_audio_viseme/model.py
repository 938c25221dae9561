"""The method: phones -> visemes -> coarticulated jaw/lip motion, with blinks (blinks.py), brows and
head motion (head_motion.py).

Batch and streaming run the same computation: audio is decoded in fixed 40 ms blocks and motion
frame k (time k / fps) is computed right after the first block that brings the heard audio to
k / fps + lookahead_s, from the phones known at that moment. ``generate`` is a stream fed the
whole clip, so streaming equals batch exactly, whatever the chunking.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from being_kernel import ConfigError
from being_kernel.api import Audio, AudioToFlame, AudioToFlameInfo, Motion, Stream

from .blinks import Blinks
from .head_motion import HeadMotion
from . import parallel
from .parallel import default_workers
from .phones import RATE, VISEMES, PhoneDecoder, PhoneHistory
from .seeding import audio_seed
from .visemes import DOMINANCE, HeadTable, demo_table

_DOM = np.array([DOMINANCE[v] for v in VISEMES], np.float32)
_PBM = VISEMES.index("PBM")
_SIL = VISEMES.index("SIL")
CLOSE_LEAD_S = 0.035
#: Below this RMS (-45 dBFS) audio is no voice for the head motion.
VOICE_FLOOR = 10 ** (-45 / 20)


#: Audio kept behind the frame being made: the longest look back (the blink seed's 1 s window, the
#: head motion's 0.5 s envelope) with room to spare. Older audio is dropped, so a live stream of any
#: length holds bounded memory.
KEEP_S = 2.0
#: The audio buffer is trimmed once this much more than KEEP_S has piled up (amortised copying).
TRIM_S = 8.0


def _rms(w: np.ndarray) -> float:
    return math.sqrt(float(np.mean(w.astype(np.float64) ** 2))) if len(w) else 0.0


class VisemeModel(AudioToFlame):
    def __init__(self, config) -> None:  # noqa: ANN001
        super().__init__(config)
        text = config.text
        if text is None and config.text_file is not None:
            path = Path(config.text_file).expanduser()
            if not path.is_file():
                raise ConfigError(f"audio.text_file: no such file: {path}", hint="give the path of a .txt transcript")
            text = path.read_text(encoding="utf-8", errors="replace")
        self.text = text
        if config.head_model:
            from .table_solve import table_for_model

            self.table: HeadTable = table_for_model(config.head_model)
        else:
            self.table = demo_table()
        # without a transcript a batch call spreads its utterances over worker processes (parallel.py)
        self.workers = config.workers or default_workers()
        self._pooled = self.text is None and self.workers > 1
        if self._pooled:
            parallel.acquire(config.words, self.workers)

    def close(self) -> None:
        if self._pooled:
            self._pooled = False
            parallel.release(self.config.words, self.workers)
        super().close()

    def info(self) -> AudioToFlameInfo:
        return AudioToFlameInfo(sample_rate=RATE, fps=self.config.fps, motion_space=self.table.motion_space,
                                n_expression=self.table.n_expression, latency_s=self.config.lookahead_s)

    def generate(self, audio: Audio) -> Motion:
        if audio.sample_rate != RATE:
            raise ValueError(f"viseme model wants {RATE} Hz audio, got {audio.sample_rate}")
        decoded = None
        if self._pooled:
            decoded = parallel.decode(audio.samples, self.config.words, self.workers)
        stream = VisemeStream(self, decoded)
        parts = [stream.push(audio.samples), stream.finish()]
        return Motion.cat(parts)

    def open_stream(self) -> VisemeStream:
        return VisemeStream(self)


class VisemeStream(Stream[np.ndarray, Motion]):
    """The motion of a stream; ``decoded``: the phones of the whole audio to be pushed, decoded
    beforehand (``parallel.decode``), else a decoder decodes what is pushed."""

    def __init__(self, model: VisemeModel, decoded: PhoneHistory | None = None) -> None:
        self.model, self.cfg, self.table = model, model.config, model.table
        self.decoder = decoded if decoded is not None else PhoneDecoder(model.text, words=model.config.words)
        self.samples = np.zeros(0, np.float32)  # the audio heard from sample ``offset`` on
        self.offset = 0
        self.heard = 0  # samples pushed in all
        self.done = 0  # frames emitted
        self.peak = 0.02
        self.brow = 0.0
        # seeded from the first lookahead_s of audio (heard before frame 0 is made): see _start
        self.head: HeadMotion | None = None
        self.blinks: Blinks | None = None

    # -- chunk handling ------------------------------------------------------------------------
    def push(self, chunk: np.ndarray) -> Motion:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._trim()
        self.samples = np.concatenate([self.samples, chunk])
        self.heard += len(chunk)
        blocks = self.decoder.feed_blocks(chunk)
        fps, look = self.cfg.fps, self.cfg.lookahead_s
        parts = []
        for _ in range(blocks):
            self.decoder.step()
            heard = self.decoder.fed / RATE
            upto = min(math.floor((heard - look) * fps + 1e-9) + 1, round(heard * fps))
            if upto > self.done:
                parts.append(self._frames(upto))
        return Motion.cat(parts) if parts else self._empty()

    def finish(self) -> Motion:
        self.decoder.end()
        total = round(self.heard * self.cfg.fps / RATE)
        return self._frames(total) if total > self.done else self._empty()

    def _empty(self) -> Motion:
        return Motion.zeros(0, self.table.n_expression, fps=self.cfg.fps, space=self.table.motion_space)

    # -- the animation -------------------------------------------------------------------------
    def _start(self) -> None:
        """Seed blinks and head motion from ``seed`` and the clip's first ``lookahead_s`` of audio."""
        cfg = self.cfg
        seed = audio_seed(cfg.seed, self.samples[: round(cfg.lookahead_s * RATE)])
        self.head = HeadMotion(np.random.default_rng(seed), cfg.fps, cfg.head_motion, cfg.lookahead_s)
        self.blinks = Blinks(seed, cfg.blink_rate_hz)

    def _trim(self) -> None:
        """Drop audio older than KEEP_S before the next frame to make, once TRIM_S more has piled up."""
        keep_from = int((self.done / self.cfg.fps - KEEP_S) * RATE)
        if self.head is not None and keep_from - self.offset > TRIM_S * RATE:
            self.samples = self.samples[keep_from - self.offset:].copy()
            self.offset = keep_from

    def _window(self, t0: float, t1: float) -> np.ndarray:
        """The audio heard over [t0, t1) seconds (absolute times; never older than KEEP_S back)."""
        a, b = max(0, int(t0 * RATE)), max(0, int(t1 * RATE))
        if a < self.offset:
            raise AssertionError(f"viseme: audio at {t0:.2f} s was dropped (kept from {self.offset / RATE:.2f} s)")
        return self.samples[a - self.offset : max(0, b - self.offset)]

    def _loudness(self, t0: float, t1: float) -> float:
        """RMS over [t0, t1) relative to the running peak; 0 below VOICE_FLOOR (room noise before
        the first word would otherwise be the peak and read as loud)."""
        rms = _rms(self._window(t0, t1))
        return rms / self.peak if rms >= VOICE_FLOOR else 0.0

    def _frames(self, upto: int) -> Motion:
        cfg, tab = self.cfg, self.table
        if self.head is None:
            self._start()
        phones = self.decoder.phones(since=self.done / cfg.fps - 0.5)
        n = upto - self.done
        m = Motion.zeros(n, tab.n_expression, fps=cfg.fps, space=tab.motion_space)
        if phones:
            st = np.array([p.start for p in phones]); en = np.array([p.end for p in phones])
            vi = np.array([VISEMES.index(p.viseme) for p in phones])
        else:
            st = en = np.zeros(0); vi = np.zeros(0, int)
        jaw = np.zeros(n); expr = np.zeros((n, tab.n_expression)); lids = np.zeros(n)
        brow = np.zeros(n); rot = np.zeros((n, 2, 3))
        for i in range(n):
            t = (self.done + i) / cfg.fps
            j, e = self._mouth(t, st, en, vi)
            jaw[i], expr[i] = j, e
            lids[i] = self.blinks.value(t, self._window)
            brow[i] = self._brow(t)
            rot[i] = self.head.step(t, self._loudness)
        if tab.brow is not None:
            expr[:, tab.brow[0]] += brow
            expr[:, tab.brow[1]] += brow
        if cfg.blink_via == "expression" and tab.blink is not None:
            expr[:, tab.blink[0]] = np.maximum(expr[:, tab.blink[0]], lids)
            expr[:, tab.blink[1]] = np.maximum(expr[:, tab.blink[1]], lids)
        else:
            m.eyelids[:] = torch.from_numpy(np.stack([lids, lids], 1)).float()
        m.jaw[:, 0] = torch.from_numpy(jaw).float()
        m.expression[:] = torch.from_numpy(expr).float()
        m.global_rot[:] = torch.from_numpy(rot[:, 0]).float()
        m.neck[:] = torch.from_numpy(rot[:, 1]).float()
        self.done = upto
        return m

    def _mouth(self, t: float, st: np.ndarray, en: np.ndarray, vi: np.ndarray) -> tuple[float, np.ndarray]:
        tab, cfg = self.table, self.cfg
        near = (en > t - 0.4) & (st < t + 0.4)
        s, e, v = st[near], en[near], vi[near]
        c, d = (s + e) / 2, e - s
        delta = t - c
        # dominance: flat over the segment's core, Gaussian tails; the anticipatory (left) tail is
        # wider than the carry-over one, so the mouth moves toward the next sound early
        r = np.maximum(0.0, np.abs(delta) - 0.4 * d)
        w = np.where(delta < 0, 0.07, 0.045)
        dom = _DOM[v] * np.exp(-((r / w) ** 2))
        rest = 0.02
        total = dom.sum() + rest
        jaw_v = float((dom * tab.jaw[v]).sum() + rest * tab.jaw[_SIL]) / total
        expr = ((dom[:, None] * tab.expr[v]).sum(0) + rest * tab.expr[_SIL]) / total
        # loudness: the jaw opens with the voice (peak-normalized RMS around t)
        rms = _rms(self._window(t - 0.03, t + 0.03))
        self.peak = max(0.01, rms, self.peak * math.exp(-1.0 / (cfg.fps * 4.0)))
        loud = min(1.2, 1.4 * rms / self.peak)
        lj = cfg.loudness_jaw
        jaw = cfg.jaw_gain * jaw_v * (1.0 - lj + lj * loud)
        # silence gate: below -55 dBFS the mouth relaxes to rest
        gate = min(1.0, max(0.0, (20 * math.log10(_rms(self._window(t - 0.06, t + 0.06)) + 1e-9) + 60) / 8))
        jaw = gate * jaw + (1 - gate) * float(tab.jaw[_SIL])
        expr = gate * expr + (1 - gate) * tab.expr[_SIL]
        # bilabial closure: p, b, m close the lips fully over their core (>= +-25 ms around the centre)
        # (the hold starts CLOSE_LEAD_S before the acoustic segment: the lips close ahead of the
        # sound, and video leading audio by a few tens of ms is the less visible error)
        k = 0.0
        for si, ei in zip(s[v == _PBM], e[v == _PBM]):
            ci = 0.5 * (si + ei)
            lo, hi = min(ci - 0.025, si - CLOSE_LEAD_S), max(ci + 0.025, ei - 0.005)
            a = lo - t if t < lo else (t - hi if t > hi else 0.0)
            k = max(k, 0.5 * (1 + math.cos(math.pi * a / 0.05)) if a < 0.05 else 0.0)
        if k > 0:
            jaw = (1 - k) * jaw + k * float(tab.jaw[_PBM])
            expr = (1 - k) * expr + k * tab.expr[_PBM]
        return jaw, expr

    def _brow(self, t: float) -> float:
        """Brow raise on loud (stressed) syllables."""
        local = _rms(self._window(t - 0.08, t + 0.08)) / self.peak
        target = 0.35 * self.cfg.brow_gain * min(1.0, max(0.0, (local - 0.75) / 0.2))
        self.brow = 0.6 * self.brow + 0.4 * target
        return self.brow

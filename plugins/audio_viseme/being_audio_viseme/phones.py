"""Phones from audio with pocketsphinx: free phone-loop recognition or forced alignment.

Both modes decode incrementally (``process_raw`` without ``full_utt``) in fixed 40 ms blocks, so
the result depends only on the audio, never on how it was split into chunks by a caller.

In align mode the recognizer runs beside the aligner on the same blocks; when the transcript turns
out not to match the audio (``alignment.judge``, checked on a fixed schedule of blocks) the decoder
switches to the recognizer's phones for good, with one warning.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from being_kernel import PluginError

from . import alignment

log = logging.getLogger(__name__)

RATE = 16000
BLOCK = 640  # samples: pocketsphinx is fed fixed 40 ms blocks
FRAME_S = 0.01  # pocketsphinx frame shift
#: pocketsphinx reports a frame by its start; its analysis window (25.6 ms) is centred later.
PHONE_OFFSET_S = 0.015

#: CMU / ARPAbet phone -> viseme class.
PHONE_TO_VISEME: dict[str, str] = {
    "P": "PBM", "B": "PBM", "M": "PBM",
    "F": "FV", "V": "FV",
    "TH": "TH", "DH": "TH",
    "T": "DTNL", "D": "DTNL", "N": "DTNL", "L": "DTNL",
    "K": "KG", "G": "KG", "NG": "KG", "HH": "KG", "Y": "IY",
    "S": "SZ", "Z": "SZ",
    "SH": "SH", "ZH": "SH", "CH": "SH", "JH": "SH",
    "R": "R",
    "W": "WOO", "UW": "WOO", "UH": "WOO",
    "AA": "AA", "AH": "AA", "AY": "AA", "AW": "AA",
    "AE": "EH", "EH": "EH", "EY": "EH",
    "IY": "IY", "IH": "IY",
    "AO": "AO", "OW": "AO", "OY": "AO",
    "ER": "ER",
}
VISEMES = ("SIL", "PBM", "FV", "TH", "DTNL", "KG", "SZ", "SH", "R", "WOO", "AA", "EH", "IY", "AO", "ER")


def viseme_of(phone: str) -> str:
    """Viseme class of a pocketsphinx phone; silence and fillers (+NSN+, <sil>, ...) are SIL."""
    return PHONE_TO_VISEME.get(phone.upper().removeprefix("PH_"), "SIL")


@dataclass(frozen=True)
class Phone:
    phone: str
    start: float  # seconds
    end: float

    @property
    def viseme(self) -> str:
        return viseme_of(self.phone)


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise PluginError("the viseme audio model needs pocketsphinx (>=5), which is not installed",
                          hint="pip install 'pocketsphinx>=5'") from e
    return pocketsphinx


#: Manner classes, for aligning a recognised word's dictionary phones with the recognised phones.
_MANNER: dict[str, str] = {
    **{p: "nasal" for p in ("M", "N", "NG")},
    **{p: "stop" for p in ("P", "B", "T", "D", "K", "G")},
    **{p: "fricative" for p in ("F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH", "CH", "JH")},
    **{p: "approximant" for p in ("L", "R", "W", "Y")},
}
_BILABIAL = frozenset(("P", "B", "M"))
#: Length given to a dictionary bilabial that the phone recogniser left out entirely.
INSERTED_S = 0.04


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    ma, mb = _MANNER.get(a, "vowel"), _MANNER.get(b, "vowel")
    return 0.4 if ma == mb else (0.8 if "vowel" not in (ma, mb) else 1.0)


def _align(want: list[str], got: list[str]) -> list[int | None]:
    """For each phone of ``want`` the index of the ``got`` phone it aligns to (None: left out), by
    an edit distance whose substitutions are cheap within a manner class (m for n, b for d)."""
    n, k = len(want), len(got)
    cost = np.zeros((n + 1, k + 1))
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(k + 1)
    for i in range(1, n + 1):
        for j in range(1, k + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + _sub_cost(want[i - 1], got[j - 1]),
                             cost[i - 1, j] + 1.0, cost[i, j - 1] + 1.0)
    out: list[int | None] = [None] * n
    i, j = n, k
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + _sub_cost(want[i - 1], got[j - 1]):
            out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1.0:
            i -= 1
        else:
            j -= 1
    return out


def place_bilabials(phones: list[Phone], words: list[tuple[str, float, float]], lookup) -> list[Phone]:  # noqa: ANN001
    """Phones with the bilabials of the recognised ``words`` put back where phone recognition heard
    another place of articulation.

    ``words``: (word, start, end) from word recognition; ``lookup(word)`` its dictionary phones
    ("M EY B IY") or None. Within each word holding a p, b or m, its dictionary phones are aligned
    with the recognised phones whose middles fall in the word (``_align``); a dictionary bilabial
    aligned to a recognised consonant relabels it (its times kept: phone recognition times a
    segment well, its place is what it confuses); one aligned to a vowel, or to nothing, is put in
    as a short bilabial (INSERTED_S) where it falls between the recognised phones. Bilabials that
    phone recognition heard itself are left as they are; phones outside the words too."""
    out = list(phones)
    mids = np.array([0.5 * (p.start + p.end) for p in phones]) if phones else np.zeros(0)
    added: list[Phone] = []
    for word, ws, we in words:
        pron = lookup(word)
        if not pron:
            continue
        want = pron.split()
        if not _BILABIAL.intersection(want):
            continue
        idx = [int(i) for i in np.flatnonzero((mids >= ws) & (mids < we))]
        got = [phones[i].phone.upper() for i in idx]
        match = _align(want, got)
        for w, (ph, m) in enumerate(zip(want, match)):
            if ph not in _BILABIAL or (m is not None and got[m] in _BILABIAL):
                continue
            if m is not None and _MANNER.get(got[m], "vowel") != "vowel":
                r = phones[idx[m]]
                out[idx[m]] = Phone(ph, r.start, r.end)
                continue
            # the boundary after the last dictionary phone before it that has a recognised partner
            prev = [match[q] for q in range(w) if match[q] is not None]
            if m is not None:
                at = phones[idx[m]].start
            elif prev:
                at = phones[idx[prev[-1]]].end
            else:
                at = ws
            at = min(max(at, ws), we)
            added.append(Phone(ph, at - INSERTED_S / 2, at + INSERTED_S / 2))
    if added:
        out = sorted(out + added, key=lambda p: (p.start, p.end))
    return out


def words_of(text: str) -> list[str]:
    """Lower-case words of a transcript, punctuation dropped (apostrophes kept)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def pcm16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] -> the 16-bit PCM pocketsphinx decodes (element by element, so any
    chunking of the audio gives the same PCM)."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


class UtteranceCuts:
    """Where recognition ends one utterance and begins the next: in a pause (after its
    PAUSE_BLOCKS-th block) once the utterance is UTTERANCE_S long, and anyway at UTTERANCE_MAX_S. Fed the 40 ms blocks in
    order (``block``); it depends only on the audio, so a stream and a batch call cut at the same
    blocks, and the batch call can find every cut before decoding (``utterance_starts``).

    A pause is PAUSE_BLOCKS blocks in a row below PAUSE_DB dBFS or less than FLOOR_MARGIN_DB above
    the noise floor (the quietest block heard, rising FLOOR_RISE_DB a block, 0.6 dB a second, so a
    room that gets louder is followed, slowly enough that long speech does not become the floor):
    a recording's room noise (LibriVox sits at -55 to -42 dBFS between sentences) is a
    pause; a stop's closure (under 100 ms) is not."""

    UTTERANCE_S = 2.0
    UTTERANCE_MAX_S = 60.0
    PAUSE_BLOCKS = 4
    PAUSE_DB = -45.0
    FLOOR_MARGIN_DB = 10.0
    FLOOR_RISE_DB = 0.025
    FLOOR_MIN_DB = -70.0

    def __init__(self) -> None:
        self.floor: float | None = None
        self.quiet = 0  # blocks in a row that were quiet
        self.length = 0  # samples in the current utterance

    def block(self, block: np.ndarray) -> bool:
        """True if the utterance ends after this block (``block``: 16-bit PCM; a short last block
        never cuts)."""
        self.length += len(block)
        if len(block) < BLOCK:
            return False
        rms = math.sqrt(float(np.mean(block.astype(np.float64) ** 2)))
        level = 20 * math.log10(max(rms, 1e-3) / 32768)
        self.floor = max(self.FLOOR_MIN_DB, level if self.floor is None else min(level, self.floor + self.FLOOR_RISE_DB))
        quiet = level < max(self.PAUSE_DB, self.floor + self.FLOOR_MARGIN_DB)
        self.quiet = self.quiet + 1 if quiet else 0
        seconds = self.length / RATE
        if (seconds >= self.UTTERANCE_S and self.quiet >= self.PAUSE_BLOCKS) or seconds >= self.UTTERANCE_MAX_S:
            self.length = 0
            return True
        return False


def utterance_starts(pcm: np.ndarray) -> list[int]:
    """The first sample of every utterance a stream of ``pcm`` (16-bit) is decoded in: [0, ...]."""
    cuts, starts = UtteranceCuts(), [0]
    for at in range(0, len(pcm) - BLOCK + 1, BLOCK):
        if cuts.block(pcm[at:at + BLOCK]):
            starts.append(at + BLOCK)
    if starts[-1] == len(pcm) and len(starts) > 1:  # a cut after the last block begins no utterance
        starts.pop()
    return starts


class PhoneHistory:
    """What the motion reads while audio is decoded: ``fed`` (samples decoded), ``phones(since)``,
    and the 40 ms block loop (``feed_blocks`` queues samples and says how many whole blocks wait,
    ``step`` decodes one, ``end`` the rest). Subclasses give ``_read()``, the open utterance's
    phones; ``_done`` holds the ended utterances' phones, ``_final`` all phones after ``end``."""

    fed: int
    _done: list[Phone]
    _final: list[Phone] | None

    def phones(self, since: float = 0.0) -> list[Phone]:
        """The phones decoded so far (final after ``end()``) that end after ``since`` seconds."""
        if self._final is not None:
            return [p for p in self._final if p.end > since] if since > 0 else self._final
        recent = []
        for p in reversed(self._done):  # the ended utterances' phones, newest first
            if p.end <= since:
                break
            recent.append(p)
        return recent[::-1] + self._read()

    def _read(self) -> list[Phone]:
        raise NotImplementedError

    def _finish(self, last: list[Phone]) -> None:
        """All phones, once the last utterance's final ``last`` are known; silence if none."""
        self._final = self._done + last
        if not self._final and self.fed:
            self._final = [Phone("SIL", 0.0, self.fed / RATE)]


class PhoneDecoder(PhoneHistory):
    """Incremental pocketsphinx decoding. ``feed`` float32 samples, read ``phones()`` any time.

    With a transcript, ``mode`` is "align" until the transcript is found not to match the audio;
    it is then "allphone" for good, ``fell_back`` is True and ``fell_back_at`` says after how many
    seconds of audio. ``alignment_score`` is the latest score (``alignment``; final after
    ``end()``), None without a transcript.

    Recognition ends its utterance and begins a new one where ``UtteranceCuts`` says (``cut``), so
    a live stream of any length decodes in bounded time and memory per block. Each utterance
    begins with a fresh front end (noise and cepstral-mean estimates), so it decodes exactly as it
    would alone: ``parallel.py`` decodes the utterances of a clip in other processes."""

    BLOCK = BLOCK

    def __init__(self, text: str | None = None, *, threshold: float = alignment.THRESHOLD,
                 words: bool = True, cut: bool = True) -> None:
        ps = _pocketsphinx()
        model = ps.get_model_path()
        self.mode = "allphone"
        self.threshold = threshold
        #: nats per speech frame, aligned minus recognized (``alignment``); None without a transcript
        self.alignment_score: float | None = None
        self.fell_back = False  # the transcript was dropped for recognition
        self.fell_back_at: float | None = None  # seconds of audio decoded when it was
        self._speech_s = 0.0  # speech heard (recognizer) at the last check
        kw = dict(loglevel="FATAL")
        allphone = dict(allphone=os.path.join(model, "en-us", "en-us-phone.lm.bin"),
                        lw=2.0, pip=0.3, beam=1e-20, pbeam=1e-20, bestpath=False, **kw)
        phones: list[str] = []
        if text:
            # every senone scored in both searches (aligner and recognizer): their path scores are
            # then comparable (alignment.py); it changes no phone
            probe = ps.Decoder(compallsen=True, **kw)
            for word in words_of(text):
                pron = probe.lookup_word(word)
                if pron is None:
                    log.warning("viseme: '%s' is not in the pocketsphinx dictionary; skipped", word)
                    continue
                phones.extend(pron.split())
        self.aligner = self.recognizer = self.words = None
        if phones:
            self.mode = "align"
            self.aligner = probe
            # each phone is a one-phone pseudo-word: word-level alignment is then phone-level and
            # (unlike the two-pass sub-word alignment) gives partial results while streaming
            for ph in sorted(set(phones)):
                self.aligner.add_word("ph_" + ph.lower(), ph, False)
            self.aligner.set_align_text(" ".join("ph_" + p.lower() for p in phones))
            self.recognizer = ps.Decoder(compallsen=True, **allphone)
            self.decoder = self.aligner
            self._running = [self.aligner, self.recognizer]
        else:
            self.decoder = ps.Decoder(**allphone)
            self._running = [self.decoder]
            if words:
                # word recognition (pocketsphinx's en-us language model and dictionary) beside the
                # phone loop: its words' dictionary phones fix the place of consonants the phone loop
                # confuses (m heard as n, b as d), see place_bilabials
                self.words = ps.Decoder(**kw)
                self._running.append(self.words)
        for d in self._running:
            d.start_utt()
        self.pending = np.zeros(0, np.int16)
        self.fed = 0  # samples given to the decoder
        self.blocks = 0  # 40 ms blocks decoded
        self.ended = False
        self._final: list[Phone] | None = None
        self._done: list[Phone] = []  # phones of the utterances already ended (recognition restarts)
        self._utt_start = 0  # samples fed when the current utterance began
        self.cuts = UtteranceCuts() if cut else None
        self._prons: dict[str, str | None] = {}

    def feed_blocks(self, samples: np.ndarray) -> int:
        """Queue samples; decode every complete 40 ms block. Returns the number of blocks decoded
        (the caller reads ``phones()`` after each via ``step``)."""
        self.pending = np.concatenate([self.pending, pcm16(samples)])
        return len(self.pending) // self.BLOCK

    def step(self) -> None:
        """Decode the next queued block."""
        block, self.pending = self.pending[: self.BLOCK], self.pending[self.BLOCK:]
        self._process(block)

    def _process(self, block: np.ndarray) -> None:
        if len(block):
            for d in self._running:
                try:
                    d.process_raw(block.tobytes(), False, False)
                except RuntimeError:  # pragma: no cover - pocketsphinx refuses odd input
                    log.warning("viseme: pocketsphinx could not decode a block")
            self.fed += len(block)
            self.blocks += 1
            # the cuts follow the audio from its start in every mode, but only recognition is cut
            # (an alignment spans the transcript): after a fallback the recognizer is then cut
            # where a decoder without a transcript is
            due = self.cuts is not None and self.cuts.block(block)
            if self.mode == "align" and self.blocks % alignment.CHECK_EVERY == 0:
                self._check(final=False)
            elif self.mode == "allphone" and due:
                self._restart()

    def _restart(self) -> None:
        """End the recognizer's utterance; begin the next one as a fresh decoder would."""
        self.end_utterance()
        self._done.extend(self._read())
        self.begin(self.fed)

    def begin(self, at: int) -> None:
        """Begin an utterance at sample ``at`` of the audio, with a fresh front end (a decoder
        reused this way decodes exactly as a new one: tested)."""
        for d in self._running:
            d.reinit_feat()
            d.start_utt()
        self._utt_start = self.fed = at

    def _check(self, final: bool) -> None:
        """Judge the alignment over the audio decoded so far; fall back on a mismatch."""
        v = alignment.judge(alignment.path_of(self.aligner), alignment.path_of(self.recognizer),
                            final=final, threshold=self.threshold)
        self._speech_s = v.speech_s
        if v.score is not None:
            self.alignment_score = v.score
        if v.mismatch:
            self._fall_back(v.mismatch)

    def _fall_back(self, why: str) -> None:
        log.warning("viseme: the transcript does not match the audio (%s); using phone recognition instead", why)
        self.mode, self.fell_back, self.fell_back_at = "allphone", True, self.fed / RATE
        self.decoder = self.recognizer
        if not self.ended:
            self._running = [self.recognizer]  # the aligner is of no more use
            try:
                self.aligner.end_utt()
            except RuntimeError:  # pragma: no cover
                pass

    def end(self) -> None:
        """Decode what is left and close the utterance; ``phones()`` is then final."""
        self._process(self.pending)
        self.pending = self.pending[:0]
        if self.mode == "align":
            self._check(final=True)
        self.end_utterance()
        self.ended = True
        last = self._read()
        if self.mode == "align" and not last and self.fed:
            # the transcript cannot be aligned to the end of the audio: it does not match
            self._fall_back("no alignment reaches the end of the transcript")
            last = self._read()
        score = "none" if self.alignment_score is None else f"{self.alignment_score:.2f} per frame"
        if self.fell_back:
            log.info("viseme: phones from recognition (the transcript was dropped at %.1f s, alignment score %s)",
                     self.fell_back_at, score)
        elif self.mode == "align" and self._speech_s < alignment.MIN_SPEECH_END_S:
            log.info("viseme: transcript aligned, score %s, not judged (%.1f s of speech)", score, self._speech_s)
        elif self.mode == "align":
            log.info("viseme: transcript aligned, score %s (threshold %.2f)", score, self.threshold)
        self._finish(last)

    def decode_alone(self, pcm: np.ndarray, start: int) -> tuple[list[list[Phone]], list[Phone]]:
        """Decode one utterance, 16-bit ``pcm`` beginning at sample ``start`` of the audio, as a
        stream of the whole audio decodes it: the open utterance's phones after each whole 40 ms
        block (what ``_read`` gives then), and its final phones. For a decoder made with
        ``cut=False`` and no transcript whose utterance has ended; it is ended again after."""
        if self.cuts is not None or self.mode != "allphone":
            raise ValueError("decode_alone needs a decoder without cuts or transcript")
        self.begin(start)
        partials = []
        for at in range(0, len(pcm) - BLOCK + 1, BLOCK):
            self._process(pcm[at:at + BLOCK])
            partials.append(self._read())
        self._process(pcm[len(partials) * BLOCK:])  # the clip's short last block, if any
        self.end_utterance()
        return partials, self._read()

    def end_utterance(self) -> None:
        for d in self._running:
            try:
                d.end_utt()
            except RuntimeError:  # pragma: no cover
                pass

    def _read(self) -> list[Phone]:
        out = []
        try:
            segs = list(self.decoder.seg() or [])
        except (RuntimeError, TypeError):  # no hypothesis (yet)
            segs = []
        for s in segs:
            word = s.word
            if word in ("<s>", "</s>") and s.end_frame <= s.start_frame:
                continue
            start = s.start_frame * FRAME_S + PHONE_OFFSET_S + self._utt_start / RATE
            end = (s.end_frame + 1) * FRAME_S + PHONE_OFFSET_S + self._utt_start / RATE
            name = word.removeprefix("ph_").upper() if word.startswith("ph_") else word
            out.append(Phone(name, start, end))
        if self.words is not None and self.mode == "allphone" and out:
            out = place_bilabials(out, self._words(), self._lookup)
        return out

    def _words(self) -> list[tuple[str, float, float]]:
        """The word recogniser's (partial) words: (word, start, end) in seconds; no silences or fillers."""
        try:
            segs = list(self.words.seg() or [])
        except (RuntimeError, TypeError):  # no hypothesis (yet)
            return []
        base = self._utt_start / RATE + PHONE_OFFSET_S
        return [(s.word, s.start_frame * FRAME_S + base, (s.end_frame + 1) * FRAME_S + base) for s in segs
                if s.word not in ("<s>", "</s>", "<sil>") and not s.word.startswith(("+", "["))]

    def _lookup(self, word: str) -> str | None:
        pron = self._prons.get(word)
        if pron is None and word not in self._prons:
            pron = self.words.lookup_word(word)
            self._prons[word] = pron
        return pron

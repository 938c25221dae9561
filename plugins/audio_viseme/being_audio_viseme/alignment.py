"""Does a transcript match the audio? Forced alignment scored against free phone recognition.

In align mode ``PhoneDecoder`` also runs the phone-loop recognizer on the same 40 ms blocks. Both
pocketsphinx searches score the same acoustic model on the same features, with every senone
computed (``compallsen``) so that both are normalised by the same best senone per frame; the
difference of their acoustic path scores is then a log-likelihood ratio:

    score = (aligned acoustic log-likelihood - recognized acoustic log-likelihood) / speech frames

in nats per 10 ms frame, over the audio decoded so far, divided by the frames the recognizer does
not call silence (or noise), so that pauses neither dilute a mismatch nor flatter a match. The
free loop may put any phone anywhere, so it scores at least as well as any transcript: a matching
transcript scores about 2-3 nats per frame below it, a wrong one about 6-9 (measured in the
plugin README). ``compallsen`` changes no phone (none on the test clips, partial or final): the
Viterbi paths and the beams are invariant to a per-frame constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Below this score (nats per speech frame) the transcript is taken not to match. Tuned on the
#: festival slt_* clips and their single sentences: transcripts to accept (right, case and
#: punctuation changed, a word missing or wrong) scored -4.7 at worst, wrong ones (another clip's,
#: half the words replaced, an unrelated sentence) -6.05 at best. The threshold sits nearer the
#: accepted side: accepting a wrong transcript (nonsense lip motion) costs more than dropping a
#: right one (recognized phones: fewer closed bilabials).
THRESHOLD = -5.2
#: The score is judged once this much speech (seconds the recognizer does not call silence) has
#: been heard, or at the end of a shorter clip (if it has at least MIN_SPEECH_END_S).
MIN_SPEECH_S = 1.2
MIN_SPEECH_END_S = 0.5
#: The alignment's last phone lagging the recognizer's by this much means it has stalled.
MAX_LAG_S = 1.0
#: Judge every this many 40 ms blocks (reading both hypotheses costs time on long clips).
CHECK_EVERY = 5

_SILENT = ("<s>", "</s>", "<sil>", "SIL")


def _nats(x: float) -> float:
    """A pocketsphinx acoustic score, as the Python bindings give it (``1.0001 ** score``), in nats:
    its unit is log base 1.0001 shifted right by SENSCR_SHIFT = 10 bits, 1024 ln(1.0001) nats."""
    return -math.inf if x <= 0.0 else 1024.0 * math.log(x)


@dataclass(frozen=True)
class PathScore:
    """The acoustic part of a partial hypothesis."""

    ascore: float  # nats, summed over the segments
    last_frame: int  # the last frame the hypothesis covers
    speech_frames: int  # frames in segments that are neither silence nor fillers (+NSN+, ...)


def path_of(decoder) -> PathScore | None:  # noqa: ANN001 - a pocketsphinx.Decoder
    """The current (partial) hypothesis of a decoder that has not ended its utterance, or None."""
    try:
        if decoder.hyp() is None:
            return None
        segs = list(decoder.seg() or [])
    except (RuntimeError, TypeError):  # pragma: no cover - no hypothesis (yet)
        return None
    if not segs:
        return None
    ascore = sum(_nats(s.ascore) for s in segs)
    speech = sum(s.end_frame - s.start_frame + 1 for s in segs
                 if s.word not in _SILENT and not s.word.startswith(("+", "[")))
    return PathScore(ascore, max(s.end_frame for s in segs), speech)


@dataclass(frozen=True)
class Verdict:
    score: float | None  # nats per speech frame; None without a path to compare
    speech_s: float
    mismatch: str | None  # why the transcript is taken not to match (None: it matches, or too early)


def judge(aligned: PathScore | None, recognized: PathScore | None, *, final: bool = False,
          threshold: float = THRESHOLD) -> Verdict:
    """Compare the aligner's and the recognizer's partial hypotheses over the audio decoded so far.

    Before MIN_SPEECH_S of speech nothing is concluded (``mismatch`` None) unless ``final``, when
    MIN_SPEECH_END_S is enough."""
    if recognized is None:
        return Verdict(None, 0.0, None)
    speech_s = recognized.speech_frames * 0.01
    enough = speech_s >= (MIN_SPEECH_END_S if final else MIN_SPEECH_S)
    if aligned is None:
        return Verdict(None, speech_s, "the aligner has no hypothesis" if enough else None)
    score = (aligned.ascore - recognized.ascore) / max(recognized.speech_frames, 1)
    if not enough:
        return Verdict(score, speech_s, None)
    lag = (recognized.last_frame - aligned.last_frame) * 0.01
    if lag > MAX_LAG_S:
        return Verdict(score, speech_s, f"the alignment stalls {lag:.1f} s behind the audio")
    if score < threshold:
        return Verdict(score, speech_s, f"alignment score {score:.2f} per frame, threshold {threshold:.2f}")
    return Verdict(score, speech_s, None)

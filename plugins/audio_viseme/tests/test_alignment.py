"""A transcript that does not match the audio is detected and replaced by phone recognition.

The clips used here were not used to tune ``alignment.THRESHOLD`` (tuned on the festival slt_*
clips): kal_weather (a diphone voice) and the two LibriVox clips (a human reader)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from being_audio_viseme import alignment
from being_audio_viseme.alignment import PathScore as Hyp
from being_audio_viseme.evaluate import read_wav
from being_audio_viseme.model import VisemeModel
from being_audio_viseme.phones import PhoneDecoder
from being_audio_viseme.spec import VisemeConfig
from being_kernel.api import Audio, Motion

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
FESTIVAL = DATA / "speech" / "festival"
LIBRIVOX = DATA / "speech" / "librivox"
LOGGER = "being_audio_viseme.phones"
UNRELATED = "Please remember to water the garden before you leave for the airport on Friday."


def clip(name: str) -> tuple[np.ndarray, str]:
    """Samples and transcript of a festival clip ("kal_weather") or a LibriVox one ("0880")."""
    if name.isdigit():
        wav = next(LIBRIVOX.glob(f"*-{name}.wav"))
        line = next(x for x in (LIBRIVOX / "transcription.txt").read_text().splitlines() if wav.stem in x)
        return read_wav(wav), re.sub(r"</?s>|\(.*\)", "", line).strip()  # upper case, no punctuation
    return read_wav(FESTIVAL / f"{name}.wav"), (FESTIVAL / f"{name}.txt").read_text()


def decode(samples: np.ndarray, text: str | None, words: bool = True) -> PhoneDecoder:
    d = PhoneDecoder(text, words=words)
    for _ in range(d.feed_blocks(samples)):
        d.step()
        d.phones()  # as the model reads them, after every block
    d.end()
    return d


def warnings_of(caplog) -> list[str]:  # noqa: ANN001
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# -- the verdict on two hypotheses (no audio needed) --------------------------------------------

def test_judge_compares_per_speech_frame() -> None:
    rec = Hyp(ascore=-1000.0, last_frame=299, speech_frames=200)  # 2 s of speech in 3 s
    good = Hyp(ascore=-1000.0 - 200 * 3.0, last_frame=299, speech_frames=200)
    bad = Hyp(ascore=-1000.0 - 200 * 7.0, last_frame=299, speech_frames=150)
    v = alignment.judge(good, rec)
    assert v.score == pytest.approx(-3.0) and v.mismatch is None and v.speech_s == pytest.approx(2.0)
    v = alignment.judge(bad, rec)
    assert v.score == pytest.approx(-7.0) and "alignment score -7.00" in v.mismatch
    assert alignment.judge(bad, rec, threshold=-8.0).mismatch is None


def test_judge_waits_for_enough_speech() -> None:
    rec = Hyp(ascore=-100.0, last_frame=299, speech_frames=80)  # 0.8 s of speech
    bad = Hyp(ascore=-100.0 - 80 * 9.0, last_frame=299, speech_frames=80)
    assert alignment.judge(bad, rec).mismatch is None  # too early to say
    assert alignment.judge(None, rec).mismatch is None
    assert alignment.judge(bad, rec, final=True).mismatch  # at the end, 0.8 s is enough
    little = Hyp(ascore=-100.0, last_frame=299, speech_frames=30)
    assert alignment.judge(None, little, final=True).mismatch is None
    assert alignment.judge(None, None, final=True).mismatch is None


def test_judge_no_or_stalled_alignment_is_a_mismatch() -> None:
    rec = Hyp(ascore=-1000.0, last_frame=499, speech_frames=300)
    assert "no hypothesis" in alignment.judge(None, rec).mismatch
    stalled = Hyp(ascore=-900.0, last_frame=349, speech_frames=200)  # 1.5 s behind, scoring well
    assert "stalls 1.5 s" in alignment.judge(stalled, rec).mismatch
    assert alignment.judge(Hyp(-1100.0, 449, 280), rec).mismatch is None  # 0.5 s behind is fine


# -- held-out clips -----------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["kal_weather", "0880"])
def test_the_right_transcript_is_accepted(name: str, caplog) -> None:  # noqa: ANN001
    samples, text = clip(name)
    caplog.set_level(logging.INFO, logger=LOGGER)
    d = decode(samples, text)
    assert not d.fell_back and d.mode == "align"
    assert d.alignment_score is not None and d.alignment_score > alignment.THRESHOLD + 1.0
    assert warnings_of(caplog) == []
    info = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert info == [f"viseme: transcript aligned, score {d.alignment_score:.2f} per frame "
                    f"(threshold {alignment.THRESHOLD:.2f})"]


@pytest.mark.shared_data
@pytest.mark.parametrize("name, wrong", [("kal_weather", "slt_fox"), ("0930", UNRELATED)])
def test_a_wrong_transcript_falls_back_to_recognition(name: str, wrong: str, caplog) -> None:  # noqa: ANN001
    samples, _ = clip(name)
    text = clip(wrong)[1] if "_" in wrong else wrong
    caplog.set_level(logging.INFO, logger=LOGGER)
    d = decode(samples, text)
    assert d.fell_back and d.mode == "allphone"
    assert d.fell_back_at is not None and d.fell_back_at < 2.0  # decided early, not at the end
    assert d.alignment_score is not None and d.alignment_score < alignment.THRESHOLD
    (warning,) = warnings_of(caplog)  # one line, not one per block
    assert warning.startswith("viseme: the transcript does not match the audio (alignment score -")
    assert warning.endswith("using phone recognition instead")
    assert any("phones from recognition" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    # the phones are the recognizer's: those of decoding without a transcript by the phone loop alone
    # (word recognition does not run beside an alignment, so a fallback does without it)
    assert d.phones() == decode(samples, None, words=False).phones()


@pytest.mark.shared_data
def test_stream_equals_batch_through_a_fallback() -> None:
    samples, _ = clip("0880")
    model = VisemeModel(VisemeConfig(text=clip("slt_pamela")[1]))
    try:
        batch = model.generate(Audio(samples, 16000))
        whole = model.open_stream()  # what generate runs, kept to look at its decoder
        parts = [whole.push(samples), whole.finish()]
        sizes, start, k, pieces = (1, 7, 160, 333, 4000, 997), 0, 0, []
        stream = model.open_stream()
        while start < len(samples):
            pieces.append(stream.push(samples[start:start + sizes[k % len(sizes)]]))
            start, k = start + sizes[k % len(sizes)], k + 1
        pieces.append(stream.finish())
    finally:
        model.close()
    assert whole.decoder.fell_back and stream.decoder.fell_back
    assert whole.decoder.fell_back_at == stream.decoder.fell_back_at < len(samples) / 16000 - 1.0
    streamed, again = Motion.cat(pieces), Motion.cat(parts)
    assert streamed.num_frames == batch.num_frames == again.num_frames
    for key, value in batch.tensors().items():
        assert torch.equal(getattr(streamed, key), value), key
        assert torch.equal(getattr(again, key), value), key


def test_no_transcript_has_no_score() -> None:
    d = decode(np.zeros(16000, np.float32), None)
    assert d.mode == "allphone" and d.alignment_score is None and not d.fell_back

"""benchmarks/lip_set.py: the phone-timed lip-sync set and its tune / held-out split."""

from __future__ import annotations

import importlib.util
import re
import shutil
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lip_set():
    spec = importlib.util.spec_from_file_location("lip_set", ROOT / "benchmarks" / "lip_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_split_shares_no_voice_and_no_sentence() -> None:
    lip_set = _lip_set()
    plan = lip_set.plan()
    assert plan == lip_set.plan()  # deterministic
    voices = {part: {c[1] for c in clips} for part, clips in plan.items()}
    texts = {part: {c[3] for c in clips} for part, clips in plan.items()}
    assert voices["tune"] and voices["heldout"] and not voices["tune"] & voices["heldout"]
    assert texts["tune"] and texts["heldout"] and not texts["tune"] & texts["heldout"]
    names = [c[0] for clips in plan.values() for c in clips]
    assert len(names) == len(set(names))
    assert len(set(lip_set.SENTENCES)) == len(lip_set.SENTENCES) >= 60


def test_every_sentence_has_a_bilabial() -> None:
    for text in _lip_set().SENTENCES:
        assert re.search(r"[pbm]", text.lower()), text


@pytest.mark.skipif(shutil.which("festival") is None, reason="festival is not installed (the set needs it)")
def test_a_synthesized_clip_has_festival_segs_covering_the_wave(tmp_path: Path) -> None:
    """The .segs are Festival's format (as ../shared/data) and end where the 16 kHz wave ends."""
    from being_kernel.metrics.lipsync import read_segs

    lip_set = _lip_set()
    voices = [v for v in lip_set.VOICES if _voice_installed(v)]
    if not voices:
        pytest.skip("no festival voice of the set is installed")
    for voice in voices[:2]:
        stem = tmp_path / voice
        lip_set.synthesize(voice, "Maybe a happy baby.", 0.8, stem)
        lines = stem.with_suffix(".segs").read_text().splitlines()
        assert lines[0] == "#"
        assert all(re.fullmatch(r"\d+\.\d{4} 100 [a-z@]+", line) for line in lines[1:]), lines
        segs = read_segs(stem.with_suffix(".segs"))
        assert segs[0][0] == "pau" and segs[-1][0] == "pau"
        assert [p for p, _, _ in segs if p in ("p", "b", "m")] == ["m", "b", "p", "b", "b"]
        with wave.open(str(stem.with_suffix(".wav"))) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            duration = w.getnframes() / 16000
        assert abs(duration - segs[-1][2]) <= 1 / 25
        assert stem.with_suffix(".txt").read_text().strip() == "Maybe a happy baby."


def _voice_installed(voice: str) -> bool:
    import subprocess

    fn = _lip_set().VOICES[voice]
    out = subprocess.run(["festival", "-b", f"(if (not (symbol-bound? '{fn})) (exit 3))"], capture_output=True,
                         timeout=60)
    return out.returncode == 0

"""A batch call decodes its utterances in worker processes and still equals any streaming."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from being_audio_viseme import parallel
from being_audio_viseme.model import VisemeModel
from being_audio_viseme.phones import BLOCK, RATE, PhoneDecoder, UtteranceCuts, pcm16, utterance_starts
from being_audio_viseme.spec import VisemeConfig
from being_kernel.api import Audio, Motion
from being_kernel.media import demo_speech, resample


def voice() -> np.ndarray:
    """3.2 s of the demo voice without a pause: its two phrases, the silences around them cut out."""
    speech = demo_speech()
    v = resample(speech.samples, speech.sample_rate, RATE)
    return np.concatenate([v[3 * BLOCK:48 * BLOCK], v[55 * BLOCK:91 * BLOCK]])


def with_pauses(pauses: list[float], noise_dbfs: float | None = -52.0, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The demo voice (3.2 s) again and again with a pause of each length (seconds) between, over
    room noise at ``noise_dbfs`` (None: digital silence); also the pauses' [start, end) samples."""
    v, parts, spans, at = voice(), [], [], 0
    for p in pauses:
        gap = np.zeros(round(p * RATE), np.float32)
        parts += [v, gap]
        spans.append((at + len(v), at + len(v) + len(gap)))
        at += len(v) + len(gap)
    parts.append(v)
    x = np.concatenate(parts)
    if noise_dbfs is not None:
        x = x + np.random.default_rng(seed).normal(0, 10 ** (noise_dbfs / 20), len(x)).astype(np.float32)
    return x.astype(np.float32), spans


@pytest.mark.parametrize("noise", [None, -52.0, -40.0])
def test_utterances_begin_in_the_pauses_between_phrases(noise: float | None) -> None:
    """Whatever the room noise, every pause of 0.3 s or more between phrases begins an utterance
    (inside the pause), a 0.1 s gap (as long as a stop's closure) never does, and nothing else does."""
    x, spans = with_pauses([0.4, 0.1, 0.3, 0.6, 0.1], noise)
    starts = utterance_starts(pcm16(x))
    long_gaps = [s for s in spans if s[1] - s[0] >= 0.3 * RATE]
    assert len(starts) - 1 == len(long_gaps)
    for start, (a, b) in zip(starts[1:], long_gaps):
        assert a < start <= b


def test_utterance_cuts_are_the_streams() -> None:
    """``utterance_starts`` finds where a stream's decoder begins each utterance."""
    x, _ = with_pauses([0.5, 0.5])
    d = PhoneDecoder(words=False)
    begun = [0]
    for _ in range(d.feed_blocks(x)):
        before = d._utt_start
        d.step()
        if d._utt_start != before:
            begun.append(d._utt_start)
    d.end()
    assert begun == utterance_starts(pcm16(x)) and len(begun) == 3


def test_an_utterance_is_cut_at_the_longest_length_even_without_a_pause() -> None:
    """80 s of speech without a pause (the voice over and over) is cut every 60 s, and only there."""
    pcm = pcm16(np.tile(voice(), 25))
    assert utterance_starts(pcm) == [0, round(UtteranceCuts.UTTERANCE_MAX_S * RATE / BLOCK) * BLOCK]


def test_a_reused_decoder_decodes_an_utterance_as_a_new_one() -> None:
    """The front end is made afresh for each utterance: after decoding other audio, a decoder gives
    the very phones a new decoder gives (partial after each block and final)."""
    x, _ = with_pauses([0.5])
    pcm = pcm16(x)
    half = len(pcm) // 2 // BLOCK * BLOCK
    used = PhoneDecoder(cut=False)
    used.end_utterance()
    used.decode_alone(pcm[:half], 0)
    fresh = PhoneDecoder(cut=False)
    fresh.end_utterance()
    assert used.decode_alone(pcm[half:], half) == fresh.decode_alone(pcm[half:], half)


def motion(samples: np.ndarray, **cfg) -> Motion:
    model = VisemeModel(VisemeConfig(**cfg))
    try:
        return model.generate(Audio(samples, RATE))
    finally:
        model.close()


def streamed(samples: np.ndarray, seed: int) -> Motion:
    model = VisemeModel(VisemeConfig(workers=1))
    try:
        stream, parts, at = model.open_stream(), [], 0
        rng = np.random.default_rng(seed)
        while at < len(samples):
            n = int(rng.integers(1, 4000))
            parts.append(stream.push(samples[at:at + n]))
            at += n
        parts.append(stream.finish())
        return Motion.cat(parts)
    finally:
        model.close()


def assert_equal(a: Motion, b: Motion) -> None:
    for name, value in a.tensors().items():
        assert torch.equal(getattr(b, name), value), name


@pytest.mark.parametrize("words", [True, False])
def test_batch_in_worker_processes_equals_streaming(words: bool, monkeypatch) -> None:  # noqa: ANN001
    """12 s of speech in 4 utterances (and a short last block): decoded in 2 worker processes it
    gives exactly the motion of the stream decoding it in this process, in any chunking."""
    x, _ = with_pauses([0.5, 0.4, 0.6])
    x = x[: len(x) - 123]
    assert len(utterance_starts(pcm16(x))) == 4
    spread = []
    decode = parallel.decode
    monkeypatch.setattr(parallel, "decode", lambda *a: spread.append(decode(*a)) or spread[-1])
    batch = motion(x, workers=2, words=words)
    assert isinstance(spread[0], parallel.DecodedPhones)  # the workers decoded it
    assert_equal(batch, motion(x, workers=1, words=words))
    if words:
        assert_equal(batch, streamed(x, seed=1))
        assert_equal(batch, streamed(x, seed=2))


def test_a_killed_worker_costs_a_warning_not_the_result(caplog) -> None:  # noqa: ANN001
    x, _ = with_pauses([0.5, 0.5])
    want = motion(x, workers=1)
    pool = parallel.pool(True, 2)
    pool.submit(os._exit, 1)  # a worker dies, as if killed
    assert_equal(want, motion(x, workers=2))
    assert any("recognizer processes stopped" in r.getMessage() for r in caplog.records)
    assert_equal(want, motion(x, workers=2))  # a new pool serves the next call


def test_a_script_without_a_main_guard_is_not_run_again_by_the_workers(tmp_path) -> None:  # noqa: ANN001
    script = tmp_path / "talk.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from being_audio_viseme.model import VisemeModel
        from being_audio_viseme.spec import VisemeConfig
        from being_kernel.api import Audio
        print("script ran", flush=True)
        x = np.zeros(16000 * 6, np.float32)
        x[16000:40000] = 0.3 * np.sin(np.arange(24000) * 0.2)
        x[64000:88000] = 0.3 * np.sin(np.arange(24000) * 0.3)
        model = VisemeModel(VisemeConfig(workers=2))
        print(model.generate(Audio(x, 16000)).num_frames, flush=True)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["script", "ran", "150"]


def test_the_default_workers_follow_the_cores_this_process_may_use(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(12)))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert parallel.default_workers() == parallel.MAX_WORKERS == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # e.g. a Ray actor holding 3 CPUs
    assert parallel.default_workers() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert parallel.default_workers() == 2


def test_the_last_model_closed_stops_the_workers_and_an_orphan_ends_itself(tmp_path) -> None:  # noqa: ANN001
    """Closing the last model that uses a pool stops its workers at once; and workers whose parent
    died without closing (``os._exit``, a kill) end by themselves instead of holding its pipes."""
    a, b = VisemeModel(VisemeConfig(workers=3)), VisemeModel(VisemeConfig(workers=3))
    pids = [f.result(timeout=60) for f in [parallel.pool(True, 3).submit(os.getpid) for _ in range(6)]]
    a.close()
    assert all(alive(p) for p in set(pids))  # b still holds the pool
    b.close()
    assert not any(alive(p) for p in set(pids))
    script = "\n".join([
        "import os, sys", "from being_audio_viseme import parallel",
        "print(*{parallel.pool(False, 2).submit(os.getpid).result(timeout=60) for _ in range(4)}, flush=True)",
        "os._exit(0)"])
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    orphans = [int(p) for p in out.stdout.split()]
    assert orphans, out.stderr
    deadline = time.monotonic() + 10
    while any(alive(p) for p in orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in orphans)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False

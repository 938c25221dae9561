"""Lip-sync benchmark of the `viseme` audio model (plugins/audio_viseme) on ../shared/data.

* festival clips: bilabial closure rate (every p/b/m of the .segs ground truth: lip gap on the
  demo head < 1.5 mm at some frame within 40 ms of the phone's middle), without and with the
  transcript;
* librivox clips (real human reader): Pearson correlation between the jaw opening and the speech
  loudness (RMS of each frame's 40 ms window);
* streaming: stated latency and the compute time per second of audio.

Prints a Markdown table. Run: python benchmarks/lip_sync.py

With ``--set DIR`` (a set written by benchmarks/lip_set.py): the same closure and vowel counts on
its tune/ and heldout/ parts, reported separately, without and with the transcript; ``--misses``
adds a classification of every bilabial left open (``classify``), ``--jobs`` runs clips in
parallel processes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


VOWELS = frozenset("aa ae ah ao aw ax axr ay eh er ey ih iy ow oy uh uw".split())
BILABIALS = frozenset("p b m".split())


def _decode(x: np.ndarray, text: str | None, cfg: dict | None = None):
    """(motion, final phones) of the viseme model on 16 kHz ``x``: the stream ``generate`` runs."""
    from being_audio_viseme.model import VisemeModel
    from being_audio_viseme.spec import VisemeConfig
    from being_kernel.types import Motion

    model = VisemeModel(VisemeConfig(text=text, **{"workers": 1, **(cfg or {})}))
    try:
        stream = model.open_stream()
        motion = Motion.cat([stream.push(x), stream.finish()])
        return motion, stream.decoder.phones()
    finally:
        model.close()


def classify(s: float, e: float, decoded) -> str:  # noqa: ANN001
    """Why a true bilabial over [s, e] was left open, given the ``decoded`` phones (the decoder's
    final hypothesis, after the word-guided relabelling):

    * ``not recognised (X)``: no p/b/m decoded within 60 ms of its middle; X is the phone decoded at
      its middle (a substitution), or ``sil``;
    * ``recognised, off by N ms``: a p/b/m was decoded there but its middle lies more than 25 ms
      from the true middle (the closure is shown, too early or late for the 40 ms window);
    * ``recognised, still open``: decoded on time, yet no frame in the window is closed (the closure
      blurred by smoothing, or only the streaming partial hypothesis missed it)."""
    c = 0.5 * (s + e)
    near = [p for p in decoded if p.phone.lower() in BILABIALS and p.start < c + 0.06 and p.end > c - 0.06]
    if not near:
        at = [p.phone.lower() for p in decoded if p.start <= c < p.end]
        return f"not recognised ({at[0] if at and at[0] not in ('sil', '<sil>', '<s>', '</s>') else 'sil'})"
    off = min((0.5 * (p.start + p.end) - c for p in near), key=abs)
    if abs(off) > 0.025:
        return f"recognised, {'late' if off > 0 else 'early'} by > 25 ms"
    return "recognised, still open"


def context(before: str, after: str) -> str:
    """The phonetic context of a bilabial: between vowels, in a consonant cluster, or at a pause."""
    v0, v1 = before in VOWELS, after in VOWELS
    if before == "pau" or after == "pau":
        return "next to a pause"
    if v0 and v1:
        return "between vowels"
    return "cluster (consonant next to it)"


#: Consonants whose lips must not be shut at their middle (the second control): all but the
#: bilabials, the labiodentals f/v (lower lip on the teeth) and w (rounded, nearly shut).
OTHER_CONSONANTS = frozenset("ch d dh g hh jh k l n ng r s sh t th y z zh".split())


def other_closed(gap: np.ndarray, fps: float, segs) -> tuple[int, int]:  # noqa: ANN001
    """(closed, total) over the OTHER_CONSONANTS of ``segs``: lips shut at the frame nearest the middle."""
    closed = total = 0
    for phone, s, e in segs:
        k = int(round((s + e) / 2 * fps))
        if phone in OTHER_CONSONANTS and k < len(gap):
            from being_kernel.metrics.lipsync import CLOSED_GAP_M

            total += 1
            closed += bool(gap[k] < CLOSED_GAP_M)
    return closed, total


def evaluate_clip(wav: str, modes: tuple[str, ...] = ("none", "text"), cfg: dict | None = None):
    """Counts and misses of one clip of a set:
    {mode: (closed, total, open, vowels, [(class, ctx, dur, where)], other closed, others)}."""
    from being_audio_viseme.evaluate import read_wav
    from being_kernel.metrics.lipsync import CLOSED_GAP_M, CLOSURE_WINDOW_S, bilabial_closure, lip_gap, read_segs, \
        vowel_opening

    path = Path(wav)
    x, segs = read_wav(path), read_segs(path.with_suffix(".segs"))
    out = {}
    for mode, text in (("none", None), ("text", path.with_suffix(".txt").read_text())):
        if mode not in modes:
            out[mode] = (0, 0, 0, 0, [], 0, 0)
            continue
        motion, decoded = _decode(x, text, cfg)
        gap = lip_gap(motion)
        c, n = bilabial_closure(gap, 25.0, segs)
        o, v = vowel_opening(gap, 25.0, segs)
        misses = []
        times = np.arange(len(gap)) / 25.0
        for i, (ph, s, e) in enumerate(segs):
            if ph not in BILABIALS:
                continue
            near = np.abs(times - (s + e) / 2) <= CLOSURE_WINDOW_S + 1e-9
            if near.any() and (gap[near] < CLOSED_GAP_M).any():
                continue
            before = segs[i - 1][0] if i else "pau"
            after = segs[i + 1][0] if i + 1 < len(segs) else "pau"
            misses.append((classify(s, e, decoded), context(before, after),
                           e - s, f"{path.stem} {before}-{ph}-{after} @{s:.2f}"))
        out[mode] = (c, n, o, v, misses, *other_closed(gap, 25.0, segs))
    return out


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({a / b:.1%})" if b else "-"


def _eval_args(args: tuple) -> dict:
    return evaluate_clip(*args)


def run_set(root: Path, jobs: int, misses: int, limit: int | None, modes: tuple[str, ...] = ("none", "text"),
            cfg: dict | None = None, only: str | None = None) -> int:
    parts = [p for p in ("tune", "heldout") if (root / p).is_dir() and only in (None, p)] or ["."]
    results = {}
    for part in parts:
        wavs = sorted(str(w) for w in (root / part).glob("*.wav"))[:limit]
        if jobs > 1:
            from multiprocessing import get_context

            with get_context("spawn").Pool(jobs) as pool:
                results[part] = dict(zip(wavs, pool.map(_eval_args, [(w, modes, cfg) for w in wavs], chunksize=1)))
        else:
            results[part] = {w: evaluate_clip(w, modes, cfg) for w in wavs}
    print("| part | clips | bilabials | closed (no transcript) | closed (transcript) "
          "| vowels | open (no transcript) | open (transcript) | other consonants | shut (no transcript) "
          "| shut (transcript) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for part, res in results.items():
        tot = np.zeros(9, int)
        for r in res.values():
            a, b = r["none"], r["text"]
            tot += (a[1] or b[1], a[0], b[0], a[3] or b[3], a[2], b[2], a[6] or b[6], a[5], b[5])
        n, c0, c1, v, o0, o1, k, s0, s1 = (int(t) for t in tot)
        cells = [_pct(c0, n), _pct(c1, n), str(v), _pct(o0, v), _pct(o1, v), str(k), _pct(s0, k), _pct(s1, k)]
        if "none" not in modes:
            cells[0] = cells[3] = cells[6] = "-"
        if "text" not in modes:
            cells[1] = cells[4] = cells[7] = "-"
        print(f"| {part} | {len(res)} | {n} | " + " | ".join(cells) + " |")
    if misses:
        from collections import Counter

        for part, res in results.items():
            for mode in ("none", "text"):
                all_misses = [m for r in res.values() for m in r[mode][4]]
                if not all_misses:
                    continue
                print(f"\n{part}, {'no transcript' if mode == 'none' else 'transcript'}: {len(all_misses)} open")
                print("\n| why | between vowels | cluster | next to a pause | all |\n| --- | --- | --- | --- | --- |")
                why = Counter(m[0] for m in all_misses)
                for w, k in why.most_common():
                    ctx = Counter(m[1] for m in all_misses if m[0] == w)
                    print(f"| {w} | {ctx['between vowels']} | {ctx['cluster (consonant next to it)']} "
                          f"| {ctx['next to a pause']} | {k} |")
                if misses > 1:
                    for m in all_misses:
                        print(f"    {m[0]:<34} {m[1]:<30} {m[2] * 1000:4.0f} ms  {m[3]}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="lip-sync benchmark of the viseme audio model")
    ap.add_argument("--set", type=Path, help="a set from benchmarks/lip_set.py (tune/ and heldout/ reported apart)")
    ap.add_argument("--misses", action="count", default=0, help="classify the bilabials left open (twice: list them)")
    ap.add_argument("--jobs", type=int, default=1, help="clips decoded in parallel processes")
    ap.add_argument("--limit", type=int, help="only the first N clips of each part")
    ap.add_argument("--part", choices=("tune", "heldout"), help="only this part of the set")
    ap.add_argument("--mode", choices=("none", "text"), help="only without (none) or with (text) the transcript")
    ap.add_argument("--no-words", action="store_true", help="VisemeConfig(words=False): phone recognition alone")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help="another VisemeConfig value for the set, e.g. lookahead_s=0.5 (JSON values)")
    args = ap.parse_args()
    if args.set is not None:
        if not args.set.is_dir():
            print(f"no set at {args.set} (python benchmarks/lip_set.py {args.set})")
            return 1
        modes = (args.mode,) if args.mode else ("none", "text")
        cfg = {k: json.loads(v) for k, v in (c.split("=", 1) for c in args.config)}
        if args.no_words:
            cfg["words"] = False
        return run_set(args.set, args.jobs, args.misses, args.limit, modes, cfg or None, args.part)
    return shared()


def shared() -> int:
    from being_audio_viseme.evaluate import read_wav
    from being_audio_viseme.model import VisemeModel
    from being_audio_viseme.spec import VisemeConfig
    from being_kernel.metrics.lipsync import bilabial_closure, lip_gap, read_segs, vowel_opening
    from being_kernel.types import Audio

    if not DATA.is_dir():
        print(f"no data at {DATA}")
        return 1

    def run(x: np.ndarray, text: str | None):
        model = VisemeModel(VisemeConfig(text=text))
        try:
            return model.generate(Audio(x, 16000))
        finally:
            model.close()

    print("| clip | bilabials | closed (no transcript) | closed (transcript) "
          "| vowels | open (no transcript) | open (transcript) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    tot = np.zeros(6, int)
    for wav in sorted((DATA / "festival").glob("*.wav")):
        x, segs = read_wav(wav), read_segs(wav.with_suffix(".segs"))
        gaps = [lip_gap(run(x, text)) for text in (None, wav.with_suffix(".txt").read_text())]
        (c0, n), (c1, _) = (bilabial_closure(g, 25.0, segs) for g in gaps)
        (o0, v), (o1, _) = (vowel_opening(g, 25.0, segs) for g in gaps)
        tot += (n, c0, c1, v, o0, o1)
        print(f"| {wav.stem} | {n} | {c0}/{n} | {c1}/{n} | {v} | {o0}/{v} | {o1}/{v} |")
    n, c0, c1, v, o0, o1 = tot
    print(f"| **all** | {n} | {c0}/{n} ({c0 / n:.1%}) | {c1}/{n} ({c1 / n:.1%}) "
          f"| {v} | {o0}/{v} ({o0 / v:.1%}) | {o1}/{v} ({o1 / v:.1%}) |")

    print("\n| librivox clip | r(jaw, RMS) no transcript | r(jaw, RMS) transcript |")
    print("| --- | --- | --- |")
    texts = {}
    for line in (DATA / "librivox" / "transcription.txt").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
        if m:
            texts[m.group(2).strip()] = m.group(1).strip()
    for wav in sorted((DATA / "librivox").glob("*.wav")):
        x = read_wav(wav)
        rs = []
        for text in (None, texts.get(wav.stem)):
            jaw = run(x, text).jaw[:, 0].numpy()
            t = np.arange(len(jaw)) / 25.0
            rms = np.array([np.sqrt(np.mean(x[max(0, int((ti - 0.02) * 16000)):int((ti + 0.02) * 16000)] ** 2) + 0.0)
                            for ti in t])
            rs.append(float(np.corrcoef(jaw, rms)[0, 1]))
        print(f"| {wav.stem} | {rs[0]:.2f} | {rs[1]:.2f} |")

    x = read_wav(DATA / "festival" / "slt_pamela.wav")
    model = VisemeModel(VisemeConfig())
    stream = model.open_stream()
    start, worst = time.perf_counter(), 0.0
    for i in range(0, len(x), 640):
        t0 = time.perf_counter()
        stream.push(x[i:i + 640])
        worst = max(worst, time.perf_counter() - t0)
    stream.finish()
    took = time.perf_counter() - start
    dur = len(x) / 16000
    print(f"\nstreaming: stated latency {model.info().latency_s * 1000:.0f} ms (lookahead); "
          f"compute {took / dur * 1000:.0f} ms per s of audio (real-time factor {took / dur:.2f}); "
          f"slowest 40 ms push {worst * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

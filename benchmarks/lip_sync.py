"""Lip-sync benchmark of the `viseme` audio model (plugins/audio_viseme) on ../shared/data.

* festival clips: bilabial closure rate (every p/b/m of the .segs ground truth: lip gap on the
  demo head < 1.5 mm at some frame within 40 ms of the phone's middle), without and with the
  transcript;
* librivox clips (real human reader): Pearson correlation between the jaw opening and the speech
  loudness (RMS of each frame's 40 ms window);
* streaming: stated latency and the compute time per second of audio.

Prints a Markdown table. Run: python benchmarks/lip_sync.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


def main() -> int:
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

"""How much Being's audio framing changes EMOTE's output against the public demo's framing.

Runs one EMOTE model on each clip twice: as Being frames it (round(N / 640) frames, 640 x frames
float samples, one window) and as the demo does (``being_audio_emote.demo_framing``: int16, T + 1
frames of 641 samples). Reports, over the frames both give, the largest and the mean absolute
difference of the expression and jaw outputs, also relative to the output's standard deviation.
With no weights given it uses random published-size weights (the figures then say how sensitive
the architecture is to the framing, not what the trained model does). Runs:

    python plugins/audio_emote/tools/framing_difference.py CLIP.wav [...] [--weights EMOTE_v2]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch


def main() -> int:
    from being_audio_emote.demo_framing import demo_normalised
    from being_audio_emote.emote_config import EmoteSizes
    from being_audio_emote.emote_weights import find_emote, load_emote
    from being_audio_emote.plugin import normalise
    from being_audio_emote.testing import random_emote
    from being_kernel.api import frames_for
    from being_kernel.media import read_audio, resample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--weights", default=None, help="an EMOTE model folder; default: random published-size weights")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = load_emote(find_emote(args.weights), device) if args.weights else random_emote(EmoteSizes()).to(device)
    cond = model.condition(0, 2, 0, 1, device)
    rows = []
    for clip in args.clips:
        audio = read_audio(clip)
        samples = resample(audio.samples, audio.sample_rate, 16000)
        frames = frames_for(len(samples), 16000, 25)
        ours = np.zeros(640 * frames, np.float32)
        ours[:min(len(samples), len(ours))] = samples[:len(ours)]
        theirs, demo_frames = demo_normalised(samples)
        with torch.no_grad():
            a = model(torch.from_numpy(normalise(ours))[None].to(device), frames, cond)[0]
            b = model(torch.from_numpy(theirs)[None].to(device), demo_frames, cond)[0]
        n = min(len(a), len(b))
        diff = (a[:n] - b[:n]).abs()
        scale = float(b[:n].std())
        rows.append({"clip": clip, "being_frames": frames, "demo_frames": demo_frames, "max_abs": float(diff.max()),
                     "mean_abs": float(diff.mean()), "output_std": scale, "max_rel": float(diff.max()) / scale,
                     "mean_rel": float(diff.mean()) / scale})
    print("| clip | Being frames | demo frames | max abs diff | mean abs diff | output std | mean / std |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['clip'].split('/')[-1]} | {r['being_frames']} | {r['demo_frames']} | {r['max_abs']:.4f} | "
              f"{r['mean_abs']:.4f} | {r['output_std']:.4f} | {r['mean_rel']:.3f} |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real-time factor of the `emote` audio model (plugins/audio_emote): EMOTE + PoseVAE on 60 s of speech.

Builds both published-size models with random weights (speed does not depend on the values)
directly on the device and times the batch call (``generate``: per 10 s window wav2vec, the
style-conditioned transformer and FLINT; PoseVAE's mel windows and 32-frame chunks; smoothing) on
the kernel's demo speech, after a warm-up, with CUDA synchronisation, over repeated runs; also
EMOTE alone (``pose=none``). Prints a Markdown table and a JSON line. Runs:

    python benchmarks/emote_rtf.py --device cuda
    python benchmarks/emote_rtf.py --device cpu --seconds 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def main() -> int:
    from being_audio_emote.emote_config import EmoteSizes
    from being_audio_emote.plugin import EmoteAudio
    from being_audio_emote.spec import EmoteConfig
    from being_audio_emote.testing import random_audio2pose, random_emote
    from being_kernel.media import demo_speech

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--seconds", type=float, default=60.0, help="speech length")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the median is reported)")
    parser.add_argument("--window", type=float, default=10.0, help="EMOTE's window_s")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 1
    audio = demo_speech(args.seconds, 16000)
    with torch.device(device):
        emote, pose = random_emote(EmoteSizes()), random_audio2pose()
    rows = []
    for mode in ("posevae", "none"):
        plugin = EmoteAudio(EmoteConfig(device=args.device, pose=mode, window_s=args.window), model=emote,
                            pose_model=pose if mode == "posevae" else None)
        plugin.generate(demo_speech(3.0, 16000))  # warm-up
        times = []
        for _ in range(args.repeats):
            if cuda:
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            plugin.generate(audio)
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        rows.append({"pose": mode, "seconds": args.seconds, "rtf": statistics.median(times) / args.seconds,
                     "latency_s": plugin.info().latency_s, "threads": torch.get_num_threads(),
                     "device": torch.cuda.get_device_name(device) if cuda else "cpu"})
    print("| pose | speech s | RTF (median) | stated latency s | device |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['pose']} | {r['seconds']:.0f} | {r['rtf']:.4f} | {r['latency_s']:.2f} | {r['device']} "
              f"({r['threads']} threads) |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

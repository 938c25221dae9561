"""Real-time factor of the `artalk` audio model (plugins/audio_artalk) on 60 s of speech.

Builds the full published-size model with random weights (speed does not depend on the values)
directly on the device, and times the batch call (``generate``: wav2vec, next-scale decoding,
VAE, smoothing) on the kernel's demo speech, after a warm-up, with CUDA synchronisation, over
repeated runs. Precisions: float32; float32 with TF32 matmuls (what the published inference.py
enables with ``torch.set_float32_matmul_precision("high")``); bfloat16 weights.

Prints a Markdown table and a JSON line (also written to --json). Runs:

    python benchmarks/artalk_rtf.py --device cuda
    python benchmarks/artalk_rtf.py --device cpu --tiny      # the tiny test configuration (one thread), a smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch


def main() -> int:
    from being_audio_artalk.config import PUBLISHED, tiny
    from being_audio_artalk.model import ArtalkModel
    from being_audio_artalk.plugin import ArtalkAudio
    from being_audio_artalk.spec import ArtalkConfig
    from being_kernel.media import demo_speech

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="the tiny test configuration, not the published sizes")
    parser.add_argument("--seconds", type=float, default=60.0, help="speech length")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per precision (the median is reported)")
    parser.add_argument("--precisions", default="float32,tf32,bfloat16")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 1
    sizes = tiny() if args.tiny else PUBLISHED
    if args.tiny and not cuda:
        torch.set_num_threads(1)  # matrices a few dozen wide: threads only add overhead
    audio = demo_speech(args.seconds, 16000)
    clip = 0.3 * torch.randn(sizes.style.frames, 106, generator=torch.Generator().manual_seed(0))  # a style clip

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    rows = []
    for precision in args.precisions.split(","):
        torch.manual_seed(0)
        with torch.device(device):
            model = ArtalkModel(sizes).eval().requires_grad_(False)
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        dtype = "bfloat16" if precision == "bfloat16" else "float32"
        plugin = ArtalkAudio(ArtalkConfig(device=args.device, dtype=dtype), model=model, style_clip=clip)
        plugin.generate(demo_speech(min(args.seconds, 8.0), 16000, seed=1))  # warm-up: kernels, allocator
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(args.repeats):
            sync()
            start = time.perf_counter()
            motion = plugin.generate(audio)
            sync()
            times.append(time.perf_counter() - start)
        assert motion.num_frames == audio.num_frames(25) and torch.isfinite(motion.expression).all()
        chunks = -(-len(audio.samples) // sizes.chunk_samples)
        median = statistics.median(times)
        rows.append({
            "precision": precision, "seconds_of_audio": args.seconds, "median_s": median, "runs_s": times,
            "rtf": median / args.seconds, "per_chunk_ms": 1000 * median / chunks,
            "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2 ** 20 if cuda else None,
        })
        plugin.close()
        del plugin, model
        if cuda:
            torch.cuda.empty_cache()
    torch.backends.cuda.matmul.allow_tf32 = False

    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    config = "tiny test configuration" if args.tiny else "published sizes (489.7 M parameters)"
    chunk_s = sizes.chunk_frames / 25
    print(f"artalk batch generation, {args.seconds:g} s of demo speech, {config}, {name}, torch {torch.__version__}\n")
    print(f"| precision | median time (s) | real-time factor (s per s of audio) | compute per {chunk_s:g} s chunk (ms) "
          "| peak GPU memory (MiB) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        peak = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] is not None else "-"
        print(f"| {r['precision']} | {r['median_s']:.3f} | {r['rtf']:.4f} | {r['per_chunk_ms']:.1f} | {peak} |")
    result = {"device": name, "torch": torch.__version__, "config": config, "results": rows}
    print("\n" + json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

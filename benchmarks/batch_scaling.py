"""``being batch`` at scale: render N clips of S seconds (and optionally fit K synthetic avatars)
on G GPUs with W render workers per GPU, and report wall time, throughput, scaling efficiency
against the first row's per-GPU throughput, and GPU utilisation (nvidia-smi, sampled every 0.5 s).

    python benchmarks/batch_scaling.py --out OUT --clips 200 --seconds 10 --size 512 \\
        --run 1x1:50 --run 1x4:200 [--run 2x4:200 ...] [--fits 4 --fit-minutes 5 --fit-gpus 1]

``--run GxW:N``: G GPUs, W workers per GPU, N clips. The clips are cut from the speech files of
``--speech`` (default: the kernel's demo speech), each starting at another offset, so no two are
alike. Everything goes through the ``being`` CLI, as a user runs it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

BEING = [sys.executable, "-m", "being_kernel.cli"]


def make_clips(folder: Path, count: int, seconds: float, speech: list[Path]) -> list[Path]:
    """``count`` mono clips of ``seconds`` at 16 kHz, cut from ``speech`` looped end to end."""
    from being_kernel.media import demo_speech, read_audio_channels, resample

    if speech:
        parts = []
        for p in speech:
            channels, rate = read_audio_channels(p)
            parts.append(resample(channels.mean(axis=0), rate, 16000))
        source = np.concatenate(parts)
    else:
        source = demo_speech().samples
    n = round(seconds * 16000)
    source = np.tile(source, int(np.ceil((n + len(source)) / len(source))))
    folder.mkdir(parents=True, exist_ok=True)
    step = max(1, (len(source) - n) // count)
    paths = []
    for k in range(count):
        path = folder / f"clip{k:04d}.wav"
        sf.write(path, source[k * step % (len(source) - n):][:n], 16000)
        paths.append(path)
    return paths


class GpuSampler:
    """Mean utilisation (%) and peak memory (MiB) per GPU while running, from nvidia-smi."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, float, float]] = []
        self._proc = None

    def __enter__(self) -> GpuSampler:
        try:
            self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used",
                                           "--format=csv,noheader,nounits", "-lms", "500"],
                                          stdout=subprocess.PIPE, text=True)
        except FileNotFoundError:
            return self
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            parts = [x.strip() for x in line.split(",")]
            if len(parts) == 3 and all(p.replace(".", "").isdigit() for p in parts):
                self.samples.append((int(parts[0]), float(parts[1]), float(parts[2])))

    def __exit__(self, *exc: object) -> None:
        if self._proc:
            self._proc.terminate()
            self._proc.wait()

    def summary(self, gpus: int) -> dict[str, float]:
        out = {}
        for g in range(gpus):
            s = [x for x in self.samples if x[0] == g]
            if s:
                out[f"gpu{g}_util_pct"] = round(float(np.mean([x[1] for x in s])), 1)
                out[f"gpu{g}_peak_mib"] = max(x[2] for x in s)
        return out


def run_batch(jobs: Path, out: Path, gpus: int) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([*BEING, "batch", str(jobs), "--out", str(out), "--gpus", str(gpus)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"being batch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout


def render_row(args: argparse.Namespace, clips: Path, gpus: int, workers: int, count: int) -> dict:
    folder = args.out / f"clips-{count}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for p in sorted(clips.glob("*.wav"))[:count]:
            (folder / p.name).symlink_to(p)
    jobs = args.out / f"render-{gpus}x{workers}-{count}.toml"
    jobs.write_text(f'[batch]\nworkers_per_gpu = {workers}\n\n[[render]]\nname = "r"\ninput = "{folder}"\n'
                    f'audio = "viseme"\navatar = "splatting"\ntorso = "static"\n'
                    f'set = ["torso.size=[{args.size},{args.size}]", "avatar.size=[{args.size},{args.size}]"]\n')
    with GpuSampler() as sampler:
        wall, stdout = run_batch(jobs, args.out / f"out-{gpus}x{workers}-{count}", gpus)
    frames = count * round(args.seconds * 25)
    row = {"gpus": gpus, "workers_per_gpu": workers, "clips": count, "seconds_per_clip": args.seconds,
           "wall_s": round(wall, 1), "clips_per_min": round(60 * count / wall, 1), "frames_per_s": round(frames / wall, 1),
           **sampler.summary(gpus)}
    print(json.dumps(row), flush=True)
    print(stdout.strip().splitlines()[-1], flush=True)
    return row


def fit_row(args: argparse.Namespace) -> dict:
    datasets = []
    for k in range(args.fits):
        d = args.out / f"synth{k}"
        if not d.exists():
            subprocess.run([*BEING, "make-dataset", "synthetic", "--out", str(d), "--size", str(args.size),
                            "--frames", str(args.fit_frames), "--test-frames", "20", "--seed", str(k)], check=True,
                           capture_output=True)
        datasets.append(d)
    jobs = args.out / "fits.toml"
    jobs.write_text("".join(f'[[fit]]\nname = "avatar{k}"\ndata = "{d}"\nset = ["fit.max_minutes={args.fit_minutes}"]\n\n'
                            for k, d in enumerate(datasets)))
    with GpuSampler() as sampler:
        wall, _ = run_batch(jobs, args.out / f"fits-{args.fit_gpus}", args.fit_gpus)
    row = {"fits": args.fits, "fit_minutes": args.fit_minutes, "gpus": args.fit_gpus, "wall_s": round(wall, 1),
           **sampler.summary(args.fit_gpus)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--speech", type=Path, nargs="*", default=[])
    ap.add_argument("--run", action="append", default=[], help="GxW:N (GPUs x workers per GPU : clips)")
    ap.add_argument("--fits", type=int, default=0)
    ap.add_argument("--fit-minutes", type=float, default=5.0)
    ap.add_argument("--fit-frames", type=int, default=300)
    ap.add_argument("--fit-gpus", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.run:
        clips = args.out / "clips"
        if not clips.exists():
            make_clips(clips, args.clips, args.seconds, args.speech)
        # one untimed run first: gsplat compiles its CUDA kernels on a machine's first use (about 75 s)
        subprocess.run([*BEING, "run", "--avatar", "splatting", "--size", str(args.size), "--input",
                        str(clips / "clip0000.wav"), "--out", str(args.out / "warmup.mp4"), "-q", "--overwrite"], check=True)
        for spec in args.run:
            shape, _, count = spec.partition(":")
            g, w = (int(x) for x in shape.split("x"))
            rows.append(render_row(args, clips, g, w, int(count or args.clips)))
        # efficiency: throughput on G GPUs over G times that on one GPU with the same workers per GPU
        one = {r["workers_per_gpu"]: r["frames_per_s"] for r in rows if r["gpus"] == 1}
        for r in rows:
            if r["workers_per_gpu"] in one:
                r["scaling_efficiency"] = round(r["frames_per_s"] / (one[r["workers_per_gpu"]] * r["gpus"]), 3)
    if args.fits:
        rows.append(fit_row(args))
    (args.out / "batch_scaling.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

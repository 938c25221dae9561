"""Rendering speed of the Gaussian rasterizer backends (a benchmark, not a test).

    python benchmarks/render_speed.py                       # CPU renderer; gsplat too when CUDA is there
    python benchmarks/render_speed.py --json out.json       # also write the figures as JSON
    python benchmarks/render_speed.py --skinning mypkg.mod:deform   # time per-frame Gaussians too

Scene: ``ellipsoid_shell_scene`` (a head-sized shell of flat Gaussians that fills most of the
frame, seen by ``shell_camera``). Each figure is the median of ``--repeats`` renders after
``--warmup`` renders, under ``torch.no_grad()``. CUDA timings synchronize before and after each
render. ``--skinning MODULE:FUNCTION`` names a callable ``f(frame: int, scene: dict) -> Tensor``
(new means [N,3]) or ``-> dict`` (replacement fields among means/quats/scales/opacities/colors);
it is called before every render and its time is part of the figure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from being_kernel.render.gaussians import (available_backends, ellipsoid_shell_scene, rasterize,  # noqa: E402
                                           shell_camera)

Skinning = Callable[[int, dict], "torch.Tensor | dict"]


def load_callable(spec: str) -> Skinning:
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--skinning expects MODULE:FUNCTION, got {spec!r}")
    return getattr(importlib.import_module(module), name)


def time_renders(scene: dict, size: int, backend: str, device: str, warmup: int, repeats: int,
                 skinning: Skinning | None = None) -> list[float]:
    cams = shell_camera(size, size, device=device)
    bg = torch.tensor([0.2, 0.25, 0.3], device=device)
    cuda = device.startswith("cuda")
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            frame = scene
            if skinning is not None:
                res = skinning(i, scene)
                frame = {**scene, **(res if isinstance(res, dict) else {"means": res})}
            rasterize(**frame, cameras=cams, background=bg, backend=backend)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return times


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or "",
            "cpu_threads": torch.get_num_threads(), "os_cpus": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import gsplat

        info["gsplat"] = gsplat.__version__
    except Exception:  # noqa: BLE001
        pass
    return info


def main(argv: list[str] | None = None, skinning: Skinning | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--counts", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    p.add_argument("--cpu-sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--gpu-sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU renderer on CPU")
    p.add_argument("--no-gpu", action="store_true", help="skip everything on CUDA")
    p.add_argument("--torch-on-cuda", action="store_true", help="also time backend='cpu' on CUDA tensors")
    p.add_argument("--skinning", default=None, help="MODULE:FUNCTION producing per-frame means (see above)")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.skinning:
        skinning = load_callable(args.skinning)

    runs = []
    if not args.no_cpu:
        runs += [("cpu", "cpu", s) for s in args.cpu_sizes]
    if not args.no_gpu and torch.cuda.is_available():
        if "gsplat" in available_backends():
            runs += [("gsplat", "cuda", s) for s in args.gpu_sizes]
        else:
            print("gsplat is not importable: skipping it (pip install gsplat)", file=sys.stderr)
        if args.torch_on_cuda:
            runs += [("cpu", "cuda", s) for s in args.gpu_sizes]

    results = []
    for n in args.counts:
        scenes = {}
        for backend, device, size in runs:
            scene = scenes.setdefault(device, ellipsoid_shell_scene(n, device=device))
            times = time_renders(scene, size, backend, device, args.warmup, args.repeats, skinning)
            med = statistics.median(times)
            rec = {"renderer": "ours (torch)" if backend == "cpu" else "gsplat", "backend": backend, "device": device,
                   "size": size, "gaussians": n, "median_ms": med * 1e3, "min_ms": min(times) * 1e3,
                   "fps": 1.0 / med, "repeats": len(times), "skinning": bool(skinning)}
            results.append(rec)
            print(f"{rec['renderer']:>13} {device:>4} {size:>5}² {n:>7} Gaussians: {rec['median_ms']:8.2f} ms "
                  f"(min {rec['min_ms']:.2f})  {rec['fps']:7.1f} fps", flush=True)

    info = machine()
    print(f"\nMachine: {info.get('cpu', '?')}, {info['cpu_threads']} torch threads"
          + (f"; GPU: {info['gpu']}" if "gpu" in info else "") + f"; torch {info['torch']}"
          + (f"; gsplat {info['gsplat']}" if "gsplat" in info else ""))
    print("\n| renderer | device | image | Gaussians | median ms | fps |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['renderer']} | {r['device']} | {r['size']}×{r['size']} | {r['gaussians']:,} | "
              f"{r['median_ms']:.1f} | {r['fps']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()

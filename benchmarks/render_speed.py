"""Rendering speed of the Gaussian rasterizer backends (a benchmark, not a test).

    python benchmarks/render_speed.py                  # CPU renderer; gsplat too when CUDA is there
    python benchmarks/render_speed.py --json out.json  # also write the figures as JSON
    python benchmarks/render_speed.py --scene shell    # a static ellipsoid shell, rasterization only

Scene ``head`` (default): N Gaussians on the procedural demo head's surface (``MeshGaussians``),
and every frame skins the head with new motion (``FlameModel``: jaw, expression, head rotation),
poses the Gaussians on the skinned mesh and rasterizes them, all inside the timed region, seen by
``portrait_camera``. Scene ``shell``: ``ellipsoid_shell_scene``, rasterization alone. Each figure
is the median of ``--repeats`` frames after ``--warmup`` frames, under ``torch.no_grad()``; CUDA
timings synchronize before and after each frame.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from being_kernel.head.demo_head import build_demo_head, expression_vector, portrait_camera  # noqa: E402
from being_kernel.head.flame import FlameModel  # noqa: E402
from being_kernel.cameras import Cameras  # noqa: E402
from being_kernel.render.gaussians import (available_backends, ellipsoid_shell_scene, rasterize,  # noqa: E402
                                           shell_camera)
from being_kernel.render.surface import MeshGaussians  # noqa: E402
from being_kernel.types import DEMO_HEAD, Motion  # noqa: E402

Frames = Callable[[int], dict]  # frame number -> rasterize() keyword arguments


def head_scene(n: int, size: int, device: str) -> tuple[Frames, Cameras]:
    """Per-frame skinning of the demo head and posing of N surface Gaussians on it."""
    data = build_demo_head()
    model = FlameModel(data).to(device)
    g = MeshGaussians.from_textured_mesh(torch.from_numpy(data.v_template).float(), torch.from_numpy(data.faces),
                                         torch.from_numpy(data.uv_coords).float(), torch.from_numpy(data.uv_faces),
                                         torch.from_numpy(data.texture).float(), n, seed=0).to(device)
    smile = torch.from_numpy(expression_vector(lip_corner_up_L=1.0, lip_corner_up_R=1.0)).to(device)

    def frame(i: int) -> dict:
        m = Motion.zeros(1, data.n_expression, space=DEMO_HEAD, device=device)
        phase = 2 * math.pi * i / 25
        m.jaw[0, 0], m.global_rot[0, 1] = 0.15 * (1 + math.sin(phase)), 0.3 * math.sin(phase / 3)
        m.expression[0] = 0.5 * (1 + math.cos(phase)) * smile
        means, quats, scales = g.pose(model(m).vertices)
        return {"means": means[0], "quats": quats[0], "scales": scales[0], "opacities": g.opacity, "colors": g.color}

    return frame, portrait_camera(size, device)


def shell_scene(n: int, size: int, device: str) -> tuple[Frames, Cameras]:
    scene = ellipsoid_shell_scene(n, device=device)
    return (lambda i: scene), shell_camera(size, size, device=device)


def time_renders(frames: Frames, cams: Cameras, backend: str, device: str, warmup: int, repeats: int) -> list[float]:
    bg = torch.tensor([0.2, 0.25, 0.3], device=device)
    cuda = device.startswith("cuda")
    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            rasterize(**frames(i), cameras=cams, background=bg, backend=backend)
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


def main(argv: list[str] | None = None) -> list[dict]:
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
    p.add_argument("--scene", choices=["head", "shell"], default="head", help="see above")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

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
        for backend, device, size in runs:
            frames, cams = (head_scene if args.scene == "head" else shell_scene)(n, size, device)
            times = time_renders(frames, cams, backend, device, args.warmup, args.repeats)
            med = statistics.median(times)
            rec = {"renderer": "ours (torch)" if backend == "cpu" else "gsplat", "backend": backend, "device": device,
                   "size": size, "gaussians": n, "median_ms": med * 1e3, "min_ms": min(times) * 1e3,
                   "fps": 1.0 / med, "repeats": len(times), "scene": args.scene}
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

"""Render speed of an avatar plugin with a trained (or built-in) avatar (a benchmark, not a test).

    python benchmarks/avatar_fps.py --avatar flash --path AVATAR --size 512 --batch 1,50 --json out.json
    python benchmarks/avatar_fps.py --avatar flash --path AVATAR --set precision=fp32

The renderer is built through the plugin registry as ``being run`` builds it, then renders
``--frames`` frames of random talking motion (jaw, expressions, head rotation) in its motion space
with ``batch_frames`` = each ``--batch`` value, after one untimed pass. The figure is frames /
seconds of ``render()`` with the device synchronised at both ends: skinning, the plugin's own work
(for flash the deformation network), rasterization and the output frames (which stay on the
device) are all inside it. Each figure is the median of ``--repeats`` passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import yaml

from being_kernel.api import Motion, Registry


def motion_for(info, frames: int, seed: int = 0) -> Motion:  # noqa: ANN001 - FlameRendererInfo
    g = torch.Generator().manual_seed(seed)
    m = Motion.zeros(frames, info.n_expression, space=info.motion_spaces[0])
    t = torch.linspace(0, 8, frames)
    m.jaw[:, 0] = 0.15 * (1 + torch.sin(7 * t)) / 2
    m.expression.copy_(0.3 * torch.randn(m.expression.shape, generator=g).clamp(-2, 2))
    m.global_rot[:, 1] = 0.2 * torch.sin(t)
    m.neck[:, 0] = 0.05 * torch.sin(0.7 * t)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", default="splatting")
    ap.add_argument("--path", default=None, help="avatar directory (avatar.path)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", default="1,50", help="batch_frames values, comma-separated")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="FIELD=VALUE of the avatar config (YAML value)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    spec = Registry.discover().spec("avatar", a.avatar)
    rows = []
    for batch in (int(b) for b in a.batch.split(",")):
        values = {"size": [a.size, a.size], "device": a.device, "batch_frames": batch,
                  **({"path": a.path} if a.path else {})}
        values.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)})
        r = spec.load_class()(spec.config(**values))
        m = motion_for(r.info(), a.frames)
        cuda = a.device.startswith("cuda")
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        r.render(m)  # warm-up (kernel builds, caches)
        times = []
        for _ in range(a.repeats):
            sync()
            t0 = time.perf_counter()
            r.render(m)
            sync()
            times.append(time.perf_counter() - t0)
        fps = a.frames / statistics.median(times)
        rows.append({"avatar": a.avatar, "path": a.path, "size": a.size, "device": a.device, "batch_frames": batch,
                     "config": values, "fps": round(fps, 1), "ms_per_frame": round(1000 / fps, 3),
                     "gaussians": getattr(getattr(r, "avatar", None), "num_gaussians", None),
                     "gpu": torch.cuda.get_device_name() if cuda else None})
        print(f"{a.avatar} {a.size}x{a.size} {a.device} batch {batch}: {fps:.1f} fps ({1000 / fps:.3f} ms/frame)",
              flush=True)
        r.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

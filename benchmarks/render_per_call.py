"""The splatting renderer on a GPU, one frame per call (a live session) and batched (``being run``),
beside gsplat's bare rasterization of the same posed Gaussians (a benchmark, not a test).

    python benchmarks/render_per_call.py --size 512 --frames 200 [--batches 1,8,16,32,64,128] [--json out.json]

* ``one frame per call``: ``render()`` of one motion frame, ``--frames`` calls back to back, the
  device synchronised at both ends of the run (time per frame = run time / frames); and the stages
  of one call each timed alone (motion to the device, skinning, posing, rasterization, output frames).
* ``batched``: ``render()`` of ``--frames`` frames with ``batch_frames`` = each ``--batches`` value.
* ``gsplat bare``: ``gsplat.rasterization`` of the demo avatar's Gaussians posed for the same motion
  (computed beforehand), one frame per call and in batches, nothing else timed.
Medians of ``--repeats`` runs after one untimed run; CUDA events.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from avatar_fps import motion_for  # noqa: E402 - the same talking motion as avatar_fps.py

from being_kernel.api import Registry, build_config  # noqa: E402


def timed(fn, repeats: int) -> float:  # noqa: ANN001
    """Median seconds of ``fn()`` over ``repeats`` runs after one untimed run (CUDA events)."""
    fn()
    out = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b) / 1e3)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--batches", default="1,8,16,32,64,128")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import gsplat
    from being_avatar_splatting import renderer as splatting

    reg = Registry.discover()
    spec = reg.spec("avatar", "splatting")

    cls = splatting.SplattingRenderer
    r = cls(build_config(spec.config, "avatar", {"size": [args.size, args.size], "device": "cuda"}))
    info = r.info()
    motion = motion_for(info, args.frames)
    n_gauss = r.gaussians.face_ids.numel()
    res: dict = {"gpu": torch.cuda.get_device_name(), "size": args.size, "gaussians": n_gauss, "frames": args.frames,
                 "gsplat": gsplat.__version__, "torch": torch.__version__}

    def per_call() -> None:
        with torch.no_grad():
            for i in range(args.frames):
                r.render(motion.slice(i, i + 1), i)

    res["one_per_call_ms"] = timed(per_call, args.repeats) / args.frames * 1e3

    # the stages of one call, each alone (frame 0)
    one = motion.slice(0, 1)
    dev_one = one.to(r.device)
    cams = r.cameras(1)
    with torch.no_grad():
        posed = r.model(dev_one, r.shape)
        means, quats, scales = r.gaussians.pose(posed.vertices)
    roots = posed.joints[:, 0]
    stages = {
        "motion to device": lambda: one.to(r.device),
        "skinning": lambda: r.model(dev_one, r.shape),
        "posing": lambda: r.gaussians.pose(posed.vertices),
        "rasterize (gsplat via the kernel)": lambda: splatting.rasterize(
            means, quats, scales, r.gaussians.opacity, r.gaussians.color, cams, background=None, backend="gsplat"),
    }
    img = stages["rasterize (gsplat via the kernel)"]()
    stages["output frames"] = lambda: splatting.gaussian_frames(img, roots, cams, dev_one, 0, r.cameras(1))
    with torch.no_grad():
        res["stages_ms"] = {k: timed(lambda f=f: [f() for _ in range(50)], args.repeats) / 50 * 1e3
                            for k, f in stages.items()}

    # gsplat bare on the same posed Gaussians: all frames posed beforehand
    with torch.no_grad():
        dm = motion.to(r.device)
        M, Q, S = r.gaussians.pose(r.model(dm, r.shape).vertices)
    op, col = r.gaussians.opacity, r.gaussians.color
    vm, K = cams.viewmats.float(), cams.K.float()
    kw = dict(width=args.size, height=args.size, near_plane=0.01, far_plane=1e3, eps2d=0.3, radius_clip=0.0,
              packed=False, tile_size=16, rasterize_mode="classic", render_mode="RGB+ED")

    def bare(batch: int) -> None:
        with torch.no_grad():
            for a in range(0, args.frames, batch):
                b = min(a + batch, args.frames)
                n = b - a
                if batch == 1:
                    gsplat.rasterization(M[a], Q[a], S[a], op, col, vm, K, **kw)
                else:
                    gsplat.rasterization(M[a:b], Q[a:b], S[a:b], op.expand(n, -1), col.expand(n, -1, -1),
                                         vm.expand(n, 1, 4, 4), K.expand(n, 1, 3, 3), **kw)

    res["gsplat_bare_ms"] = {}
    res["batched_ms"] = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        res["gsplat_bare_ms"][batch] = timed(lambda: bare(batch), args.repeats) / args.frames * 1e3
        rb = cls(build_config(spec.config, "avatar", {"size": [args.size, args.size], "device": "cuda",
                                                      "batch_frames": batch}))
        res["batched_ms"][batch] = timed(lambda: rb.render(motion), args.repeats) / args.frames * 1e3
    res["auto_batch"] = r.batch_frames
    res["auto_batch_ms"] = timed(lambda: r.render(motion), args.repeats) / args.frames * 1e3

    print(f"| {res['gpu']} | {args.size}² | {n_gauss} Gaussians | ms per frame (frames/s) |")
    print("| --- | --- | --- | --- |")
    f = lambda ms: f"{ms:.3f} ({1e3 / ms:,.0f})"  # noqa: E731
    print(f"| one frame per call, render() | | | {f(res['one_per_call_ms'])} |")
    for k, v in res["stages_ms"].items():
        print(f"| one call's stage: {k} | | | {v:.3f} |")
    for b in res["batched_ms"]:
        print(f"| batch {b}: render() | gsplat bare | | {f(res['batched_ms'][b])} / {f(res['gsplat_bare_ms'][b])} |")
    print(f"| batch_frames auto ({res['auto_batch']}) | | | {f(res['auto_batch_ms'])} |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

"""Quality and speed of the seam restorer (plugins/torso_restorer) against its base torsos.

Quality: `being eval`'s compositor evaluation (the frames' own heads on the held-out frames of a
full-frame dataset, whose poses lie outside the training range) for `static` (the dataset's scene:
its plate and the torso at rest), `restorer` over static, and, when given, `warp` and `restorer`
over warp; full-frame PSNR / SSIM / LPIPS (when its weights are on disk) and the same in the neck
band. Also one PNG of neck crops of three held-out frames (real | each torso), enlarged.

Speed, on heads already on the device, timed around whole calls with the device synchronised:
the restorer stage alone (band, crops, network, paste on composites already made, batched) and the
whole compositor (base composite + restorer), for each restorer given. Prints Markdown and JSON.

    python benchmarks/torso_restorer.py --data synth-ff --restorer my-restorer [--warp my-warp \
        --restorer-warp my-restorer-over-warp] --device cuda --image docs/images/torso-restorer.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def _quality(args: argparse.Namespace) -> tuple[list[dict], dict]:
    from being_kernel.evaluation import evaluate_compositor

    cells = [("static", "static", {"scene": str(Path(args.data) / "scene")}),
             ("restorer over static", "restorer", {"path": args.restorer})]
    if args.warp:
        cells.append(("warp fast", "warp", {"path": args.warp, "mode": "fast"}))
    if args.restorer_warp:
        cells.append(("restorer over warp fast", "restorer", {"path": args.restorer_warp}))
    rows, shown = [], {}
    for label, name, config in cells:
        pairs: list = []
        report = evaluate_compositor(name, config, args.data, args.device, band_px=args.band_px,
                                     on_frame=lambda real, out, p=pairs: p.append((real, out)))
        rows.append({"torso": label, "psnr": report.psnr, "ssim": report.ssim, "lpips": report.lpips,
                     "band_psnr": report.band_psnr, "band_ssim": report.band_ssim, "frames": len(report.frames),
                     "lpips_reason": report.lpips_reason})
        shown[label] = pairs
    return rows, shown


def _neck_crops(shown: dict, path: Path) -> None:
    """Three held-out frames (a quarter, half and three quarters through), one row each: real | each
    torso, each cropped to the neck (the middle half of the columns, rows 45-80 % of the height) and
    enlarged 2x."""
    import torch.nn.functional as F

    from being_kernel.media import write_png

    labels = list(shown)
    n = len(shown[labels[0]])
    rows = []
    for k in (n // 4, n // 2, 3 * n // 4):
        real = shown[labels[0]][k][0]
        h, w = real.shape[:2]
        tiles = [real] + [shown[lab][k][1] for lab in labels]
        crops = [t[int(0.45 * h):int(0.8 * h), w // 4: 3 * w // 4] for t in tiles]
        big = [F.interpolate(c.permute(2, 0, 1)[None], scale_factor=2, mode="nearest")[0].permute(1, 2, 0) for c in crops]
        rows.append(torch.cat(big, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, torch.cat(rows, 0).clamp(0, 1))


def _heads(data: str, batch: int, device: torch.device) -> list:
    from being_kernel.datasets import load_full_frames, load_tracked_video
    from being_kernel.evaluation import true_heads
    from being_kernel.head import FlameModel

    video = load_tracked_video(data)
    idx = torch.arange(len(video) - batch, len(video))
    ff = load_full_frames(video, frames=idx.tolist())
    motion, cams = video.motion.select(idx), video.cameras[idx]
    with torch.no_grad():
        joints = FlameModel(video.head())(motion, None).joints
    pix, depth = cams.project(joints)
    heads = true_heads(ff.image(idx), ff.head_mask(idx), idx, motion, cams, pix[:, 0], depth[:, 0])
    return [type(f)(f.image.to(device), f.index, f.pts, None, f.placement, f.head) for f in heads]


def _timed(fn, device: torch.device, repeats: int) -> float:  # noqa: ANN001 - a callable
    """Median seconds of ``fn()`` over ``repeats`` runs after two warm-ups."""
    times = []
    for r in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if r >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _speed(args: argparse.Namespace) -> list[dict]:
    from being_torso_restorer.compositor import RestorerTorso
    from being_torso_restorer.restore import restore
    from being_torso_restorer.spec import RestorerConfig

    dev = torch.device(args.device)
    heads = _heads(args.data, args.batch, dev)
    rows = []
    for label, path in (("over static", args.restorer), ("over warp fast", args.restorer_warp)):
        if not path:
            continue
        for half in ((True, False) if dev.type == "cuda" else (False,)):
            comp = RestorerTorso(RestorerConfig(path=path, device=args.device, batch_frames=args.batch, half=half))
            with torch.no_grad():
                frames, coverage = comp.base.composite_with_coverage(heads)
                image = torch.stack([f.image for f in frames])
                stage = _timed(lambda: restore(comp.net, image, coverage, comp.layout),
                               dev, args.repeats)
                base = _timed(lambda: comp.base.composite_with_coverage(heads), dev, args.repeats)
                whole = _timed(lambda: comp.composite(heads), dev, args.repeats)
            rows.append({"restorer": label, "half": half, "batch": args.batch, "size": list(comp.info().size),
                         "crop": list(comp.meta["crop"]), "stage_fps": args.batch / stage,
                         "base_fps": args.batch / base, "compositor_fps": args.batch / whole})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a full-frame dataset (being make-dataset synthetic --full-frame)")
    parser.add_argument("--restorer", required=True, help="a restorer over static trained on it")
    parser.add_argument("--warp", default=None, help="a warp torso trained on it (adds its row)")
    parser.add_argument("--restorer-warp", default=None, help="a restorer over that warp torso (adds its row)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--band-px", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32, help="frames per call for the speed figures")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=None, help="write the neck crops PNG here")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    out: dict = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
                 "threads": torch.get_num_threads()}
    if not args.no_quality:
        out["quality"], shown = _quality(args)
        if args.image:
            _neck_crops(shown, Path(args.image))
        print("| torso | PSNR dB | SSIM | LPIPS | neck-band PSNR dB | neck-band SSIM |\n| --- | --- | --- | --- | --- | --- |")
        for r in out["quality"]:
            lp = "—" if r["lpips"] is None else f"{r['lpips']:.4f}"
            print(f"| {r['torso']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {lp} | {r['band_psnr']:.2f} | {r['band_ssim']:.4f} |")
    out["speed"] = _speed(args)
    for r in out["speed"]:
        print(f"restorer {r['restorer']} ({'fp16' if r['half'] else 'fp32'}), {r['size'][0]}x{r['size'][1]}, crop "
              f"{r['crop'][0]}x{r['crop'][1]}, batches of {r['batch']}: restorer stage {r['stage_fps']:.1f} fps, "
              f"base {r['base_fps']:.1f} fps, whole compositor {r['compositor_fps']:.1f} fps")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Quality and compositor speed of the warped torso (plugins/torso_warp) against `static`.

Quality: `being eval`'s compositor evaluation (the frames' own heads, held-out frames of a
full-frame dataset) for `static` (with the dataset's scene: its background plate and the torso at
rest, the best a still torso can do), `warp` fast and `warp` full; full-frame PSNR / SSIM and the
same inside the neck band. Also a side-by-side PNG of one held-out frame (real | static | fast |
full) with the neck region enlarged below. Speed: the compositor alone, batched, on heads already
on the device (CUDA events / perf_counter around `composite`), per mode. Prints Markdown and JSON.

    python benchmarks/torso_warp.py --data synth-ff --torso my-torso --device cuda --image docs/images/torso-warp.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def _quality(data: str, torso: str, device: str, band_px: int, image: str | None) -> list[dict]:
    from being_kernel.evaluation import evaluate_compositor

    cells = [("static", {"scene": str(Path(data) / "scene")}), ("warp fast", {"path": torso, "mode": "fast"}),
             ("warp full", {"path": torso, "mode": "full"})]
    rows, shown = [], {}
    for label, config in cells:
        pairs: list = []
        report = evaluate_compositor(label.split()[0], config, data, device, band_px=band_px,
                                     on_frame=lambda real, out, p=pairs: p.append((real, out)))
        rows.append({"torso": label, "psnr": report.psnr, "ssim": report.ssim, "band_psnr": report.band_psnr,
                     "band_ssim": report.band_ssim, "frames": len(report.frames)})
        shown[label] = pairs
    if image:
        _side_by_side(shown, Path(image))
    return rows


def _side_by_side(shown: dict, path: Path) -> None:
    """The middle held-out frame: real | each torso, and below each its neck region (the middle
    third of the columns, rows from half to five sixths of the height) enlarged 3x."""
    import torch.nn.functional as F

    from being_kernel.media import write_png

    labels = list(shown)
    k = len(shown[labels[0]]) // 2
    real = shown[labels[0]][k][0]
    tiles = [real] + [shown[lab][k][1] for lab in labels]
    h, w = real.shape[:2]
    crop = lambda t: t[h // 2: h // 2 + h // 3, w // 3: 2 * w // 3]  # noqa: E731
    zoom = [F.interpolate(crop(t).permute(2, 0, 1)[None], size=(h, w), mode="nearest")[0].permute(1, 2, 0)
            for t in tiles]
    top, bottom = torch.cat(tiles, 1), torch.cat(zoom, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, torch.cat([top, bottom], 0).clamp(0, 1))


def _speed(data: str, torso: str, device: str, batch: int, repeats: int) -> list[dict]:
    from being_kernel.datasets import load_full_frames, load_tracked_video
    from being_kernel.evaluation import true_heads
    from being_kernel.head import FlameModel
    from being_torso_warp.compositor import WarpTorso
    from being_torso_warp.spec import WarpConfig

    video = load_tracked_video(data)
    idx = torch.arange(len(video) - batch, len(video))
    ff = load_full_frames(video, frames=idx.tolist())
    motion, cams = video.motion.select(idx), video.cameras[idx]
    with torch.no_grad():
        joints = FlameModel(video.head())(motion, None).joints
    pix, depth = cams.project(joints)
    heads = true_heads(ff.image(idx), ff.head_mask(idx), idx, motion, cams, pix[:, 0], depth[:, 0])
    dev = torch.device(device)
    heads = [type(f)(f.image.to(dev), f.index, f.pts, None, f.placement, f.head) for f in heads]
    rows = []
    for mode in ("fast", "full"):
        comp = WarpTorso(WarpConfig(path=torso, mode=mode, device=device, batch_frames=batch))
        times = []
        for r in range(repeats + 2):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            comp.composite(heads)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if r >= 2:
                times.append(time.perf_counter() - t0)
        rows.append({"mode": mode, "batch": batch, "size": list(comp.info().size),
                     "fps": batch / statistics.median(times)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a full-frame dataset (being make-dataset synthetic --full-frame)")
    parser.add_argument("--torso", required=True, help="the warp torso trained on it (being fit --torso warp)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--band-px", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16, help="frames per composite call for the speed figure")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--image", default=None, help="write the side-by-side PNG here")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    out = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
           "threads": torch.get_num_threads()}
    if not args.no_quality:
        out["quality"] = _quality(args.data, args.torso, args.device, args.band_px, args.image)
        print("| torso | PSNR dB | SSIM | neck-band PSNR dB | neck-band SSIM |\n| --- | --- | --- | --- | --- |")
        for r in out["quality"]:
            print(f"| {r['torso']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['band_psnr']:.2f} | {r['band_ssim']:.4f} |")
    out["speed"] = _speed(args.data, args.torso, args.device, args.batch, args.repeats)
    for r in out["speed"]:
        print(f"compositor {r['mode']}: {r['fps']:.1f} frames/s at {r['size'][0]}x{r['size'][1]}, batches of {r['batch']}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

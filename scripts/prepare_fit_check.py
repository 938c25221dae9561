"""Does ``being prepare``'s tracking train as good an avatar as the true tracking? (docs/prepare.md)

    .venv/bin/python scripts/prepare_fit_check.py --frames 300 --size 512 --steps 3000 --device cuda --out /tmp/check

1. renders the test video (being_prepare.testvideo: the demo head with known motion over a torso
   and a background, H.264 with audio);
2. ``being prepare`` on it (the focal length estimated, as for a user's video);
3. the same dataset with the true tracking written in: the same images and masks, the true head
   rotation and translation folded into the camera (as metrical-tracker stores them), the true
   expression, jaw, eyes and eyelids, and the demo head without a fitted identity;
4. ``being fit`` (splatting, the same steps and seed) on both, and ``being eval`` on the held-out
   frames of each. Prints one JSON line: the tracking errors, both held-out PSNRs and their gap.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from being_kernel.datasets import CHECKPOINT_DIR, SIDECAR, make_frame
from being_kernel.head import FlameModel, axis_angle_to_matrix, build_demo_head
from being_prepare.pipeline import PrepareOptions, prepare_video
from being_prepare.testvideo import GroundTruth, make_test_video, tracking_errors


def write_true_tracking(prepared: Path, out: Path, gt: GroundTruth) -> None:
    """``prepared`` copied to ``out`` with the true tracking in its checkpoints."""
    shutil.copytree(prepared, out, dirs_exist_ok=False)
    side = json.loads((out / SIDECAR).read_text())
    crop = side["generator"]["crop"]
    scale = crop["size"] / crop["side"]
    K_src = gt.camera.K[0].double().numpy()
    K = K_src.copy()
    K[:2, :2] *= scale
    K[0, 2], K[1, 2] = (K_src[0, 2] - crop["x0"]) * scale, (K_src[1, 2] - crop["y0"]) * scale
    m = gt.motion
    with torch.no_grad():  # FLAME turns the head about its root joint J0: x -> R0 (x - J0) + J0 + tr
        root = FlameModel(build_demo_head())(m).joints[:, 0].double()  # = J0 + tr
    R0 = axis_angle_to_matrix(m.global_rot.double())
    J0 = root - m.translation.double()
    Rc, tc = gt.camera.R[0].double(), gt.camera.t[0].double()
    R = Rc @ R0
    t = (Rc @ (J0 - (R0 @ J0[..., None])[..., 0] + m.translation.double())[..., None])[..., 0] + tc
    n = lambda x: x.double().numpy()  # noqa: E731
    for path in sorted((out / CHECKPOINT_DIR).glob("*.frame")):
        k = int(path.stem)
        torch.save(make_frame(exp=n(m.expression[k]), shape=np.zeros(0), jaw=n(m.jaw[k]), eyes=n(m.eyes[k]),
                              eyelids=n(m.eyelids[k]), R=n(R[k]), t=n(t[k]), K=K, width=crop["size"],
                              height=crop["size"], frame_id=path.stem), path)
    side["head_model"] = "demo"
    side["generator"]["tracking"] = "ground truth (scripts/prepare_fit_check.py)"
    (out / SIDECAR).write_text(json.dumps(side, indent=2) + "\n")
    shutil.rmtree(out / "head_model", ignore_errors=True)


def fit_and_eval(data: Path, out: Path, steps: int, device: str) -> float:
    being = [sys.executable, "-m", "being_kernel.cli"]
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(being + ["fit", "--data", str(data), "--out", str(out / "avatar"), "--work", str(out / "work"),
                            "--set", f"fit.steps={steps}", "--device", device, "--seed", "0", "-q"], check=True)
    subprocess.run(being + ["eval", str(out / "avatar"), "--data", str(data), "--out", str(out / "eval"),
                            "--device", device, "-q"], check=True)
    return float(json.loads((out / "eval" / "report.json").read_text())["psnr"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    start = time.perf_counter()
    gt = make_test_video(args.out / "talk.mp4", frames=args.frames)
    video_s = time.perf_counter() - start
    summary = prepare_video(args.out / "talk.mp4", args.out / "prepared",
                            PrepareOptions(size=args.size, device=args.device, overwrite=True, progress=False),
                            say=lambda s: print(s, file=sys.stderr))
    write_true_tracking(args.out / "prepared", args.out / "true", gt)
    errors = tracking_errors(args.out / "prepared", gt)
    psnr_prepared = fit_and_eval(args.out / "prepared", args.out / "fit_prepared", args.steps, args.device)
    psnr_true = fit_and_eval(args.out / "true", args.out / "fit_true", args.steps, args.device)
    print(json.dumps({"frames": args.frames, "size": args.size, "steps": args.steps, "tracking_errors": errors,
                      "focal_source_px": summary.focal_source_px, "focal_true_px": float(gt.camera.K[0, 0, 0]),
                      "prepare_seconds": summary.seconds, "video_seconds": video_s,
                      "psnr_prepared": psnr_prepared, "psnr_true": psnr_true, "gap_db": psnr_true - psnr_prepared}))


if __name__ == "__main__":
    main()

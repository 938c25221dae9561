"""``being make-dataset``: write datasets (for now the synthetic benchmark dataset)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..errors import Interrupted
from .main import app
from .options import overwrite_option, quiet_option, say

make_dataset = typer.Typer(help="Make datasets for training and evaluating avatars.", no_args_is_help=True)
app.add_typer(make_dataset, name="make-dataset")


@make_dataset.command("synthetic")
def synthetic(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory to create (metrical-tracker layout)."),
    size: int = typer.Option(512, "--size", min=16, help="Image width and height in pixels."),
    frames: int = typer.Option(660, "--frames", min=2, help="Number of frames (25 fps)."),
    test_frames: int = typer.Option(60, "--test-frames", min=1, help="How many last frames are held out for testing."),
    seed: int = typer.Option(0, "--seed", help="Seed of the motion sequence."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when there is a GPU), cpu, cuda or cuda:N."),
    supersample: int = typer.Option(3, "--supersample", min=1, help="Samples per pixel side of the mesh renderer."),
    full_frame: bool = typer.Option(False, "--full-frame", help="Head, neck and shoulders that follow it, over a "
                                    "background, one fixed camera; person/head/torso masks, the plate and a scene "
                                    "(for torso methods). Held-out frames in poses outside the training range."),
    overwrite: bool = overwrite_option("Replace OUT if it exists and is not empty."),
    quiet: bool = quiet_option(),
) -> None:
    """Render the demo head over a varied motion sequence into a metrical-tracker dataset.

    The reference mesh renderer draws the procedural demo head over expressions, jaw, gaze, blinks
    and head pose; the held-out frames use expression combinations that training never shows. With
    --full-frame, the whole frame with a torso (docs/datasets.md#the-full-frame-synthetic-dataset).

    Example: being make-dataset synthetic --out data/synthetic --size 512 --frames 660
    """
    from ..datasets.synthetic import make_synthetic

    if test_frames >= frames:
        raise typer.BadParameter(f"must be below --frames ({frames})", param_hint="--test-frames")
    start = time.perf_counter()
    try:
        path = make_synthetic(out, size=size, frames=frames, test_frames=test_frames, seed=seed, device=device,
                              supersample=supersample, full_frame=full_frame, overwrite=overwrite,
                              progress=not quiet)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; nothing was written to {out}") from None
    seconds = time.perf_counter() - start
    say(quiet)(f"wrote {frames} frames ({size}x{size}, {test_frames} held out) to {path} in {seconds:.1f} s "
               f"({seconds / frames:.2f} s per frame)")

"""``being prepare``: registered through the kernel's ``being_cli_commands`` hook (entry point
``being.hooks`` -> ``prepare``). Imported whenever ``being`` starts, so it imports nothing heavy."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from being_kernel import Interrupted
from being_kernel.hooks import hookimpl


@hookimpl
def being_cli_commands(app: typer.Typer) -> None:
    """Add ``being prepare`` and ``being avatar from-photo`` to the CLI."""
    app.command("prepare")(prepare)
    avatar = typer.Typer(help="Make avatars.", no_args_is_help=True)
    avatar.command("from-photo")(from_photo)
    app.add_typer(avatar, name="avatar")


def prepare(
    video: Path = typer.Argument(..., help="The video: mp4, mov, webm or anything FFmpeg reads, any fps; rotation "
                                 "metadata is honoured; its audio track becomes audio.wav. Or a photo (jpg, png, "
                                 "webp, tiff, bmp; EXIF orientation honoured): a one-frame dataset with its scene "
                                 "(background plate, torso layer) for being avatar from-photo and --torso static."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset directory to create (metrical-tracker layout)."),
    start: Optional[float] = typer.Option(None, "--start", min=0, help="Seconds into the video to start at."),
    end: Optional[float] = typer.Option(None, "--end", min=0, help="Seconds into the video to stop at."),
    fps: Optional[float] = typer.Option(None, "--fps", min=1, help="Frame rate of the dataset (frames are picked "
                                        "by time). Default: the video's."),
    size: int = typer.Option(512, "--size", min=64, help="Side of the square crop around the head, in pixels."),
    full_frame: bool = typer.Option(False, "--full-frame", help="Crop with room for neck and shoulders (for torso "
                                    "methods); alpha/ then holds the whole person."),
    focal: Optional[float] = typer.Option(None, "--focal", min=1, help="The camera's focal length in pixels of the "
                                          "video frame. Default: estimated, starting from 0.8 x the long side."),
    face: Optional[int] = typer.Option(None, "--face", min=0, help="Which face to follow when several are in view: "
                                       "0 is the largest (the default), 1 the next ..."),
    head_model: str = typer.Option("auto", "--head-model", help="auto (FLAME 2020 when found, else the demo head), "
                                   "demo, flame2020, flame2023, or a FLAME .pkl."),
    embedding: Optional[Path] = typer.Option(None, "--embedding", help="The mediapipe landmark embedding of the head "
                                             "model (MICA's mediapipe_landmark_embedding.npz); built in for the "
                                             "demo head, found beside the FLAME file otherwise."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when there is a GPU), cpu, cuda or cuda:N: "
                               "where the tracking runs."),
    photometric: bool = typer.Option(True, "--photometric/--landmarks-only", help="Refine the landmark fit against "
                                     "the pixels (slower, more accurate)."),
    epochs: Optional[float] = typer.Option(None, "--photometric-epochs", min=0.5, help="How many times the "
                                           "photometric stage sees each frame at each resolution. Default: 6 on a "
                                           "GPU, 3 on the CPU."),
    drop_failed: bool = typer.Option(False, "--drop-failed", help="Leave out frames with no face or a jumping fit "
                                     "(default: their tracking is interpolated from the neighbours)."),
    test_frames: Optional[int] = typer.Option(None, "--test-frames", min=0, help="Held-out frames at the end. "
                                              "Default: 10%."),
    overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Write report/overlay.mp4 (the fitted mesh "
                                 "over the frames)."),
    overwrite: bool = typer.Option(False, "--overwrite", "--force", help="Replace OUT if it exists and is not empty."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars, notes or result line; warnings and "
                               "errors are still printed."),
) -> None:
    """A person's video or photo to a tracked, masked dataset that being fit reads.

    Landmarks (mediapipe's face mesh), a square crop around the head, person / head / mouth masks,
    a background plate, and a FLAME-format head fitted to every frame (camera, pose, expression,
    jaw, eyes, eyelids, identity), written as metrical-tracker output with a quality report. See
    docs/prepare.md.

    Example: being prepare me.mp4 --out data/me && being fit --data data/me --out my-avatar
    """
    from .pipeline import PrepareOptions, prepare_video

    opts = PrepareOptions(start=start, end=end, fps=fps, size=size, full_frame=full_frame, focal=focal, face=face,
                          head_model=head_model, embedding=None if embedding is None else str(embedding),
                          device=device, photometric=photometric, photometric_epochs=epochs, drop_failed=drop_failed,
                          test_frames=test_frames, overlay=overlay, overwrite=overwrite, progress=not quiet)
    note = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr))
    begin = time.perf_counter()
    try:
        summary = prepare_video(video, out, opts, say=lambda s: print(s, file=sys.stderr) if s.startswith("warning")
                                else note(s))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; nothing was written to {out}") from None
    seconds = time.perf_counter() - begin
    bad = len(summary.failed) + len(summary.jumps)
    note(f"wrote {summary.frames - len(summary.dropped)} frames ({size}x{size}, head model {summary.head_model}) to "
         f"{summary.out} in {seconds:.1f} s ({seconds / max(1, summary.frames):.2f} s per frame); landmark error "
         f"median {summary.reprojection_px_median:.2f} px; {bad} frame(s) without a face or with a jump "
         f"({'dropped' if drop_failed else 'interpolated'}); report in {summary.out / 'report'}")


def from_photo(
    photo: Path = typer.Argument(..., help="A photo of one face (jpg, png, webp, ...; EXIF orientation is honoured)."),
    out: Path = typer.Option(..., "--out", "-o", help="Avatar directory to write."),
    avatar: str = typer.Option("splatting", "--avatar", help="Avatar plugin to train (one that trains from a "
                               "tracked video)."),
    size: int = typer.Option(512, "--size", min=64, help="Side of the square crop around the head, in pixels."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Training steps (default: the plugin's for "
                                        "one view)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Keep the prepared dataset here (default: a "
                                        "temporary directory, removed)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when there is a GPU), cpu, cuda or cuda:N."),
    overwrite: bool = typer.Option(False, "--overwrite", "--force", help="Replace OUT (and --data) if they exist."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notes; errors are still printed."),
) -> None:
    """A photo to a talking-head avatar: being prepare + being fit with the defaults for one view,
    then how closely the avatar gives the photo back and OUT/preview.png.

    Example: being avatar from-photo me.jpg --out my-avatar && being run --avatar splatting
    --set avatar.path=my-avatar --torso static --input speech.wav --out talk.mp4
    """
    from .photo_avatar import from_photo as make

    note = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr))
    begin = time.perf_counter()
    try:
        path, fit = make(photo, out, plugin=avatar, size=size, device=device, steps=steps, data=data,
                         overwrite=overwrite, progress=not quiet, say=note)
    except (KeyboardInterrupt, Interrupted):
        raise Interrupted(f"interrupted; nothing was written to {out}") from None
    note(f"wrote {path} in {time.perf_counter() - begin:.0f} s; in the photo's pose the face is re-rendered at "
         f"{fit.psnr_db:.1f} dB PSNR, SSIM {fit.ssim:.3f} ({fit.neutral_psnr_db:.1f} dB with a neutral face); "
         f"preview: {path / 'preview.png'}")
    note(f"drive it: being run --avatar {avatar} --set avatar.path={path} --torso static --out talk.mp4")

"""``being eval``: an avatar's PSNR, SSIM and LPIPS on a tracked video's held-out frames, a
side-by-side video (ground truth | render) and a JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from tqdm import tqdm

from .main import app

if TYPE_CHECKING:
    import torch


@app.command("eval")
def eval_(
    avatar_path: Path = typer.Argument(..., help="Avatar directory (e.g. written by 'being fit')."),
    data: Path = typer.Option(..., "--data", "-d", help="Tracked video it was fitted to (docs/datasets.md)."),
    avatar: str = typer.Option("splatting", "--avatar", help="Avatar plugin that renders it."),
    set_: list[str] = typer.Option([], "--set", help="Avatar config, avatar.FIELD=VALUE (e.g. avatar.backend=cpu)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report directory (default: AVATAR.eval): "
                                       "report.json, comparison.mp4."),
    device: str = typer.Option("auto", "--device", help='"auto", "cpu", "cuda" or "cuda:N".'),
    format: str = typer.Option("auto", "--format", help="Dataset format: auto, metrical, insta or imavatar."),
    head_model: Optional[str] = typer.Option(None, "--head-model", help="Override the dataset's head model."),
    test_frames: Optional[int] = typer.Option(None, "--test-frames", min=0, help="Held-out last frames "
                                              "(default: the dataset's, else 10%)."),
    all_frames: bool = typer.Option(False, "--all-frames", help="Evaluate every frame, not only held-out ones."),
    no_video: bool = typer.Option(False, "--no-video", help="Skip the side-by-side video."),
) -> None:
    """Evaluate an avatar on held-out frames: PSNR, SSIM, LPIPS (when its weights are on disk).

    Example: being eval my-avatar --data synth
    """
    from .. import config as cfg
    from ..evaluate import evaluate_avatar
    from ..media import Mp4Writer, check_output_dir
    from ..media.images import to_uint8

    values = cfg.parse_sets(set_, ("avatar",)).get("avatar", {})
    values["path"] = str(avatar_path)
    out = check_output_dir(out or avatar_path.with_name(avatar_path.name + ".eval"), force=True)
    report_path = out / "report.json"
    writer: list[Mp4Writer] = []  # opened on the first frame, when the size is known

    def on_frame(truth: torch.Tensor, pred: torch.Tensor) -> None:
        pair = _side_by_side(truth, pred)
        if not writer:
            out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
            writer.append(Mp4Writer(out / "comparison.mp4", 25, (pair.shape[1], pair.shape[0])))
        writer[0].write(to_uint8(pair))

    try:
        with tqdm(unit="frame", desc="being eval", leave=False) as bar:
            report = evaluate_avatar(avatar, values, data, device, format=format, head_model=head_model,
                                     test_frames=test_frames, all_frames=all_frames,
                                     on_frame=None if no_video else on_frame, progress=bar.update)
        if writer:
            writer[0].finish()
    except BaseException:
        for w in writer:
            w.abort()
        raise
    out.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.to_json())
    lp = f"{report.lpips:.4f}" if report.lpips is not None else "n/a (no LPIPS weights on disk: see docs/metrics.md)"
    typer.echo(f"{len(report.frames)} frames of {report.data}: PSNR {report.psnr:.2f} dB  SSIM {report.ssim:.4f}  "
               f"LPIPS {lp}  render {report.render_fps:.1f} fps on {report.device}")
    typer.echo(f"wrote {report_path}" + ("" if no_video else f" and {out / 'comparison.mp4'}"))


def _side_by_side(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[H, W, 3] x 2 -> [H', 2W, 3], the height padded to even (H.264 yuv420p needs even sizes)."""
    import torch

    pair = torch.cat([a, b], dim=1)
    return torch.nn.functional.pad(pair, (0, 0, 0, 0, 0, pair.shape[0] % 2))

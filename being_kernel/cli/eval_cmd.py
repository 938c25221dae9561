"""``being eval``: an avatar's PSNR, SSIM and LPIPS on a tracked video's held-out frames, or a
compositor's on full frames (whole image and neck band); a side-by-side video and a JSON report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from tqdm import tqdm

from .main import app
from .options import check_device, overwrite_option, quiet_option, refuse_existing, say

if TYPE_CHECKING:
    import torch


@app.command("eval")
def eval_(
    avatar_path: Optional[Path] = typer.Argument(None, help="Avatar directory (e.g. written by 'being fit'). "
                                                 "With --torso and no avatar, the frames' own heads are used."),
    data: Path = typer.Option(..., "--data", "-d", help="Tracked video to compare with (docs/datasets.md)."),
    avatar: str = typer.Option("splatting", "--avatar", help="Avatar plugin that renders AVATAR_PATH."),
    torso: Optional[str] = typer.Option(None, "--torso", help="Score this compositor on full frames (whole image "
                                        "and neck band) instead of the avatar on head crops."),
    set_: list[str] = typer.Option([], "--set", help="Plugin config, avatar.FIELD=VALUE or torso.FIELD=VALUE."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report directory (default: AVATAR.eval, or "
                                       "TORSO.eval beside the data): report.json, comparison.mp4."),
    device: str = typer.Option("auto", "--device", help='"auto", "cpu", "cuda" or "cuda:N".'),
    format: str = typer.Option("auto", "--format", help="Dataset format: auto or a registered reader's name."),
    head_model: Optional[str] = typer.Option(None, "--head-model", help="Override the dataset's head model."),
    test_frames: Optional[int] = typer.Option(None, "--test-frames", min=0, help="Held-out last frames "
                                              "(default: the dataset's, else 10%)."),
    all_frames: bool = typer.Option(False, "--all-frames", help="Evaluate every frame, not only held-out ones."),
    band_px: int = typer.Option(8, "--band-px", min=1, help="With --torso: half-width of the neck band in pixels."),
    no_video: bool = typer.Option(False, "--no-video", help="Skip the side-by-side video."),
    overwrite: bool = overwrite_option("Replace the report.json (and comparison.mp4) of an earlier run in the "
                                       "report directory (else they are an error)."),
    quiet: bool = quiet_option(),
) -> None:
    """Evaluate an avatar on held-out frames (PSNR, SSIM, LPIPS when its weights are on disk), or with
    --torso a compositor on full frames (also inside the neck band).

    Examples: being eval my-avatar --data synth;  being eval --torso static --data synth
    """
    from .. import config as cfg
    from ..errors import ConfigError
    from ..evaluation import evaluate_avatar, evaluate_compositor
    from ..media import Mp4Writer, check_output_dir
    from ..media.images import to_uint8

    sets = cfg.parse_sets(set_, ("avatar", "torso"))
    avatar_values = sets.get("avatar", {})
    if avatar_path is not None:
        avatar_values["path"] = str(avatar_path)
    if torso is None and avatar_path is None:
        raise ConfigError("give an avatar directory to evaluate, or --torso NAME to score a compositor")
    default_out = (avatar_path.with_name(avatar_path.name + ".eval") if avatar_path is not None and torso is None
                   else data.with_name(f"{data.name}.{torso}.eval"))
    device = check_device(device)
    out = check_output_dir(out or default_out, force=True)  # a directory of other files is fine: two names are written
    report_path = out / "report.json"
    written = [report_path] + ([] if no_video else [out / "comparison.mp4"])
    replacing = [p for p in written if p.exists()]
    for p in replacing:
        refuse_existing(p, overwrite)
    echo = say(quiet)
    writer: list[Mp4Writer] = []  # opened on the first frame, when the size is known

    def on_frame(truth: torch.Tensor, pred: torch.Tensor) -> None:
        pair = _side_by_side(truth, pred)
        if not writer:
            out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
            writer.append(Mp4Writer(out / "comparison.mp4", 25, (pair.shape[1], pair.shape[0])))
        writer[0].write(to_uint8(pair))

    common = dict(format=format, head_model=head_model, test_frames=test_frames, all_frames=all_frames,
                  on_frame=None if no_video else on_frame)
    try:
        with tqdm(unit="frame", desc="being eval", leave=False, disable=quiet) as bar:
            if torso is None:
                report = evaluate_avatar(avatar, avatar_values, data, device, progress=bar.update, **common)
            else:
                report = evaluate_compositor(torso, sets.get("torso", {}), data, device, band_px=band_px,
                                             avatar_plugin=avatar if avatar_path is not None else None,
                                             avatar_config=avatar_values, progress=bar.update, **common)
        if writer:
            writer[0].finish()
    except BaseException:
        for w in writer:
            w.abort()
        raise
    out.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.to_json())
    lp = f"{report.lpips:.4f}" if report.lpips is not None else "n/a (no LPIPS weights on disk: see docs/metrics.md)"
    line = f"{len(report.frames)} frames of {report.data}: PSNR {report.psnr:.2f} dB  SSIM {report.ssim:.4f}  LPIPS {lp}"
    if torso is None:
        line += f"  render {report.render_fps:.1f} fps on {report.device}"
    else:
        line += (f"; neck band ({report.band_px} px) PSNR {report.band_psnr:.2f} dB  SSIM {report.band_ssim:.4f}; "
                 f"heads: {report.heads}; composite {report.composite_fps:.1f} fps on {report.device}")
    echo(line)
    echo(f"wrote {report_path}" + ("" if no_video else f" and {out / 'comparison.mp4'}")
         + ("; replaced the files that were there (--overwrite)" if replacing else ""))


def _side_by_side(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[H, W, 3] x 2 -> [H', 2W, 3], the height padded to even (H.264 yuv420p needs even sizes)."""
    import torch

    pair = torch.cat([a, b], dim=1)
    return torch.nn.functional.pad(pair, (0, 0, 0, 0, 0, pair.shape[0] % 2))

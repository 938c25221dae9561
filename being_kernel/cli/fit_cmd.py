"""``being fit``: train an avatar plugin on a tracked monocular video (see docs/training.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .main import app


@app.command("fit")
def fit(
    data: Path = typer.Option(..., "--data", "-d", help="Tracked video: a metrical-tracker, INSTA or IMavatar "
                                                         "directory (docs/datasets.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Avatar directory to write (when training ends)."),
    avatar: str = typer.Option("splatting", "--avatar", help="Avatar plugin to train (one with a trainer)."),
    set_: list[str] = typer.Option([], "--set", help="Trainer config, fit.FIELD=VALUE, e.g. fit.steps=3000 or "
                                                      "fit.max_minutes=10. Repeatable; wins over --config. "
                                                      "Fields: 'being plugins --json'."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML or YAML file with a table named fit."),
    format: str = typer.Option("auto", "--format", help="Dataset format: auto, metrical, insta or imavatar."),
    head_model: Optional[str] = typer.Option(None, "--head-model", help="Head model the tracking used: demo, "
                                             "flame2020, flame2023 or a path. Default: the dataset's, else flame2020."),
    test_frames: Optional[int] = typer.Option(None, "--test-frames", min=0,
                                              help="Hold out this many last frames (default: the dataset's, else 10%)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Checkpoints, previews and logs (default: OUT.fit)."),
    restart: bool = typer.Option(False, "--restart", help="Ignore a checkpoint in --work and start over."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it already exists."),
) -> None:
    """Fit an avatar to a tracked video; interrupted runs resume from their checkpoint.

    Example: being make-dataset synthetic --out synth && being fit --data synth --out my-avatar
    """
    from .. import config as cfg
    from ..datasets import load_tracked_video
    from ..discovery import Registry
    from ..errors import ConfigError
    from ..media import check_output_dir

    out = check_output_dir(out, force=force)
    registry = Registry.discover()
    spec = registry.spec("avatar", avatar)
    if spec.trainer is None or spec.fit_config is None:
        trainable = [r.name for r in registry.of("avatar") if r.ok and r.spec and r.spec.trainer]
        raise ConfigError(f"--avatar {avatar} cannot be trained (its plugin has no trainer)",
                          hint=f"trainable avatar plugins: {', '.join(trainable) or 'none installed'}")
    values = cfg.merge(cfg.load_file(config, ("fit",)) if config else {}, cfg.parse_sets(set_, ("fit",)))
    fit_config = cfg.build(spec.fit_config, "fit", values.get("fit", {}))
    video = load_tracked_video(data, format=format, head_model=head_model, test_frames=test_frames)
    train, test = video.split()
    typer.echo(f"data: {video.root} ({video.format}, {len(video)} frames {video.cameras.width}x"
               f"{video.cameras.height}, {len(train)} for training, {len(test)} held out; head model {video.head_model})")
    work = work or out.with_name(out.name + ".fit")
    trainer = spec.load_trainer()
    summary = trainer(video, out, fit_config, work=work, resume=not restart, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"wrote {out}: {summary['gaussians']} Gaussians after {summary['steps']} steps in "
               f"{summary['train_seconds']:.0f} s; held-out PSNR {summary['test_psnr']:.2f} dB "
               f"(quick check; 'being eval {out} --data {data}' gives the full report). Work files: {work}")

"""``being fit``: train any trainable plugin (avatar, torso or audio) on a dataset with the kernel's
one training harness (see docs/training.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .main import app
from .options import field_option, field_values, overwrite_option, quiet_option, say


@app.command("fit")
def fit(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset: a tracked video (metrical-tracker, INSTA, "
                                                         "IMavatar or a registered reader's; docs/datasets.md)."),
    out: Path = typer.Option(..., "--out", "-o", help="Asset directory to write (when training ends)."),
    avatar: Optional[str] = typer.Option(None, "--avatar", help="Avatar plugin to train (default: splatting, when "
                                         "no --torso or --audio is given)."),
    torso: Optional[str] = typer.Option(None, "--torso", help="Torso plugin to train."),
    audio: Optional[str] = typer.Option(None, "--audio", help="Audio plugin to train."),
    set_: list[str] = typer.Option([], "--set", help="Trainer config, fit.FIELD=VALUE, e.g. fit.steps=3000 or "
                                                      "fit.max_minutes=10. Repeatable; wins over --config. "
                                                      "Fields: 'being plugins --json' (trainer.config_schema)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML or YAML file with a table named fit."),
    format: str = typer.Option("auto", "--format", help="Dataset format: auto or a registered reader's name "
                               "(metrical, insta, imavatar, ...)."),
    head_model: Optional[str] = typer.Option(None, "--head-model", help="Head model the tracking used: demo, "
                                             "flame2020, flame2023 or a path. Default: the dataset's, else flame2020."),
    test_frames: Optional[int] = typer.Option(None, "--test-frames", min=0,
                                              help="Hold out this many last frames (default: the dataset's, else 10%)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Checkpoints, previews, summary (default: OUT.fit)."),
    restart: bool = typer.Option(False, "--restart", help="Ignore a checkpoint in --work and start over."),
    seed: Optional[int] = field_option("--seed"),
    device: Optional[str] = field_option("--device"),
    overwrite: bool = overwrite_option("Replace --out if it already exists."),
    quiet: bool = quiet_option(),
) -> None:
    """Train a plugin on a dataset; interrupted runs (Ctrl-C) resume from their checkpoint.

    Example: being make-dataset synthetic --out synth && being fit --data synth --out my-avatar
    """
    from .. import config as cfg
    from ..discovery import Registry
    from ..errors import ConfigError
    from ..media import check_output_dir
    from ..train.plugin import fit_dataset, trainer_of

    chosen = [(c, n) for c, n in (("avatar", avatar), ("torso", torso), ("audio", audio)) if n]
    if len(chosen) > 1:
        raise ConfigError("give one of --avatar, --torso or --audio: one plugin is trained at a time")
    contract, name = chosen[0] if chosen else ("avatar", "splatting")
    out = check_output_dir(out, force=overwrite)
    spec = trainer_of(Registry.discover(), contract, name)
    options = field_values({"--seed": seed, "--device": device}, {"fit": spec.trainer.config},
                           {"fit": f"the trainer of --{contract} {name}"})
    # --config, then the options, then --set: the most explicit wins
    values = cfg.merge(cfg.merge(cfg.load_file(config, ("fit",)) if config else {}, options),
                       cfg.parse_sets(set_, ("fit",)))
    echo = say(quiet)
    work = work or out.with_name(out.name + ".fit")
    summary = fit_dataset(spec, contract, name, data, out, values, format=format, head_model=head_model,
                          test_frames=test_frames, work=work, restart=restart, log=lambda m: echo(m, err=True),
                          announce=echo, progress=not quiet)
    for line in summary.lines():
        echo(line)
    which = "" if contract != "avatar" or name == "splatting" else f" --avatar {name}"
    echo(f"work files: {work}; 'being eval {out}{which} --data {data}' gives the full report")

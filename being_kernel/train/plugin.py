"""Training a plugin by name on a dataset directory: what ``being fit`` does after parsing its
options, callable by other commands (``being avatar from-photo``) without going through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..config import Sections, build, merge
from ..errors import ConfigError
from .summary import FitSummary


def trainer_of(registry, contract: str, name: str):  # noqa: ANN001, ANN201 - Registry -> PluginSpec with a trainer
    """The spec of plugin ``--contract name``, checked to have a FitConfig trainer (ConfigError if not)."""
    from .config import FitConfig

    spec = registry.spec(contract, name)
    if spec.trainer is None:
        trainable = [f"--{r.contract} {r.name}" for c in ("avatar", "torso", "audio") for r in registry.of(c)
                     if r.ok and r.spec and r.spec.trainer]
        raise ConfigError(f"--{contract} {name} cannot be trained (its plugin has no trainer)",
                          hint=f"trainable plugins: {', '.join(trainable) or 'none installed'}")
    if not issubclass(spec.trainer.config, FitConfig):
        raise ConfigError(f"--{contract} {name}: its trainer config is not a being_kernel.train.FitConfig",
                          hint="this is a bug in the plugin; upgrade it")
    return spec


def fit_dataset(spec, contract: str, name: str, data: Path, out: Path, values: Sections, *,  # noqa: ANN001 - PluginSpec
                format: str = "auto", head_model: str | None = None, test_frames: int | None = None,
                work: Path | None = None, restart: bool = False, log: Callable[[str], None] = print,
                announce: Callable[[str], None] = print, progress: bool = True) -> FitSummary:
    """Train ``spec``'s trainer on the dataset at ``data`` into ``out`` (an unused or replaceable
    path: the caller checks). ``values``: {"fit": {field: value}} as the user gave them; the
    method's ``config_defaults`` for this dataset fill the fields they leave out. ``announce``
    says what is trained on; ``log`` carries the harness's messages."""
    from .data import load_fit_data
    from .loop import run_fit

    trainer = spec.trainer
    video = load_fit_data(trainer.dataset, data, format=format, head_model=head_model, test_frames=test_frames)
    suggested: dict[str, Any] = trainer.load_method().config_defaults(video)
    given = values.get("fit", {})
    fit_config = build(trainer.config, "fit", merge({"fit": suggested}, {"fit": given})["fit"])
    train, test = video.split()
    announce(f"data: {video.root} ({video.format}, {len(video)} frames {video.cameras.width}x"
             f"{video.cameras.height}, {len(train)} for training, {len(test)} held out; head model {video.head_model})")
    changed = {k: v for k, v in suggested.items() if k not in given}
    if changed:
        announce("this dataset's defaults: " + ", ".join(f"{k}={v}" for k, v in changed.items())
                 + " (--set fit.FIELD=VALUE to change)")
    work = work or out.with_name(out.name + ".fit")
    return run_fit(trainer, video, out, fit_config, work=work, resume=not restart, contract=contract,
                   method_name=name, log=log, progress=progress)

"""The protocol a trainable plugin implements; the harness (``loop.run_fit``) drives it.

A step, as the harness runs it::

    lr = method.learning_rates(ctx)                       # optional schedule, per group name
    out = method.render_batch(frame_indices, ctx)         # prediction and target images
    loss = photometric(out.pred, out.target) + sum(out.losses)
    loss.backward(); method.after_backward(out, ctx)      # e.g. gradient statistics
    optimizer.step(); method.after_step(ctx)              # e.g. walking, densification (surgery)

Resume replays nothing: the method's ``state_dict`` plus the harness's optimizer and random
state make an interrupted run continue exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .summary import FitStat

if TYPE_CHECKING:
    from .config import FitConfig
    from .loop import FitContext


@dataclass
class ParamGroup:
    """One optimizer group: ``name`` (unique), its tensor, base learning rate. ``per_row``: the
    tensor's first dimension is one row per primitive (a Gaussian), so surgery may change it.
    ``eps``: Adam's epsilon for this group (None: the method's ``adam_eps``)."""

    name: str
    param: torch.nn.Parameter
    lr: float
    per_row: bool = False
    eps: float | None = None


@dataclass
class TrainRender:
    """What a method renders for one training batch of B frames.

    pred, target: [B, H, W, 3] in [0, 1] (pred differentiable); the harness's photometric loss
                  compares them. losses: extra weighted terms the method adds (0-d tensors).
    aux: anything ``after_backward`` needs (e.g. means whose gradients feed densification)."""

    pred: torch.Tensor
    target: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    aux: dict[str, Any] = field(default_factory=dict)


class FitMethod(ABC):
    """A trainable method. Built as ``Cls(data, config, device, generator)`` where ``data`` is the
    dataset the spec's ``TrainerSpec.dataset`` kind names (a ``TrackedVideo`` for the three kinds
    so far), ``config`` the method's :class:`FitConfig`, and ``generator`` the harness's seeded
    CPU generator (use it for every random choice, so resume is exact).

    ``train_indices`` / ``test_indices`` ([N] int64 on ``device``): the frames to train on and the
    held-out frames. Exactly one of ``initialize`` (fresh run) or ``load_state_dict`` (resume) is
    called before training."""

    train_indices: torch.Tensor
    test_indices: torch.Tensor
    #: Adam's epsilon for this method's parameters (3DGS uses 1e-15: Gaussian parameters have tiny gradients).
    adam_eps: float = 1e-8

    @abstractmethod
    def initialize(self) -> None:
        """Create the parameters for a fresh run."""

    @abstractmethod
    def parameter_groups(self) -> list[ParamGroup]:
        """The trainable tensors, once per run (or resume): the harness builds Adam from them.
        Surgery later swaps rows in that optimizer itself (``select_and_extend``)."""

    @abstractmethod
    def render_batch(self, frames: torch.Tensor, ctx: FitContext) -> TrainRender:
        """Render training frames ``frames`` [B] (indices into the dataset) for one step."""

    @abstractmethod
    def render_eval(self, frames: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pred, target), each [B, H, W, 3], of frames ``frames`` [B] over ``background`` [B, 3],
        as the final model renders them: held-out PSNR and previews come from this."""

    @classmethod
    def config_defaults(cls, data: Any) -> dict[str, Any]:
        """Config values this dataset calls for (e.g. a shorter schedule for a single photo), by
        field name; ``being fit`` uses them for the fields the user does not set."""
        return {}

    def learning_rates(self, ctx: FitContext) -> dict[str, float]:
        """Learning rates by group name for this step (a schedule); groups not named keep theirs."""
        return {}

    def after_backward(self, out: TrainRender, ctx: FitContext) -> None:
        """Gradients are in place, the optimizer has not stepped."""

    def after_step(self, ctx: FitContext) -> None:
        """After the optimizer step (e.g. walking, or densification through
        ``being_kernel.train.select_and_extend`` on ``ctx.optimizer``)."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything but the optimizer: tensors, numbers, strings, lists and dicts of them only
        (the checkpoint loads with ``weights_only=True``)."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` gave (then ``parameter_groups`` must return the same groups)."""

    @abstractmethod
    def export(self, directory: Path, name: str) -> None:
        """Write the trained asset into the new, empty ``directory`` (the harness renames it to the
        user's ``--out``, whose last component is ``name``, only when this returns)."""

    def stats(self) -> tuple[FitStat, ...]:
        """The method's own figures for the summary and the progress bar (e.g. Gaussian count)."""
        return ()

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match, beyond the data and the config (e.g. a model file's hash)."""
        return {}


def split_indices(video: Any, device: torch.device, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) frame indices [N] int64 on ``device`` of a tracked video (``video.split()``); an
    InputError naming ``method`` when fewer than two frames are left to train on."""
    from ..errors import InputError

    train, test = video.split()
    if len(train) < 2:
        raise InputError(f"{video.root}: {len(train)} training frame(s); {method} needs a video",
                         hint="use more frames, or --test-frames smaller")
    return (torch.tensor(train, dtype=torch.int64, device=device), torch.tensor(test, dtype=torch.int64, device=device))


def adam(groups: list[ParamGroup], eps: float) -> torch.optim.Adam:
    """The optimizer the harness trains ``groups`` with: Adam, one named group per tensor."""
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"parameter group names must be unique, got {names}")
    return torch.optim.Adam([{"params": [g.param], "lr": g.lr, "name": g.name, "eps": eps if g.eps is None else g.eps}
                             for g in groups], eps=eps)


def build_method(target: type[FitMethod], data: Any, config: FitConfig, device: torch.device,
                 generator: torch.Generator) -> FitMethod:
    """``target(data, config, device, generator)``, checked to be a FitMethod."""
    if not (isinstance(target, type) and issubclass(target, FitMethod)):
        raise TypeError(f"{target!r} is not a being_kernel.train.FitMethod subclass")
    return target(data, config, device, generator)

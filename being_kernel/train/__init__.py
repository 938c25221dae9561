"""The one training harness (``being fit``): a method plugin implements :class:`FitMethod`; the
harness owns the loop, the optimizer, checkpoints and resume, interruption, time budgets,
previews, progress, atomic export and the typed :class:`FitSummary` (docs/training.md).

Importing this package stays light (pydantic only), so a plugin's spec module can import the base
config :class:`FitConfig`; the torch parts load on first use of their names.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..spec import DATASET_KINDS, DatasetKind, TrainerSpec
from .config import FitConfig
from .summary import FitStat, FitSummary

if TYPE_CHECKING:
    from .frames import FrameStore
    from .loop import FitContext, run_fit
    from .losses import PhotometricLoss, huber
    from .method import FitMethod, ParamGroup, TrainRender, adam, split_indices
    from .plugin import fit_dataset, trainer_of
    from .surgery import GradientStats, densify_candidates, select_and_extend
    from .tracking import PosedTracking, pose_tracking

_LAZY = {
    "FrameStore": "frames", "FitContext": "loop", "run_fit": "loop", "PhotometricLoss": "losses", "huber": "losses",
    "FitMethod": "method", "ParamGroup": "method", "TrainRender": "method", "adam": "method",
    "split_indices": "method",
    "GradientStats": "surgery", "densify_candidates": "surgery", "select_and_extend": "surgery",
    "fit_dataset": "plugin", "trainer_of": "plugin", "PosedTracking": "tracking", "pose_tracking": "tracking",
}

__all__ = ["DATASET_KINDS", "DatasetKind", "FitConfig", "FitStat", "FitSummary", "TrainerSpec", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

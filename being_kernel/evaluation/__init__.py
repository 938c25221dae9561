"""Evaluation for every contract against a tracked video (``being eval``, ``being bench --data``):
an avatar on held-out views (:func:`evaluate_avatar`), a compositor on full frames, whole image and
neck band (:func:`evaluate_compositor`). Lip timing of audio models is in ``being_kernel.metrics`` (``lip_gap``, ...).
"""

from .avatar import evaluate_avatar
from .band import dilate, neck_band
from .compositor import evaluate_compositor, true_heads
from .report import CompositeReport, EvalReport

__all__ = ["CompositeReport", "EvalReport", "evaluate_avatar", "dilate", "evaluate_compositor", "neck_band", "true_heads"]

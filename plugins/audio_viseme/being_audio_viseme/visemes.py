"""Viseme targets per head model: jaw opening (radians) plus expression weights."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .phones import VISEMES

#: Dominance (Cohen-Massaro style strength) of each viseme: how strongly it pulls the mouth
#: toward its own target against its neighbours. Lip consonants dominate; tongue consonants
#: (D T N L, K G) are weak, so the lips take the shape of the surrounding vowels.
DOMINANCE: dict[str, float] = {
    "SIL": 0.8, "PBM": 4.0, "FV": 2.5, "TH": 1.0, "DTNL": 0.5, "KG": 0.5, "SZ": 1.2, "SH": 2.0,
    "R": 1.2, "WOO": 2.0, "AA": 1.0, "EH": 1.0, "IY": 1.0, "AO": 1.5, "ER": 1.2,
}

#: The designed table for the kernel's demo head: viseme -> (jaw rad, {expression: weight}).
DEMO_TABLE: dict[str, tuple[float, dict[str, float]]] = {
    "SIL": (0.0, {}),
    "PBM": (0.0, {"lips_press": 0.6}),
    "FV": (0.02, {"lips_press": 0.3, "upper_lip_raise": 0.35}),
    "TH": (0.06, {"lips_part": 0.4}),
    "DTNL": (0.06, {"lips_part": 0.4}),
    "KG": (0.08, {"lips_part": 0.3}),
    "SZ": (0.025, {"lip_stretch_L": 0.3, "lip_stretch_R": 0.3, "lips_part": 0.5}),
    "SH": (0.04, {"lip_funnel": 0.7}),
    "R": (0.05, {"lip_funnel": 0.4, "lip_pucker": 0.2}),
    "WOO": (0.05, {"lip_pucker": 0.7, "lip_funnel": 0.3}),
    "AA": (0.22, {"lips_part": 0.3}),
    "EH": (0.15, {"lip_stretch_L": 0.3, "lip_stretch_R": 0.3, "upper_lip_raise": 0.2}),
    "IY": (0.07, {"lip_stretch_L": 0.6, "lip_stretch_R": 0.6, "lip_corner_up_L": 0.2,
                  "lip_corner_up_R": 0.2, "lips_part": 0.3}),
    "AO": (0.17, {"lip_funnel": 0.6}),
    "ER": (0.08, {"lip_funnel": 0.4}),
}


@dataclass
class HeadTable:
    """Everything the animator needs to know about one head model."""

    motion_space: str
    n_expression: int
    jaw: np.ndarray  # [K] per viseme (VISEMES order)
    expr: np.ndarray  # [K, E]
    blink: tuple[int, int] | None = None  # expression indices of eye_blink_L / _R, if any
    brow: tuple[int, int] | None = None  # expression indices of brow_raise_L / _R, if any
    source: str = "designed"
    meta: dict = field(default_factory=dict)

    def index(self, viseme: str) -> int:
        return VISEMES.index(viseme)


def demo_table() -> HeadTable:
    from being_kernel.api import DEMO_HEAD
    from being_kernel.head import DEMO_EXPRESSIONS, expression_vector

    jaw = np.array([DEMO_TABLE[v][0] for v in VISEMES], np.float32)
    expr = np.stack([expression_vector(**DEMO_TABLE[v][1]) for v in VISEMES]).astype(np.float32)
    return HeadTable(DEMO_HEAD, expr.shape[1], jaw, expr,
                     blink=(DEMO_EXPRESSIONS["eye_blink_L"], DEMO_EXPRESSIONS["eye_blink_R"]),
                     brow=(DEMO_EXPRESSIONS["brow_raise_L"], DEMO_EXPRESSIONS["brow_raise_R"]))

"""The kernel's procedural demo head: a stylized human head in the FLAME layout, no download needed.

``build_demo_head()`` returns a :class:`~being_kernel.head.data.HeadModelData` (cached; the same
object on every call, treat it as read-only) whose expression coefficients live in the motion
space ``"being-demo-head"``: 25 named, jaw-independent bases (``DEMO_EXPRESSIONS``), with
``expression_vector(lip_corner_up_L=1, ...)`` to build a coefficient vector by name. See
docs/demo-head.md for the geometry, the rig, the regions and the limits.

The code that builds it lives in ``being_kernel.head.demo`` (surface, geometry, texture, rig,
expressions).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..cameras import Cameras
from ..types import DEMO_HEAD
from .data import FLAME_PARENTS, HeadModelData
from .demo.expressions import EXPRESSIONS, NAMES
from .demo.geometry import build_geometry
from .demo.regions import build_regions
from .demo.rig import joint_regressor, lbs_weights
from .demo.texture import paint_texture

__all__ = ["DEMO_EXPRESSIONS", "EXPRESSIONS", "build_demo_head", "expression_vector", "portrait_camera"]

#: expression name -> index into the demo head's expression coefficients
DEMO_EXPRESSIONS: dict[str, int] = {name: i for i, name in enumerate(NAMES)}


def expression_vector(**weights: float) -> np.ndarray:
    """float32 [E] coefficients for the demo head with the named weights set, others 0.

    ``expression_vector(lip_corner_up_L=1, lip_corner_up_R=1)`` is a smile. Unknown names raise
    ValueError listing the known ones."""
    unknown = sorted(set(weights) - set(DEMO_EXPRESSIONS))
    if unknown:
        raise ValueError(f"unknown demo-head expression(s) {unknown}; known: {', '.join(NAMES)}")
    out = np.zeros(len(NAMES), dtype=np.float32)
    for name, w in weights.items():
        out[DEMO_EXPRESSIONS[name]] = w
    return out


@lru_cache(maxsize=1)
def build_demo_head() -> HeadModelData:
    """The demo head (deterministic; built once per process, in well under a second or two)."""
    from .demo.expressions import build_exprdirs

    g = build_geometry()
    lbs = lbs_weights(g)
    exprdirs, eyelid_dirs = build_exprdirs(g, lbs[:, 2])
    v = len(g.vertices)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    data = HeadModelData(
        v_template=f32(g.vertices),
        faces=g.faces.astype(np.int64),
        shapedirs=np.zeros((v, 3, 0), np.float32),
        exprdirs=f32(exprdirs),
        posedirs=np.zeros((v, 3, 36), np.float32),
        j_regressor=f32(joint_regressor(g)),
        lbs_weights=f32(lbs),
        motion_space=DEMO_HEAD,
        name="being-demo-head",
        parents=FLAME_PARENTS.copy(),
        eyelid_dirs=f32(eyelid_dirs),
        uv_coords=f32(g.uv_coords),
        uv_faces=g.uv_faces.astype(np.int64),
        texture=paint_texture(g),
        regions=build_regions(g, lbs),
        expression_names=list(NAMES),
    )
    data.validate()
    return data


def portrait_camera(size: int, device: torch.device | str = "cpu") -> Cameras:
    """A camera framing the demo head and neck, 0.62 m in front, 30° vertical field of view."""
    return Cameras.look_at(torch.tensor([0.0, -0.03, 0.62]), torch.tensor([0.0, -0.03, 0.0]),
                           torch.tensor([0.0, 1.0, 0.0]), 30.0, size, size).to(device)

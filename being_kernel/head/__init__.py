"""Head models in the FLAME layout: the array container (``HeadModelData``), skinning
(``FlameModel``), triangle geometry (``triangle_frames``), safe loaders and the own format
(``load_flame_pkl``, ``save_head_model``, ``load_head_model``), head-model references
(``resolve_head_model``) and the procedural demo head (``build_demo_head``). See
docs/head-model.md and docs/demo-head.md.

This module is the public surface; its submodules (``data``, ``flame``, ``geometry``, ``loaders``,
``refs``, ``demo_head``) are private."""

from .data import FLAME_PARENTS, JOINT_NAMES, HeadModelData
from .demo_head import DEMO_EXPRESSIONS, build_demo_head, expression_vector, portrait_camera
from .flame import FlameModel, FlameOutput, axis_angle_to_matrix
from .geometry import region, triangle_frames, vertex_normals
from .loaders import (UnsafePickleError, find_flame_model, load_flame_masks, load_flame_pkl, load_head_model,
                      save_head_model)
from .refs import FLAME_REFS, carry_head_model, check_binding, resolve_head_model

__all__ = [
    "HeadModelData", "FLAME_PARENTS", "JOINT_NAMES",
    "FlameModel", "FlameOutput", "axis_angle_to_matrix",
    "triangle_frames", "vertex_normals", "region",
    "find_flame_model", "load_flame_pkl", "load_flame_masks", "load_head_model", "save_head_model", "UnsafePickleError",
    "FLAME_REFS", "carry_head_model", "check_binding", "resolve_head_model",
    "DEMO_EXPRESSIONS", "build_demo_head", "expression_vector", "portrait_camera",
]

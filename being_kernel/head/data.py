"""A FLAME-format head model as plain arrays: what loaders produce and the skinning consumes.

Every FLAME-layout model (FLAME 2020, FLAME 2023, the procedural demo head) is one of these;
``being_kernel.head.flame.FlameModel`` turns it into posed vertices. ``V`` vertices, ``F``
triangles, ``J = 5`` joints (root/global, neck, jaw, left eye, right eye), ``S`` shape and
``E`` expression components.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: FLAME's kinematic tree: joint names in order, and each joint's parent (-1: none).
JOINT_NAMES = ("global", "neck", "jaw", "left_eye", "right_eye")
FLAME_PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)


@dataclass
class HeadModelData:
    """Arrays of a FLAME-layout head model (float32 unless stated; positions in metres).

    v_template   [V, 3]     neutral mesh
    faces        [F, 3]     int64 triangle vertex indices (counter-clockwise seen from outside)
    shapedirs    [V, 3, S]  identity blendshapes
    exprdirs     [V, 3, E]  expression blendshapes (meaning given by ``motion_space``)
    posedirs     [V, 3, P]  pose-corrective blendshapes, P = 9 x (J - 1), driven by
                            (R_j - I) of the non-root joints, row-major, joints in order
    j_regressor  [J, V]     joint locations as vertex weights (dense)
    parents      [J]        int64 kinematic tree, FLAME_PARENTS
    lbs_weights  [V, J]     skinning weights, rows sum to 1
    eyelid_dirs  [V, 3, 2]  optional FLAME 2023-style eyelid blendshapes (left, right)
    uv_coords    [Vt, 2]    optional texture coordinates in [0, 1], v up
    uv_faces     [F, 3]     optional int64 indices into uv_coords per triangle corner
    texture      [Ht, Wt, 3] optional albedo in [0, 1], row 0 is the top (v = 1)
    regions      name -> int64 vertex indices ("lips", "mouth_interior", "eyes", "face", "neck_boundary", ...)
    motion_space the id of the space its expression coefficients live in
    expression_names  optional names of the expression components (the demo head has them)
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    lbs_weights: np.ndarray
    motion_space: str
    name: str = "head"
    parents: np.ndarray = field(default_factory=lambda: FLAME_PARENTS.copy())
    eyelid_dirs: np.ndarray | None = None
    uv_coords: np.ndarray | None = None
    uv_faces: np.ndarray | None = None
    texture: np.ndarray | None = None
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    expression_names: list[str] | None = None

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expression(self) -> int:
        return int(self.exprdirs.shape[2])

    def validate(self) -> None:
        """Raise ValueError naming the first array whose shape or values are inconsistent."""
        v, j = self.num_vertices, len(self.parents)
        checks = {
            "v_template": (self.v_template.shape, (v, 3)),
            "shapedirs": (self.shapedirs.shape[:2], (v, 3)),
            "exprdirs": (self.exprdirs.shape[:2], (v, 3)),
            "posedirs": (self.posedirs.shape, (v, 3, 9 * (j - 1))),
            "j_regressor": (self.j_regressor.shape, (j, v)),
            "lbs_weights": (self.lbs_weights.shape, (v, j)),
        }
        if self.eyelid_dirs is not None:
            checks["eyelid_dirs"] = (self.eyelid_dirs.shape, (v, 3, 2))
        for name, (got, want) in checks.items():
            if tuple(got) != tuple(want):
                raise ValueError(f"head model '{self.name}': {name} has shape {tuple(got)}, expected {want}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.min() < 0 or self.faces.max() >= v:
            raise ValueError(f"head model '{self.name}': faces must be [F, 3] indices below {v}")
        if (self.uv_coords is None) != (self.uv_faces is None):
            raise ValueError(f"head model '{self.name}': uv_coords and uv_faces come together")
        if self.uv_faces is not None and self.uv_faces.shape != self.faces.shape:
            raise ValueError(f"head model '{self.name}': uv_faces must have the shape of faces {self.faces.shape}")
        for region, idx in self.regions.items():
            if idx.size and (idx.min() < 0 or idx.max() >= v):
                raise ValueError(f"head model '{self.name}': region '{region}' has indices outside [0, {v})")

"""Recover a head model's parameters from meshes it posed (INSTA keeps only the meshes, see
docs/datasets.md).

A tracked mesh is ``FlameModel(head)(motion, shape).vertices`` for a motion whose expression is
known and whose global rotation, neck and translation are zero (the tracker keeps the head pose in
the camera). What is left is recovered by solving for it:

* **shape** from a mesh of known pose (INSTA's ``canonical.obj``): with the rotations fixed the
  skinned mesh is affine in β (the joints are linear in the shaped mesh), so β is one linear
  least-squares solve;
* **jaw, eyes, eyelids** per frame, with β and the expression fixed: 11 parameters (3 + 3 + 3
  axis-angle, 2 eyelid weights) solved by Levenberg-Marquardt from zero, all frames of a chunk at
  once, to a sample of the vertices these parameters move, with closed-form Jacobians.

Each result is checked by posing the head model with it (``FlameModel``, float64): a mesh it does
not reproduce within ``TOLERANCE`` (another head model, a mesh with head pose, edited vertices) is
refused with an InputError naming the file and the residual.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..head.data import FLAME_PARENTS
from ..head.flame import FlameModel, axis_angle_to_matrix
from ..types import Motion

#: largest vertex distance (metres) between a mesh and the head model posed with the recovered
#: parameters; INSTA's meshes (float32 FLAME printed with 6 significant digits) come within ~1e-6
TOLERANCE = 1e-4
#: metrical-tracker's canonical.obj: the identity with the jaw opened 12 degrees about x
CANONICAL_JAW = (12.0 * np.pi / 180.0, 0.0, 0.0)
N_PARAMS = 11  # jaw 3, left eye 3, right eye 3 (axis-angle), eyelids 2
CHUNK = 32  # frames solved together: bounds memory (the check poses CHUNK full meshes in float64)
MAX_ITERATIONS = 12
SAMPLES = 128  # vertices solved on per parameter group (jaw, each eye, each eyelid)
_CONVERGED = 1e-7  # metres: a frame solved this well stops
_VERTEX_LINE = re.compile(rb"^v[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)", re.MULTILINE)


def read_obj_vertices(path: Path) -> np.ndarray:
    """The vertex positions of a Wavefront OBJ file as float64 [V, 3] (``v x y z`` lines; colours after
    the position and every other line are ignored)."""
    try:
        found = _VERTEX_LINE.findall(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: mesh not readable ({exc})",
                         hint="restore the file, or re-export the dataset") from exc
    try:
        vertices = np.array(found, dtype=np.float64).reshape(-1, 3)
    except ValueError as exc:
        raise InputError(f"{path}: not a mesh (a vertex line is not three numbers: {exc})") from exc
    if not vertices.size or not np.all(np.isfinite(vertices)):
        raise InputError(f"{path}: not a mesh (no vertices, or non-finite ones)")
    return vertices


def _check_vertex_count(path: Path, vertices: np.ndarray, model: FlameModel, ref: str) -> None:
    if len(vertices) != model.num_vertices:
        raise InputError(f"{path}: mesh has {len(vertices)} vertices, head model {ref!r} has "
                         f"{model.num_vertices}", hint="load it with the head model it was tracked with (--head-model)")


def _refuse(path: Path, error: float, ref: str, what: str) -> InputError:
    return InputError(
        f"{path}: head model {ref!r} does not reproduce this mesh: max vertex error {error:.3g} m after "
        f"solving for {what} (tolerance {TOLERANCE:g} m)",
        hint="load it with the head model it was tracked with (--head-model; metrical-tracker uses FLAME 2020 with "
             "its l_eyelid.npy / r_eyelid.npy beside the model), or provide flame/jaw, flame/eyes and flame/shape")


def _max_error(posed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[T, V, 3] x 2 -> [T]: the largest vertex distance per frame."""
    return (posed - target).norm(dim=-1).amax(dim=-1)


def recover_shape(model: FlameModel, ref: str, path: Path, motion: Motion) -> np.ndarray:
    """β [S] float64 (S > 0) of the mesh at ``path``, posed by ``motion`` (1 frame): least squares,
    checked. ``model`` is float64, ``ref`` its reference (for messages). The mesh is affine in β, so
    unit steps give the exact basis."""
    target = torch.from_numpy(read_obj_vertices(path))
    _check_vertex_count(path, target.numpy(), model, ref)
    s = model.n_shape
    with torch.no_grad():
        base = model(motion, torch.zeros(s, dtype=torch.float64)).vertices[0]  # [V, 3]
        columns = [model(Motion.cat([motion] * len(rows)), rows).vertices - base
                   for rows in torch.eye(s, dtype=torch.float64).split(CHUNK)]  # [k, V, 3] each
        basis = torch.cat(columns).reshape(s, -1).T  # [V*3, S]
        beta = torch.linalg.lstsq(basis, (target - base).reshape(-1, 1)).solution[:, 0]
        error = float(_max_error(model(motion, beta).vertices, target[None])[0])
    if not error <= TOLERANCE:
        raise _refuse(path, error, ref, f"{s} shape coefficients (jaw opened 12 degrees, as metrical-tracker "
                                          "writes canonical.obj)")
    return beta.numpy()


def _rotation_derivative(rotvec: torch.Tensor) -> torch.Tensor:
    """d R / d r of Rodrigues' R = I + a K + b K² (``axis_angle_to_matrix``): axis-angle [..., 3] ->
    [..., 3, 3, 3], the last index the component of r. With x = θ² and E_c = [e_c]ₓ,
    dR/dr_c = a E_c + b (E_c K + K E_c) + 2 r_c (a'(x) K + b'(x) K²); Taylor series for small θ."""
    x = (rotvec * rotvec).sum(-1)[..., None, None, None]  # [..., 1, 1, 1]
    small = x < 1e-4
    theta = torch.where(small, torch.ones_like(x), x).sqrt()
    sin, cos, half = torch.sin(theta), torch.cos(theta), torch.sin(0.5 * theta)
    a = torch.where(small, 1 - x / 6 + x**2 / 120, sin / theta)
    b = torch.where(small, 0.5 - x / 24 + x**2 / 720, 2 * half**2 / theta**2)  # 1 - cos θ = 2 sin²(θ/2)
    da = torch.where(small, -1 / 6 + x / 60 - x**2 / 1680, (theta * cos - sin) / (2 * theta**3))
    db = torch.where(small, -1 / 24 + x / 360 - x**2 / 13440, (theta * sin - 4 * half**2) / (2 * theta**4))
    gen = torch.zeros(3, 3, 3, dtype=rotvec.dtype)  # gen[..., c] = E_c
    gen[2, 1, 0], gen[1, 2, 0], gen[0, 2, 1], gen[2, 0, 1], gen[1, 0, 2], gen[0, 1, 2] = 1, -1, 1, -1, 1, -1
    k = torch.einsum("abc,...c->...ab", gen, rotvec)[..., None]  # [..., 3, 3, 1]
    k2 = torch.einsum("...abz,...bcz->...acz", k, k)
    return (a * gen + b * (torch.einsum("abc,...bdz->...adc", gen, k) + torch.einsum("...abz,bdc->...adc", k, gen))
            + 2 * rotvec[..., None, None, :] * (da * k + db * k2))


def _apply(blend: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-vertex 3x3 maps blend [..., M, 9] (row-major) applied to points x [..., M, 3]."""
    return (blend.unflatten(-1, (3, 3)) * x[..., None, :]).sum(-1)


class _Articulation:
    """A sample of the vertices that the jaw, eyes and eyelids move, and their Jacobian, as a function
    of those 11 parameters per frame, for frames whose template + shape + expression are given.

    ``FlameModel``'s skinning with FLAME's kinematic tree and the global and neck rotations and the
    translation zero (INSTA's meshes carry no head pose): the root and neck transforms are then the
    identity, jaw and eyes (j = 2, 3, 4) rotate about their rest joints J_j, and with D_j = R_j - I

        posed_v = shaped_v + L_v λ + P_v · vec(D_j)_j        v = B_v posed_v - Σ_j w_vj D_j J_j
        B_v = (Σ_all w_v) I + Σ_j w_vj D_j                   J_j = 𝒥_j (shaped + L λ)

    which is affine in λ and differentiates in closed form."""

    def __init__(self, model: FlameModel, shaped: torch.Tensor) -> None:
        """shaped [T, V, 3] float64: each frame's v_template + S·β + E·ψ."""
        v = model.num_vertices
        lids = (model.eyelid_dirs if model.has_eyelids else shaped.new_zeros(2, v * 3)).reshape(2, v, 3)
        posedirs = model.posedirs.reshape(4, 9, v, 3)[1:]  # jaw, eyes; the neck's multiplies R_neck - I = 0
        # what each parameter group moves: jaw, left eye, right eye (skinning, correctives), each eyelid
        moves = torch.cat([(model.lbs_weights[:, 2:] != 0).T | (posedirs != 0).any(3).any(1), (lids != 0).any(2)])
        # 11 parameters need far fewer vertices than a head has: up to SAMPLES of each group's, spread
        # by a stride (the solution is exact on any subset that pins them; the check poses every vertex)
        picked = torch.zeros_like(moves[0])
        for group in moves:
            found = group.nonzero()[:, 0]
            picked[found[:: max(1, math.ceil(len(found) / SAMPLES))]] = True
        self.index = picked.nonzero()[:, 0]  # [M]
        self.weights = model.lbs_weights[self.index, 2:]  # [M, 3]
        self.total = model.lbs_weights[self.index].sum(1)  # [M]
        self.posedirs = posedirs[:, :, self.index].reshape(27, -1)  # [27, M*3]
        self.lids = lids[:, self.index]  # [2, M, 3]
        self.shaped = shaped[:, self.index]  # [T, M, 3]
        self.joints = torch.einsum("jv,tvc->tjc", model.j_regressor[2:], shaped)  # [T, 3, 3]
        self.lid_joints = torch.einsum("jv,kvc->kjc", model.j_regressor[2:], lids)  # [2, 3, 3]

    def __call__(self, theta: torch.Tensor, jacobian: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """theta [T, 11] -> (moved vertices [T, M, 3], their Jacobian [T, 11, M, 3] or None)."""
        t = theta.shape[0]
        rotvec, lids = theta[:, :9].reshape(t, 3, 3), theta[:, 9:]
        d = axis_angle_to_matrix(rotvec) - torch.eye(3, dtype=theta.dtype)  # [T, 3, 3, 3]
        joints = self.joints + torch.einsum("tk,kjc->tjc", lids, self.lid_joints)  # [T, 3, 3]
        posed = (self.shaped + torch.einsum("tk,kvc->tvc", lids, self.lids)
                 + (d.reshape(t, 27) @ self.posedirs).reshape(self.shaped.shape))
        blend = self.total[:, None] * torch.eye(3, dtype=theta.dtype).reshape(9) + self.weights @ d.reshape(t, 3, 9)
        vertices = _apply(blend, posed) - self.weights @ (d @ joints[..., None])[..., 0]
        if not jacobian:
            return vertices, None
        # eyelids: through the posed vertices and the joints
        d_lids = (_apply(blend[:, None], self.lids)
                  - torch.einsum("vj,tjab,kjb->tkva", self.weights, d, self.lid_joints))  # [T, 2, M, 3]
        # rotations: through the pose correctives and the skinning
        d_rot = _rotation_derivative(rotvec)  # [T, 3, 3, 3, 3]
        corrective = torch.einsum("tjabc,jabn->tjcn", d_rot, self.posedirs.reshape(3, 3, 3, -1))
        d_pose = (_apply(blend[:, None], corrective.reshape(t, 9, *posed.shape[1:]))
                  + torch.einsum("vj,tjabc,tjvb->tjcva", self.weights, d_rot,
                                 posed[:, None] - joints[:, :, None]).reshape(t, 9, *posed.shape[1:]))
        return vertices, torch.cat([d_pose, d_lids], dim=1)


def _levenberg_marquardt(articulation: _Articulation, target: torch.Tensor) -> torch.Tensor:
    """theta [T, 11] that poses ``articulation`` onto target [T, M, 3], from zero. A frame is done
    when its vertices are within _CONVERGED, or within TOLERANCE and a step no longer helps (the
    meshes' own rounding); the others go on to MAX_ITERATIONS."""
    t = target.shape[0]
    theta = target.new_zeros(t, N_PARAMS)
    damping = target.new_full((t, 1), 1e-3)
    cost = ((articulation(theta)[0] - target) ** 2).sum((1, 2))  # [T]
    for _ in range(MAX_ITERATIONS):
        posed, jac = articulation(theta, jacobian=True)
        jac = jac.reshape(t, N_PARAMS, -1)
        residual = (posed - target).reshape(t, -1)
        jtj = jac @ jac.mT
        jtr = (jac @ residual[..., None])[..., 0]
        diag = jtj.diagonal(dim1=1, dim2=2)
        # a parameter that moves nothing (no eyelid blendshapes) has a zero row: keep it solvable
        regular = damping * diag + 1e-12 * diag.mean(1, keepdim=True) + 1e-30
        step = torch.linalg.solve(jtj + torch.diag_embed(regular), -jtr[..., None])[..., 0]
        trial = theta + step
        moved = articulation(trial)[0] - target
        trial_cost = (moved ** 2).sum((1, 2))
        better = trial_cost < cost
        theta = torch.where(better[:, None], trial, theta)
        damping = torch.where(better[:, None], damping / 3, damping * 4)
        error = torch.where(better, moved.norm(dim=-1).amax(-1), (posed - target).norm(dim=-1).amax(-1))
        stalled = better & (trial_cost > 0.99 * cost) & (error < TOLERANCE)
        cost = torch.where(better, trial_cost, cost)
        if bool(((error < _CONVERGED) | stalled).all()):
            break
    return theta


def recover_articulation(model: FlameModel, ref: str, paths: list[Path], expression: torch.Tensor,
                     shape: torch.Tensor) -> np.ndarray:
    """Jaw [3], left and right eye [3 + 3] axis-angle and eyelids [2] of the meshes at ``paths``
    (one per frame) as float64 [T, 11], given each frame's expression [T, E] and the shape [S];
    InputError naming the first mesh the head model does not reproduce within TOLERANCE.

    ``model`` is float64, ``ref`` its reference (for messages). Frames are solved CHUNK at a time."""
    if [int(p) for p in model.parents] != list(FLAME_PARENTS):
        raise InputError(f"head model {ref!r}: recovering poses from meshes needs FLAME's kinematic tree "
                         f"{FLAME_PARENTS.tolist()}, it has {model.parents.tolist()}")
    out = []
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start:start + CHUNK]
        read = [read_obj_vertices(p) for p in chunk]
        for p, v in zip(chunk, read):
            _check_vertex_count(p, v, model, ref)
        target = torch.from_numpy(np.stack(read))  # [T, V, 3]
        motion = Motion.zeros(len(chunk), expression.shape[1], space=model.motion_space, dtype=torch.float64)
        motion.expression[:] = expression[start:start + len(chunk)]
        with torch.no_grad():
            flat = (model.v_template.reshape(1, -1) + shape[None] @ model.shapedirs[:len(shape)]
                    + motion.expression @ model.exprdirs[:expression.shape[1]])
            shaped = flat.reshape(len(chunk), model.num_vertices, 3)
            articulation = _Articulation(model, shaped)
            theta = _levenberg_marquardt(articulation, target[:, articulation.index])
            motion.jaw[:], motion.eyes[:], motion.eyelids[:] = theta[:, :3], theta[:, 3:9], theta[:, 9:]
            error = _max_error(model(motion, shape).vertices, target)
        bad = torch.nonzero(~(error <= TOLERANCE))
        if len(bad):
            i = int(bad[0, 0])
            raise _refuse(chunk[i], float(error[i]), ref, "the jaw, eye and eyelid poses (the expression "
                          "from flame/exp, no head pose: INSTA meshes keep it in the camera)")
        out.append(theta.numpy())
    return np.concatenate(out)

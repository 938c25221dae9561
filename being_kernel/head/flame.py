"""FLAME linear blend skinning in PyTorch: a :class:`HeadModelData` plus :class:`Motion` to vertices.

The standard FLAME/SMPL recipe (Li et al., "Learning a model of facial shape and expression
from 4D scans", SIGGRAPH Asia 2017), per frame:

    v_shaped = T̄ + S·β + E·ψ (+ L·λ)             template, shape, expression (, eyelids)
    J        = 𝒥 · v_shaped                         rest joint locations   [J, 3]
    v_posed  = v_shaped + P · vec(R_j − I)_{j≥1}    pose correctives (neck, jaw, eyes)
    G_j      = G_parent(j) · [R_j | J_j − J_parent(j)]    kinematic chain, G_0 = [R_0 | J_0]
    A_j      = G_j · [I | −J_j]                      skinning matrix of joint j (+ translation)
    v        = Σ_j w_vj · A_j · [v_posed; 1]

Everything is differentiable (including the axis-angle map at zero angle) and runs on any
device the module is moved to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..types import Motion
from .data import HeadModelData


@dataclass
class FlameOutput:
    """vertices   [T, V, 3]     posed mesh (translation included)
    joints     [T, J, 3]     posed joint locations (translation included)
    transforms [T, J, 4, 4]  skinning matrices A_j: vertices = Σ_j w_vj A_j [v_posed; 1], i.e.
                             each joint's world transform relative to its rest pose
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    transforms: torch.Tensor


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle [..., 3] -> rotation matrices [..., 3, 3].

    R = I + a·K + b·K² with K = [r]ₓ (unnormalised), a = sin θ/θ, b = (1 − cos θ)/θ². Near θ = 0
    a and b come from their Taylor series, and the exact branch only sees a safe θ, so both the
    value and the gradient are finite and exact at zero (dR/dr = [dr]ₓ there).
    """
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # [..., 1, 1]
    small = theta2 < 1e-6
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    half = 0.5 * theta
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    # (1 − cos θ)/θ² written as ½ (sin(θ/2)/(θ/2))²: no cancellation in float32 for small θ.
    b = torch.where(small, 0.5 - theta2 / 24.0, 0.5 * (torch.sin(half) / half) ** 2)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a * k + b * (k @ k)


class FlameModel(torch.nn.Module):
    """A FLAME-layout head model as a torch module; ``forward(motion, shape)`` -> :class:`FlameOutput`.

    Buffers are float32 copies of the :class:`HeadModelData` arrays, blendshape bases stored
    transposed and flattened (``[K, V*3]``) so a frame batch is one matmul per basis.
    """

    def __init__(self, data: HeadModelData, vertex_ids: Sequence[int] | np.ndarray | None = None) -> None:
        """``vertex_ids``: pose only these vertices ([V'] indices; ``vertices`` is then [T, V', 3]),
        with the joints still regressed from the whole mesh. Fitters that need a few points of the
        mesh per iteration (landmarks) use it: the cost scales with V' rather than V."""
        super().__init__()
        data.validate()
        if len(data.parents) != 5:
            raise ValueError(f"head model '{data.name}' has {len(data.parents)} joints; FLAME motion drives 5")
        self.name = data.name
        self.motion_space = data.motion_space
        self.expression_names = data.expression_names
        self.regions = {k: v.copy() for k, v in data.regions.items()}
        self.num_vertices = data.num_vertices
        self.n_shape = data.n_shape
        self.n_expression = data.n_expression
        self._parents = tuple(int(p) for p in data.parents)  # python ints: the chain loop is unrolled
        if any(p >= j for j, p in enumerate(self._parents[1:], start=1)) or self._parents[0] != -1:
            raise ValueError(f"head model '{data.name}': parents {self._parents} must list each parent before its child")

        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32).clone()  # noqa: E731
        basis = lambda a: f32(a).reshape(data.num_vertices * 3, -1).T.contiguous()  # [V,3,K] -> [K, V*3]  # noqa: E731
        self.register_buffer("v_template", f32(data.v_template))  # [V, 3]
        self.register_buffer("faces", torch.as_tensor(data.faces, dtype=torch.int64).clone())  # [F, 3]
        self.register_buffer("shapedirs", basis(data.shapedirs))  # [S, V*3]
        self.register_buffer("exprdirs", basis(data.exprdirs))  # [E, V*3]
        self.register_buffer("posedirs", basis(data.posedirs))  # [36, V*3]
        self.register_buffer("j_regressor", f32(data.j_regressor))  # [J, V]
        self.register_buffer("lbs_weights", f32(data.lbs_weights))  # [V, J]
        self.register_buffer("parents", torch.as_tensor(data.parents, dtype=torch.int64).clone())  # [J]
        self.has_eyelids = data.eyelid_dirs is not None
        self.register_buffer("eyelid_dirs", basis(data.eyelid_dirs) if self.has_eyelids else None)  # [2, V*3]
        self.register_buffer("joint_bases", None)
        if vertex_ids is not None:
            self._restrict(np.asarray(vertex_ids, dtype=np.int64))

    def _restrict(self, ids: np.ndarray) -> None:
        """Keep the buffers of vertices ``ids``; the rest joints become linear in the coefficients
        (J = 𝒥T̄ + (𝒥S)β + (𝒥E)ψ + (𝒥L)λ), precomputed on the whole mesh as ``joint_bases``
        [1 + S + E (+ 2), J*3] (template row first)."""
        v, j = self.num_vertices, self.j_regressor.shape[0]
        to_joints = lambda b: torch.einsum("jv,kvc->kjc", self.j_regressor, b.reshape(-1, v, 3)).reshape(-1, j * 3)  # noqa: E731
        rows = [to_joints(self.v_template[None]), to_joints(self.shapedirs), to_joints(self.exprdirs)]
        if self.has_eyelids:
            rows.append(to_joints(self.eyelid_dirs))
        self.joint_bases = torch.cat(rows)
        index = torch.as_tensor(ids)
        cols = (index[:, None] * 3 + torch.arange(3)).reshape(-1)  # the V'*3 flattened columns
        self.v_template = self.v_template[index].contiguous()
        for name in ("shapedirs", "exprdirs", "posedirs", "eyelid_dirs"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name)[:, cols].contiguous())
        self.lbs_weights = self.lbs_weights[index].contiguous()
        self.num_vertices = len(ids)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> FlameModel:
        """Load from an official FLAME ``.pkl`` (kwargs go to ``load_flame_pkl``) or a directory
        in the project's own format (``model.json`` + ``model.safetensors``)."""
        from .loaders import load_flame_pkl, load_head_model

        path = Path(path)
        if path.is_dir() and (path / "model.json").is_file():
            return cls(load_head_model(path))
        return cls(load_flame_pkl(path, **kwargs))

    def _coefficients(self, values: torch.Tensor, available: int, what: str) -> torch.Tensor:
        if values.shape[-1] > available:
            raise ValueError(f"{what} has {values.shape[-1]} coefficients; head model '{self.name}' has {available}")
        return values.to(self.v_template.device, self.v_template.dtype)

    def forward(self, motion: Motion, shape: torch.Tensor | None = None) -> FlameOutput:
        """Pose the model for every frame of ``motion``.

        motion.expression [T, E'] with E' <= E (missing components are zero; E' = 0 for pose-only
        motion). shape: identity coefficients [S'] or [T, S'], S' <= S, or None (mean shape).
        Eyelids apply when the model has eyelid blendshapes. The motion space is not checked
        here; the pipeline checks it when it is built.
        """
        v_template = self.v_template
        device, dtype = v_template.device, v_template.dtype
        t, v = motion.num_frames, self.num_vertices
        flat = v_template.reshape(1, v * 3)  # [1, V*3]
        if shape is not None:
            if shape.ndim not in (1, 2) or (shape.ndim == 2 and shape.shape[0] not in (1, t)):
                raise ValueError(f"shape must be [S'] or [{t}, S'], got {tuple(shape.shape)}")
            beta = self._coefficients(shape if shape.ndim == 2 else shape[None], self.n_shape, "shape")
            flat = flat + beta @ self.shapedirs[: beta.shape[-1]]
        psi = self._coefficients(motion.expression, self.n_expression, "Motion.expression")
        if psi.shape[-1]:
            flat = flat + psi @ self.exprdirs[: psi.shape[-1]]
        if self.has_eyelids:
            flat = flat + motion.eyelids.to(device, dtype) @ self.eyelid_dirs
        v_shaped = flat.expand(t, -1).reshape(t, v, 3)  # [T, V, 3]

        if self.joint_bases is None:
            rest_joints = torch.einsum("jv,tvc->tjc", self.j_regressor, v_shaped)  # [T, J, 3]
        else:  # a vertex subset: the joints from the precomputed bases, same coefficients in the same order
            n_s = self.shapedirs.shape[0]
            coeffs = [torch.ones(t, 1, dtype=dtype, device=device),
                      (beta if shape is not None else torch.zeros(1, 0, dtype=dtype, device=device)).expand(t, -1),
                      torch.zeros(t, n_s - (beta.shape[-1] if shape is not None else 0), dtype=dtype, device=device),
                      psi, torch.zeros(t, self.n_expression - psi.shape[-1], dtype=dtype, device=device)]
            if self.has_eyelids:
                coeffs.append(motion.eyelids.to(device, dtype))
            rest_joints = (torch.cat(coeffs, dim=1) @ self.joint_bases).reshape(t, -1, 3)
        eyes = motion.eyes.to(device, dtype)
        rotvecs = torch.stack([motion.global_rot.to(device, dtype), motion.neck.to(device, dtype),
                               motion.jaw.to(device, dtype), eyes[:, :3], eyes[:, 3:]], dim=1)  # [T, 5, 3]
        rot = axis_angle_to_matrix(rotvecs)  # [T, J, 3, 3]

        eye3 = torch.eye(3, dtype=dtype, device=device)
        pose_feature = (rot[:, 1:] - eye3).reshape(t, -1)  # [T, 9*(J-1)], row-major like FLAME's posedirs
        v_posed = v_shaped + (pose_feature @ self.posedirs).reshape(t, v, 3)

        # Kinematic chain: world rotation and translation of each joint.
        world_r: list[torch.Tensor] = []
        world_t: list[torch.Tensor] = []
        for j, p in enumerate(self._parents):
            if p < 0:
                world_r.append(rot[:, j])
                world_t.append(rest_joints[:, j])
            else:
                offset = rest_joints[:, j] - rest_joints[:, p]  # bone in the rest pose
                world_r.append(world_r[p] @ rot[:, j])
                world_t.append(world_t[p] + (world_r[p] @ offset[..., None])[..., 0])
        g_r = torch.stack(world_r, dim=1)  # [T, J, 3, 3]
        trans = motion.translation.to(device, dtype)
        joints = torch.stack(world_t, dim=1) + trans[:, None]  # [T, J, 3]
        # A_j = G_j [I | -J_j]: moves rest-space points attached to joint j to the posed world.
        a_t = joints - (g_r @ rest_joints[..., None])[..., 0]  # [T, J, 3]
        a34 = torch.cat([g_r, a_t[..., None]], dim=-1)  # [T, J, 3, 4]

        blended = (self.lbs_weights @ a34.reshape(t, -1, 12)).reshape(t, v, 3, 4)  # [T, V, 3, 4]
        vertices = (blended[..., :3] @ v_posed[..., None])[..., 0] + blended[..., 3]

        bottom = torch.zeros_like(a34[..., :1, :])  # made on the device: no host-to-device copy per call
        bottom[..., 3] = 1.0
        transforms = torch.cat([a34, bottom], dim=-2)  # [T, J, 4, 4]
        return FlameOutput(vertices=vertices, joints=joints, transforms=transforms)

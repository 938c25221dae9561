"""The trainable Gaussians of a SplattingAvatar and their Adam optimizer.

Per Gaussian (N of them), as optimised:
    face_ids       [N]        int64 triangle (changed by walking, not by gradients)
    bary12         [N, 2]     barycentric coordinates 1 and 2; coordinate 0 is 1 - b1 - b2
    offset         [N]        metres along the interpolated vertex normal
    rotation       [N, 4]     wxyz in the triangle frame (normalised when used)
    log_scale      [N, 3]     log of the scale relative to sqrt(rest triangle area)
    opacity_logit  [N]        sigmoid -> opacity
    sh_dc          [N, 1, 3]  degree-0 SH (3DGS convention: colour = SH + 0.5)
    sh_rest        [N, K-1, 3] higher SH bands, K = (sh_degree + 1)^2
Densification changes N through the kernel's optimizer surgery
(``being_kernel.train.select_and_extend``), which carries Adam's moments along; ``face_ids``
follows in :meth:`GaussianParams.replace_rows`.
"""

from __future__ import annotations

import math

import torch

from being_kernel.head import triangle_frames
from being_kernel.render import SH_C0, MeshGaussians
from being_kernel.train import ParamGroup

NAMES = ("bary12", "offset", "rotation", "log_scale", "opacity_logit", "sh_dc", "sh_rest")
#: Base learning rates (Adam). bary12 and offset decay over training (see method.learning_rates).
LEARNING_RATES = {"bary12": 2e-3, "offset": 1e-4, "rotation": 1e-3, "log_scale": 5e-3, "opacity_logit": 5e-2,
                  "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20}


class GaussianParams:
    """Trainable Gaussians embedded in a mesh (see the module doc); the harness owns the optimizer."""

    def __init__(self, face_ids: torch.Tensor, tensors: dict[str, torch.Tensor]) -> None:
        self.face_ids = face_ids
        self.params = {k: torch.nn.Parameter(tensors[k].contiguous()) for k in NAMES}

    def groups(self) -> list[ParamGroup]:
        """One optimizer group per tensor, all per-Gaussian rows."""
        return [ParamGroup(k, self.params[k], LEARNING_RATES[k], per_row=True) for k in NAMES]

    def replace_rows(self, params: dict[str, torch.nn.Parameter], face_ids: torch.Tensor) -> None:
        """Take the tensors surgery made (name -> [N', ...]) and their triangles ``face_ids`` [N']."""
        self.params.update(params)
        self.face_ids = face_ids

    def __len__(self) -> int:
        return int(self.face_ids.shape[0])

    @property
    def bary(self) -> torch.Tensor:
        """[N, 3] barycentric coordinates (differentiable)."""
        b12 = self.params["bary12"]
        return torch.cat([1.0 - b12.sum(-1, keepdim=True), b12], dim=-1)

    @property
    def sh(self) -> torch.Tensor:
        """[N, K, 3] all SH coefficients."""
        return torch.cat([self.params["sh_dc"], self.params["sh_rest"]], dim=1)

    @property
    def opacity(self) -> torch.Tensor:
        return torch.sigmoid(self.params["opacity_logit"])

    def mesh_gaussians(self, faces: torch.Tensor, rest_area: torch.Tensor) -> MeshGaussians:
        """The Gaussians as the renderer poses them (differentiable in every parameter)."""
        p = self.params
        color = (SH_C0 * p["sh_dc"][:, 0] + 0.5).clamp(0.0, 1.0)
        return MeshGaussians(self.face_ids, self.bary, p["offset"], torch.nn.functional.normalize(p["rotation"], dim=-1),
                             p["log_scale"].exp(), self.opacity, color, faces, rest_area)

    @classmethod
    def place(cls, rest_vertices: torch.Tensor, faces: torch.Tensor, count: int, sh_degree: int, *,
              generator: torch.Generator) -> GaussianParams:
        """``count`` flat Gaussians spread over the rest mesh by area (rest_vertices [V, 3], faces
        [F, 3]): each a disc of radius 0.7 sqrt(area / count), a tenth as thick, 70 % opaque and
        grey (:meth:`set_colors` colours them)."""
        device = rest_vertices.device
        areas = triangle_frames(rest_vertices[None], faces)[3][0].clamp_min(1e-12)
        face_ids = torch.multinomial(areas.cpu(), count, replacement=True, generator=generator).to(device)
        r1, r2 = (torch.rand(count, generator=generator).to(device) for _ in range(2))
        s = r1.sqrt()  # uniform over the triangle
        bary12 = torch.stack([s * (1 - r2), s * r2], dim=-1)
        radius = 0.7 * math.sqrt(float(areas.sum()) / count)
        rel = torch.log(radius / areas[face_ids].sqrt())
        log_scale = torch.stack([rel, rel, rel + math.log(0.1)], dim=-1)
        k = (sh_degree + 1) ** 2
        tensors = {"bary12": bary12, "offset": torch.zeros(count, device=device),
                   "rotation": torch.tensor([1.0, 0.0, 0.0, 0.0], device=device).repeat(count, 1),
                   "log_scale": log_scale, "opacity_logit": torch.full((count,), math.log(0.7 / 0.3), device=device),
                   "sh_dc": torch.zeros(count, 1, 3, device=device), "sh_rest": torch.zeros(count, k - 1, 3, device=device)}
        return cls(face_ids, tensors)

    @torch.no_grad()
    def set_colors(self, rgb: torch.Tensor) -> None:
        """Set the base colour: rgb [N, 3] in [0, 1]."""
        self.params["sh_dc"][:, 0] = (rgb.clamp(0.02, 0.98) - 0.5) / SH_C0

    def state_dict(self) -> dict:
        """Tensors only, so the checkpoint loads with ``weights_only=True``."""
        return {"face_ids": self.face_ids, "params": {k: v.detach() for k, v in self.params.items()}}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> GaussianParams:
        return cls(state["face_ids"].to(device), {k: v.to(device) for k, v in state["params"].items()})

    @torch.no_grad()
    def export(self) -> dict[str, torch.Tensor]:
        """The avatar tensors (avatar.TENSORS, plus "sh" [N, K, 3] when the SH degree is above 0), on the CPU."""
        p = self.params
        out = {"face_ids": self.face_ids, "bary": self.bary, "offset": p["offset"],
               "rotation": torch.nn.functional.normalize(p["rotation"], dim=-1), "scale": p["log_scale"].exp(),
               "opacity": self.opacity, "color": (SH_C0 * p["sh_dc"][:, 0] + 0.5).clamp(0.0, 1.0)}
        if p["sh_rest"].shape[1] > 0:
            out["sh"] = self.sh
        return {k: (v if k == "face_ids" else v.detach().float()).cpu().contiguous() for k, v in out.items()}

"""FlashAvatar's trainable Gaussians, one per covered texel of the UV map, and how they start
(the public code's initialisation): at the texel's point of the rest mesh, isotropic with the
root-mean-square distance to their 3 nearest neighbours, identity rotation, opacity 0.1, SH zero
(grey 0.5).

Per Gaussian (N), as optimised:
    rotation       [N, 4]     base wxyz (normalised after the network's delta is applied)
    log_scale      [N, 3]     log base standard deviations (metres)
    opacity_logit  [N]        sigmoid -> opacity
    sh_dc          [N, 1, 3]  degree-0 SH (colour = SH + 0.5)
    sh_rest        [N, K-1, 3] higher bands, K = (sh_degree + 1)^2
The texel's triangle, barycentric coordinates and canonical position are fixed.
"""

from __future__ import annotations

import math

import torch

from being_kernel.train import ParamGroup

NAMES = ("rotation", "log_scale", "opacity_logit", "sh_dc", "sh_rest")
#: Adam learning rates of the public code (feature_lr, / 20 for higher bands, opacity, scaling, rotation).
LEARNING_RATES = {"rotation": 1e-3, "log_scale": 5e-3, "opacity_logit": 5e-2, "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20}
INITIAL_OPACITY = 0.1
#: Smallest squared neighbour distance (m^2) at initialisation, as simple-knn clamps it.
MIN_DIST2 = 1e-7
KNN_CHUNK = 2048


def neighbour_dist2(points: torch.Tensor, k: int = 3) -> torch.Tensor:
    """[N, 3] -> [N]: mean squared distance to each point's ``k`` nearest other points."""
    out = []
    for a in range(0, points.shape[0], KNN_CHUNK):
        d2 = torch.cdist(points[a:a + KNN_CHUNK], points).square()
        d2[torch.arange(d2.shape[0]), torch.arange(a, a + d2.shape[0])] = float("inf")  # not itself
        out.append(d2.topk(min(k, points.shape[0] - 1), dim=1, largest=False).values.mean(1))
    return torch.cat(out)


class FlashGaussians:
    """The trainable per-Gaussian tensors (see the module doc); the harness owns the optimizer."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.params = {k: torch.nn.Parameter(tensors[k].contiguous()) for k in NAMES}

    @classmethod
    def start(cls, canonical: torch.Tensor, sh_degree: int) -> FlashGaussians:
        """Gaussians at ``canonical`` [N, 3] rest-mesh points."""
        n, device = canonical.shape[0], canonical.device
        log_s = 0.5 * neighbour_dist2(canonical).clamp_min(MIN_DIST2).log()
        k = (sh_degree + 1) ** 2
        return cls({"rotation": torch.tensor([1.0, 0.0, 0.0, 0.0], device=device).repeat(n, 1),
                    "log_scale": log_s[:, None].repeat(1, 3),
                    "opacity_logit": torch.full((n,), math.log(INITIAL_OPACITY / (1 - INITIAL_OPACITY)), device=device),
                    "sh_dc": torch.zeros(n, 1, 3, device=device), "sh_rest": torch.zeros(n, k - 1, 3, device=device)})

    def groups(self) -> list[ParamGroup]:
        return [ParamGroup(k, self.params[k], LEARNING_RATES[k], per_row=True) for k in NAMES]

    @property
    def sh(self) -> torch.Tensor:
        """[N, K, 3]."""
        return torch.cat([self.params["sh_dc"], self.params["sh_rest"]], dim=1)

    @property
    def opacity(self) -> torch.Tensor:
        return torch.sigmoid(self.params["opacity_logit"])

    @property
    def scale(self) -> torch.Tensor:
        return self.params["log_scale"].exp()

    def state_dict(self) -> dict:
        return {k: v.detach() for k, v in self.params.items()}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> FlashGaussians:
        return cls({k: v.to(device) for k, v in state.items()})

    @torch.no_grad()
    def export(self) -> dict[str, torch.Tensor]:
        """The avatar's per-Gaussian tensors (avatar.TENSORS less the fixed ones, plus "sh"), on the CPU."""
        return {"rotation": torch.nn.functional.normalize(self.params["rotation"], dim=-1).cpu(),
                "scale": self.scale.cpu(), "opacity": self.opacity.cpu(), "sh": self.sh.cpu()}


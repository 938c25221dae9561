"""Training from one view (a photo): what keeps the parts the photo does not show plausible.

One image constrains only the Gaussians it sees. The rest come from priors, computed once when
training starts:

* **Start from the demo avatar** when the head model has the demo head's topology (the photo's
  identity is the demo head deformed): its Gaussians already cover the sides and back of the head,
  the inside of the mouth, teeth, tongue and the closed eyelids, so expressions the photo never
  shows (an open mouth, a blink) open onto them.
* **Seen colours and visibility**: with the geometry fixed the render is linear in the colours,
  so the colours the photo shows are solved for as a least-squares problem (``solve_colors``),
  which also gives each Gaussian's share of the photo's pixels, turned into ``seen`` in [0, 1].
* **Prior colours** for what is not seen: the colour the photo shows at the mirror-image Gaussian
  (faces are nearly symmetric, so a cheek turned away takes the other cheek's colour), else the
  demo avatar's colour moved into the photo's palette (per-channel mean and spread matched over
  the seen Gaussians of the same group: skin, hair; the mouth interior and teeth keep theirs, since
  the photo's skin says nothing about teeth).
* **Carving**: Gaussians the photo shows mostly outside the person's mask (a demo ear where this
  person's hair falls) are made transparent.
* **Losses**: unseen colours and opacities stay near their priors (weight 1 - seen); every
  Gaussian's normal offset and size stay near where they started, so a texture fitted on a closed
  mouth or open eyes moves with its triangles instead of stretching across the lips or lids when
  they move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from being_kernel.head import HeadModelData, build_demo_head
from being_kernel.render import SH_C0, MeshGaussians

from .params import GaussianParams

#: a Gaussian covering this many photo pixels (alpha x transmittance, summed) counts as half seen
SEEN_HALF_PX = 1.0
#: a Gaussian covering this many times more pixels outside the person mask than inside is carved away ...
CARVE_RATIO = 2.0
#: (most Gaussians cover well under a pixel: one showing a twentieth of a pixel outside counts)
CARVE_MIN_PX = 0.05
#: ... to this opacity logit (opacity 0.0003)
CARVED_LOGIT = -8.0
#: demo-head regions whose colours are never moved into the photo's palette (the photo does not show them)
INTERIOR = ("mouth_interior", "teeth", "tongue", "mouth_cavity")
#: a colour group needs this many seen Gaussians to set its own palette (else the skin's is used)
MIN_GROUP = 50
#: Gaussians compared per block when finding mirror images (memory: block x N floats)
MIRROR_BLOCK = 1024


@dataclass
class SingleViewPrior:
    """Per Gaussian (N): seen [N] in [0, 1], colour [N, 3] prior, opacity_logit [N] prior,
    log_scale [N, 3] and offset [N] at the start; all on one device."""

    seen: torch.Tensor
    color: torch.Tensor
    opacity_logit: torch.Tensor
    log_scale: torch.Tensor
    offset: torch.Tensor

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in ("seen", "color", "opacity_logit", "log_scale", "offset")}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> SingleViewPrior:
        return cls(**{k: v.to(device) for k, v in state.items()})


def has_demo_topology(head: HeadModelData) -> bool:
    """Whether ``head`` is the demo head's mesh (possibly reshaped): same triangles."""
    demo = build_demo_head()
    return head.faces.shape == demo.faces.shape and bool(np.array_equal(head.faces, demo.faces))


def demo_params(sh_degree: int, device: torch.device) -> GaussianParams:
    """The demo avatar's Gaussians (being_avatar_splatting.demo) as trainable parameters."""
    from ..demo import demo_avatar

    g = demo_avatar().gaussians
    n, k = len(g["face_ids"]), (sh_degree + 1) ** 2
    opacity = g["opacity"].clamp(1e-4, 1 - 1e-4)
    tensors = {"bary12": g["bary"][:, 1:], "offset": g["offset"], "rotation": g["rotation"],
               "log_scale": g["scale"].clamp_min(1e-8).log(), "opacity_logit": torch.log(opacity / (1 - opacity)),
               "sh_dc": ((g["color"].clamp(0.02, 0.98) - 0.5) / SH_C0)[:, None],
               "sh_rest": torch.zeros(n, k - 1, 3)}
    return GaussianParams(g["face_ids"].to(device), {name: t.float().to(device) for name, t in tensors.items()})


def solve_colors(g: GaussianParams, gaussians: MeshGaussians, vertices: torch.Tensor, cameras, image: torch.Tensor,
                 mask: torch.Tensor, backend: str, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """Least-squares colours of the Gaussians for one view, the geometry held fixed.

    With positions, sizes and opacities fixed the render is linear in the colours: pixel p is
    sum_i w_ip c_i, w_ip = alpha_i x transmittance at p. So the fit is a linear least-squares
    problem over the pixels inside ``mask`` [1, H, W, 1], solved by Jacobi-preconditioned
    gradient steps (SART: each Gaussian's step is its residual averaged over the pixels it
    covers, which converges since every pixel's weights sum to at most 1). One step is one render
    and one backward pass, so ``iterations`` of them cost what as many Adam steps would, and get
    far closer. vertices [1, V, 3] posed, image [1, H, W, 3].

    Returns (colours [N, 3], covered [N]: the photo pixels each Gaussian covers inside the mask,
    sum_p w_ip, occlusion included, 0 for the ones the view does not show; outside [N]: the same
    sum over the pixels outside the mask)."""
    from being_kernel.render import rasterize

    with torch.no_grad():
        means, quats, scales = gaussians.pose(vertices)
    opacity = g.opacity.detach()
    target = image * mask
    color = (SH_C0 * g.params["sh_dc"][:, 0].detach() + 0.5).clamp(0, 1)
    covered = outside = None
    for _ in range(iterations + 1):
        c = color.clone().requires_grad_(True)
        img = rasterize(means, quats, scales, opacity, c, cameras, backend=backend)
        if covered is None:  # d(sum of channel k over a region)/dc_ik = sum_p w_ip over that region
            (img.rgb[..., 0] * mask[..., 0] + img.rgb[..., 1] * (1 - mask[..., 0])).sum().backward()
            covered, outside = c.grad[:, 0], c.grad[:, 1]
            continue
        (0.5 * ((img.rgb - target) ** 2 * mask).sum()).backward()
        with torch.no_grad():
            color = (color - c.grad / (covered[:, None] + 1e-6)).clamp(0, 1)
    return color, covered, outside


def mirror_index(points: torch.Tensor) -> torch.Tensor:
    """[N] index of the Gaussian nearest to each one's mirror image across the x = 0 plane (the
    head's plane of symmetry): points [N, 3] at rest."""
    mirrored = points * torch.tensor([-1.0, 1.0, 1.0], device=points.device)
    out = torch.empty(len(points), dtype=torch.int64, device=points.device)
    for a in range(0, len(points), MIRROR_BLOCK):
        out[a:a + MIRROR_BLOCK] = torch.cdist(mirrored[a:a + MIRROR_BLOCK], points).argmin(-1)
    return out


def _groups(head: HeadModelData, face_ids: torch.Tensor) -> torch.Tensor:
    """[N] colour group of each Gaussian by its triangle: 0 skin (and everything else), 1 hair
    (the demo head's scalp), 2 the mouth's interior (kept as the demo has it)."""
    faces = torch.from_numpy(head.faces.astype(np.int64))
    group = torch.zeros(head.num_vertices, dtype=torch.int64)
    if "scalp" in head.regions:
        group[torch.from_numpy(head.regions["scalp"].astype(np.int64))] = 1
    for name in INTERIOR:
        if name in head.regions:
            group[torch.from_numpy(head.regions[name].astype(np.int64))] = 2
    per_face = group[faces].max(1).values  # a triangle touching the interior is interior
    return per_face[face_ids.cpu()].to(face_ids.device)


def _palette(source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (gain [3], bias [3]) taking ``source`` colours [n, 3] to the weighted mean
    and spread of ``target`` [n, 3] (weights [n])."""
    w = weight[:, None] / weight.sum()
    ms, mt = (source * w).sum(0), (target * w).sum(0)
    ss = ((source - ms) ** 2 * w).sum(0).sqrt().clamp_min(1e-3)
    st = ((target - mt) ** 2 * w).sum(0).sqrt()
    gain = (st / ss).clamp(0.25, 4.0)
    return gain, mt - gain * ms


def build_prior(g: GaussianParams, head: HeadModelData, gaussians: MeshGaussians, rest: torch.Tensor,
                posed: torch.Tensor, cameras, image: torch.Tensor, mask: torch.Tensor, backend: str,
                demo_colors: bool, iterations: int) -> SingleViewPrior:  # noqa: ANN001 - being_kernel.api.Cameras
    """The priors of one view (module doc). rest [1, V, 3] and posed [1, V, 3] vertices, image
    [1, H, W, 3] and mask [1, H, W, 1] of the photo; the seen colours come from ``iterations`` of
    :func:`solve_colors`. ``demo_colors``: the Gaussians started as the demo avatar's (their
    colours are the demo's; else they carry no colour worth keeping)."""
    with torch.enable_grad():
        photo, covered, outside = solve_colors(g, gaussians, posed, cameras, image, mask, backend, iterations)
    # Gaussians the view shows mostly outside the person (a demo ear where this person's hair falls,
    # a skull wider than theirs) are not part of this person: made transparent, and counted seen
    # (their prior is to stay so); they are no source of colour for the others
    carve = (outside > CARVE_RATIO * covered) & (outside > CARVE_MIN_PX)
    shown = torch.where(carve, torch.zeros_like(covered), covered / (covered + SEEN_HALF_PX))  # [N] in [0, 1)
    seen = torch.where(carve, torch.ones_like(shown), shown)
    with torch.no_grad():
        old = (SH_C0 * g.params["sh_dc"][:, 0] + 0.5).clamp(0, 1)  # [N, 3]
        group = _groups(head, g.face_ids) if demo_colors else torch.zeros(len(g), dtype=torch.int64, device=seen.device)
        fallback = old.clone()
        skin = (group == 0) & (shown > 0.5)
        if int(skin.sum()) >= MIN_GROUP:
            skin_map = _palette(old[skin], photo[skin], shown[skin])
            for k in (0, 1):
                sel = (group == k) & (shown > 0.5)
                gain, bias = _palette(old[sel], photo[sel], shown[sel]) if int(sel.sum()) >= MIN_GROUP else skin_map
                fallback[group == k] = (old[group == k] * gain + bias).clamp(0, 1)
        centres, _, _ = gaussians.pose(rest)
        twin = mirror_index(centres[0])
        twin_seen = shown[twin]
        color = torch.where((twin_seen > seen)[:, None] & (group != 2)[:, None],
                            twin_seen[:, None] * photo[twin] + (1 - twin_seen[:, None]) * fallback, fallback)
        p = g.params
        p["opacity_logit"].data[carve] = CARVED_LOGIT
        return SingleViewPrior(seen=seen, color=seen[:, None] * photo + (1 - seen[:, None]) * color,
                               opacity_logit=p["opacity_logit"].detach().clone(),
                               log_scale=p["log_scale"].detach().clone(), offset=p["offset"].detach().clone())


def prior_losses(g: GaussianParams, prior: SingleViewPrior, *, color: float, opacity: float, shape: float,
                 offset_m: float) -> dict[str, torch.Tensor]:
    """The single-view regularisers (0-d tensors, already weighted): unseen colours and opacities
    near their priors, every Gaussian's log size and normal offset near their start (in units of
    ``offset_m`` metres)."""
    p, unseen = g.params, 1.0 - prior.seen
    rgb = (SH_C0 * p["sh_dc"][:, 0] + 0.5)
    return {
        "prior_color": color * (unseen[:, None] * (rgb - prior.color) ** 2).mean(),
        "prior_opacity": opacity * (unseen * (p["opacity_logit"] - prior.opacity_logit) ** 2).mean(),
        "prior_shape": shape * (((p["log_scale"] - prior.log_scale) ** 2).mean()
                                + (((p["offset"] - prior.offset) / offset_m) ** 2).mean()),
    }


__all__ = ["SingleViewPrior", "build_prior", "demo_params", "has_demo_topology", "prior_losses"]

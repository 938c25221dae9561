"""The built-in demo avatar: Gaussians spread over the kernel's procedural head, with colours,
opacities and sizes baked against mesh renders of it (``bake.py``; no training at run time).

``demo_avatar()`` builds it in memory (deterministic, cached); ``export_demo_avatar(dir)`` writes it
as an ordinary avatar directory, which renders exactly like the built-in one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from .avatar import Avatar, save_avatar

#: Gaussians of the demo avatar: the speed/quality trade-off (see the README's measurements).
DEMO_GAUSSIANS = 64000
#: Disc radius of each demo Gaussian as a fraction of sqrt(area per Gaussian) (from_textured_mesh's coverage):
#: above its default so the randomly placed discs leave no holes to see through.
DEMO_COVERAGE = 1.0
#: Extra Gaussians on the faces touching the eyelid skin, placed after the bake (texture colours).
#: Placed by area, the lids get ~300 of the 64000, and a closed lid's seam is two mesh boundaries
#: that discs cover only half: without these, white and iris showed through closed lids (up to 0.47
#: of a pixel's value; tests/test_splatting.py measures it). Small discs, so open lids do not spill
#: over the eye.
LID_GAUSSIANS, LID_COVERAGE = 3000, 0.7
#: Camera distance in front of the neck base (metres), at the height of the face's middle.
DEMO_DISTANCE, DEMO_EYE_HEIGHT = 0.62, -0.02


def demo_camera(width: int, height: int) -> dict:
    """A frontal portrait camera for the demo head (OpenCV convention, world y up, head facing +z):
    framed by ``being_kernel.render.framed_camera`` (neck base at (width / 2, 0.92 height), 2.4 height
    px/m there), so head and neck fill the image above the anchor and a compositor's default neck
    position leaves room above the head."""
    from being_kernel.api import Motion
    from being_kernel.head import FlameModel, build_demo_head
    from being_kernel.render import framed_camera

    data = build_demo_head()
    with torch.no_grad():
        root = FlameModel(data)(Motion.zeros(1, 0, space=data.motion_space)).joints[0, 0].double()
    eye = torch.tensor([0.0, DEMO_EYE_HEIGHT, float(root[2]) + DEMO_DISTANCE], dtype=torch.float64)
    R = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # x right, y down, looking along -z
    t = -R @ eye
    return framed_camera(R, t, root, width, height)


@lru_cache(maxsize=1)
def _placed_gaussians():  # -> MeshGaussians
    """DEMO_GAUSSIANS Gaussians placed on the procedural head, coloured from its texture (seeded)."""
    from being_kernel.head import build_demo_head
    from being_kernel.render import MeshGaussians

    data = build_demo_head()
    return MeshGaussians.from_textured_mesh(
        torch.from_numpy(data.v_template).float(), torch.from_numpy(data.faces), torch.from_numpy(data.uv_coords).float(),
        torch.from_numpy(data.uv_faces), torch.from_numpy(data.texture).float(), DEMO_GAUSSIANS, seed=0,
        coverage=DEMO_COVERAGE)


def _lid_gaussians():  # -> MeshGaussians
    """LID_GAUSSIANS Gaussians spread over the faces that touch the eyelid skin (seeded)."""
    from being_kernel.head import build_demo_head
    from being_kernel.render import MeshGaussians

    data = build_demo_head()
    faces = torch.from_numpy(data.faces)
    on_lid = torch.zeros(data.num_vertices, dtype=torch.bool)
    on_lid[torch.from_numpy(data.regions["eyelids"])] = True
    lid_faces = torch.nonzero(on_lid[faces].any(1)).squeeze(1)
    g = MeshGaussians.from_textured_mesh(
        torch.from_numpy(data.v_template).float(), faces[lid_faces], torch.from_numpy(data.uv_coords).float(),
        torch.from_numpy(data.uv_faces)[lid_faces], torch.from_numpy(data.texture).float(), LID_GAUSSIANS, seed=1,
        coverage=LID_COVERAGE)
    g.face_ids = lid_faces[g.face_ids]  # subset face index -> the head's face index
    return g


def _demo_gaussians() -> dict[str, torch.Tensor]:
    """The placed Gaussians with the shipped bake (bake.py) applied (fitted colours, opacities,
    sizes), then the eyelid Gaussians."""
    from safetensors.torch import load_file

    from .bake import BAKE_FILE

    g, lids = _placed_gaussians(), _lid_gaussians()
    fit = {k: v.float() for k, v in load_file(str(BAKE_FILE)).items()}
    if fit["color"].shape != g.color.shape:
        raise RuntimeError(f"{BAKE_FILE} does not match the demo Gaussians: run python -m being_avatar_splatting.bake")
    # the lid discs' scales are relative to sqrt(area) of their own triangle, as the placed ones'
    placed = {"face_ids": g.face_ids, "bary": g.bary, "offset": g.offset, "rotation": g.rotation,
              "scale": g.scale * fit["log_scale"].exp(), "opacity": fit["opacity"], "color": fit["color"]}
    return {k: torch.cat([v.float() if v.is_floating_point() else v, getattr(lids, k).to(v.dtype)])
            for k, v in placed.items()}


def demo_avatar(size: tuple[int, int] = (512, 512)) -> Avatar:
    """The demo avatar (baked Gaussians on the procedural head, camera for ``size``)."""
    from being_kernel.head import build_demo_head

    gaussians = {k: v.clone() for k, v in _demo_gaussians().items()}
    return Avatar(name="being-demo", head_model="demo", gaussians=gaussians, camera=demo_camera(*size),
                  shape=[], motion_space=build_demo_head().motion_space, background=(0.0, 0.0, 0.0))


def export_demo_avatar(directory: str | Path) -> Path:
    """Write the demo avatar to ``directory`` (avatar.json + gaussians.safetensors)."""
    return save_avatar(directory, demo_avatar())


__all__ = ["DEMO_GAUSSIANS", "demo_avatar", "demo_camera", "export_demo_avatar"]

"""Rendering services: Gaussian rasterization with a gsplat and a PyTorch backend
(``rasterize``, spherical harmonics ``eval_sh``), mesh-embedded Gaussians (``MeshGaussians``),
the textured-mesh reference renderer (``render_mesh``), OpenCV camera converters from other
conventions (``from_metrical_tracker``, ``from_insta``, ``from_imavatar``) and quaternion
helpers, and the framing every Gaussian head renderer shares (avatar camera records, output
frames: ``camera_for_size``, ``framed_camera``, ``gaussian_frames``), and ``place_heads``, which puts
rendered heads into a full frame for compositors that draw their own torso. See docs/rendering.md.

This module is the public surface; its submodules are private. ``Cameras`` lives in the core
(``being_kernel.api.Cameras``) so that contracts and head models use it without importing the
renderers; it is re-exported here for renderer code."""

from ..cameras import Cameras
from .conventions import from_imavatar, from_insta, from_metrical_tracker
from .framing import (EMPTY_ALPHA, ChunkedHeadRenderer, check_backend, PORTRAIT_ANCHOR_Y, PORTRAIT_PX_PER_METRE_PER_PX, camera_for_size, framed_camera,
                      gaussian_frames, tracked_portrait)
from .gaussians import (BACKENDS, SH_C0, GaussianImages, available_backends, eval_sh, rasterize, sh_basis,
                        view_dirs)
from .mesh import MeshImages, render_mesh, sample_texture
from .placement import place_heads
from .rotations import matrix_to_axis_angle, quat_multiply, quat_to_rotmat, rotation_6d_to_matrix, rotmat_to_quat
from .surface import MeshGaussians

__all__ = [
    "Cameras",
    "rasterize", "GaussianImages", "BACKENDS", "available_backends", "eval_sh", "sh_basis", "view_dirs", "SH_C0",
    "MeshGaussians",
    "ChunkedHeadRenderer", "check_backend", "camera_for_size", "framed_camera", "gaussian_frames", "tracked_portrait", "EMPTY_ALPHA", "PORTRAIT_ANCHOR_Y",
    "PORTRAIT_PX_PER_METRE_PER_PX",
    "render_mesh", "MeshImages", "sample_texture", "place_heads",
    "from_metrical_tracker", "from_insta", "from_imavatar",
    "quat_to_rotmat", "rotmat_to_quat", "matrix_to_axis_angle", "rotation_6d_to_matrix", "quat_multiply",
]

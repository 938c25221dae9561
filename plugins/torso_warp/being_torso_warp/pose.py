"""The head pose a torso follows, measured the same way in training and at run time.

The torso lives in one fixed camera (the video's): K [3, 3] for frames of ``size``. A frame's head
pose, as the torso sees it, is the head's rotation in that camera's coordinates, ``R_hc`` [3, 3],
and where its neck base (FLAME's root joint) is there, ``c`` [3] metres. The warp is conditioned on
the pose relative to a reference (the training frames' mean): the axis-angle of
``R_hc R_ref^T`` and ``10 (c - c_ref)`` (decimetres, so both are about 0.1..0.5 in size).

From tracking (training, ``being eval``): camera i's ``R_i, t_i`` hold the head pose (the head model's
global rotation, neck, translation are then zero, as metrical-tracker stores it; a format that keeps
them is composed in): ``R_hc = R_i Rot(global) Rot(neck)``, ``c = R_i (root + translation) + t_i``.

From a renderer's ``HeadPose`` (``being run``): in-frame heads (rendered through the torso's own
camera intrinsics and size) use the same formulas with the frame's camera; portrait heads (another
camera, e.g. the demo avatar's close-up) carry only the rotation relative to their camera and the
translation: ``R_hc = R_cam Rot(global) Rot(neck)``, ``c = c_ref + R_cam translation`` (a renderer
without a camera: ``R_cam = R_ref``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from being_kernel.api import HeadPose
from being_kernel.head import axis_angle_to_matrix
from being_kernel.render import matrix_to_axis_angle


@dataclass
class TorsoCamera:
    """The torso's fixed camera and reference pose. K [3, 3]; size (W, H); R_ref [3, 3], c_ref [3]
    the reference head pose; root [3] the head model's rest neck base (model space, metres)."""

    K: torch.Tensor
    size: tuple[int, int]
    R_ref: torch.Tensor
    c_ref: torch.Tensor
    root: torch.Tensor

    def to(self, device: torch.device | str) -> TorsoCamera:
        return TorsoCamera(self.K.to(device), self.size, self.R_ref.to(device), self.c_ref.to(device),
                           self.root.to(device))

    def code(self, R_hc: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The relative pose [B, 6] of rotations R_hc [B, 3, 3] and neck bases c [B, 3]."""
        rel = R_hc @ self.R_ref.T.to(R_hc)
        return torch.cat([matrix_to_axis_angle(rel), 10.0 * (c - self.c_ref.to(c))], dim=-1)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Camera-space points [..., 3] -> normalised image coordinates [..., 2] (x / W, y / H)."""
        p = points @ self.K.T.to(points)
        w, h = self.size
        return p[..., :2] / p[..., 2:3] / torch.tensor([w, h], dtype=points.dtype, device=points.device)

    def px_per_metre(self, c: torch.Tensor) -> torch.Tensor:
        """[B] image scale at neck bases c [B, 3]."""
        return self.K[0, 0].to(c) / c[:, 2]


def chordal_mean(R: torch.Tensor) -> torch.Tensor:
    """The rotation [3, 3] nearest (Frobenius) to the mean of rotations R [T, 3, 3]."""
    u, _, vh = torch.linalg.svd(R.double().mean(0))
    d = torch.sign(torch.det(u @ vh))
    return (u @ torch.diag(torch.stack([torch.ones_like(d), torch.ones_like(d), d])) @ vh).to(R.dtype)


def _head_rotation(global_rot: torch.Tensor, neck: torch.Tensor) -> torch.Tensor:
    return axis_angle_to_matrix(global_rot) @ axis_angle_to_matrix(neck)


def tracked_pose(R: torch.Tensor, t: torch.Tensor, roots: torch.Tensor, global_rot: torch.Tensor,
                 neck: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(R_hc [T, 3, 3], c [T, 3]) of tracked frames: cameras R [T, 3, 3], t [T, 3], the head model's
    root joints roots [T, 3] (model space, before the global pose), and the motion's pose fields [T, 3]."""
    R_hc = R @ _head_rotation(global_rot, neck)
    c = (R @ (roots + translation)[..., None])[..., 0] + t
    return R_hc, c


def is_in_frame(pose: HeadPose, frame_size: tuple[int, int], camera: TorsoCamera) -> bool:
    """Whether a head image of ``frame_size`` was rendered through the torso's own intrinsics and size
    (then it is already in place, and its camera gives the pose directly)."""
    cam = pose.camera
    if cam is None or frame_size != camera.size or (cam.width, cam.height) != camera.size:
        return False
    return bool(torch.allclose(cam.K[0].float().cpu(), camera.K.float().cpu(), rtol=1e-3, atol=1e-2))


def head_pose(pose: HeadPose, in_frame: bool, camera: TorsoCamera) -> tuple[torch.Tensor, torch.Tensor]:
    """(R_hc [3, 3], c [3]) of one rendered head frame (see the module doc)."""
    dev = camera.R_ref.device
    g, n, tr = (x.to(dev, torch.float32) for x in (pose.global_rot, pose.neck, pose.translation))
    rot = _head_rotation(g[None], n[None])[0]
    if pose.camera is None:
        return camera.R_ref @ rot, camera.c_ref + camera.R_ref @ tr
    R, t = pose.camera.R[0].to(dev, torch.float32), pose.camera.t[0].to(dev, torch.float32)
    if in_frame:
        return R @ rot, R @ (camera.root + tr) + t
    return R @ rot, camera.c_ref + R @ tr

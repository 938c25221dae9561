"""Cameras in the OpenCV convention: x right, y down, z forward (into the scene).

A point X in world coordinates is at ``R @ X + t`` in camera coordinates and projects to pixel
``K @ (R @ X + t)`` after division by depth. Pixel (0, 0) is the top-left pixel's top-left
corner, so the centre of pixel (i, j) is at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Cameras:
    """A batch of B pinhole cameras.

    R [B, 3, 3] world-to-camera rotation;  t [B, 3] world-to-camera translation
    K [B, 3, 3] intrinsics (fx, fy, cx, cy in pixels);  width, height in pixels (shared)
    """

    R: torch.Tensor
    t: torch.Tensor
    K: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        b = self.R.shape[0]
        if self.R.shape != (b, 3, 3) or self.t.shape != (b, 3) or self.K.shape != (b, 3, 3):
            raise ValueError(f"Cameras: R [B,3,3], t [B,3], K [B,3,3] expected, got "
                             f"{tuple(self.R.shape)}, {tuple(self.t.shape)}, {tuple(self.K.shape)}")

    def __len__(self) -> int:
        return int(self.R.shape[0])

    def __getitem__(self, index: int | slice | torch.Tensor | list[int]) -> Cameras:
        """The cameras ``index`` picks (an int keeps a batch of one), same image size."""
        if isinstance(index, int):
            index = [index]  # a batch of one; out of range is an IndexError, not an empty batch
        if isinstance(index, list):
            index = torch.as_tensor(index, dtype=torch.int64)
        if isinstance(index, torch.Tensor):
            index = index.to(self.R.device)
        return Cameras(self.R[index], self.t[index], self.K[index], self.width, self.height)

    def resized(self, width: int, height: int) -> Cameras:
        """The same cameras for images resized to ``width`` x ``height``: the intrinsics scale
        with the image (fx, cx by width ratio; fy, cy by height ratio), the pose stays."""
        if width < 1 or height < 1:
            raise ValueError(f"Cameras.resized: size must be positive, got {width}x{height}")
        scale = torch.tensor([width / self.width, height / self.height, 1.0], dtype=self.K.dtype, device=self.K.device)
        return Cameras(self.R, self.t, self.K * scale[:, None], width, height)

    @property
    def viewmats(self) -> torch.Tensor:
        """[B, 4, 4] world-to-camera matrices."""
        m = torch.eye(4, dtype=self.R.dtype, device=self.R.device).repeat(len(self), 1, 1)
        m[:, :3, :3], m[:, :3, 3] = self.R, self.t
        return m

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(self.R.to(device), self.t.to(device), self.K.to(device), self.width, self.height)

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points [B, N, 3] world -> (pixels [B, N, 2], depth [B, N])."""
        cam = points @ self.R.transpose(1, 2) + self.t[:, None]
        uvw = cam @ self.K.transpose(1, 2)
        return uvw[..., :2] / uvw[..., 2:3], cam[..., 2]

    @staticmethod
    def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor, fov_y_deg: float, width: int,
                height: int) -> Cameras:
        """One camera at ``eye`` [3] looking at ``target`` [3] with world ``up`` [3] (y up in world)."""
        z = torch.nn.functional.normalize(target - eye, dim=0)
        x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=0)  # image right
        y = torch.linalg.cross(z, x)  # image down
        R = torch.stack([x, y, z])
        t = -R @ eye
        f = 0.5 * height / torch.tan(torch.deg2rad(torch.tensor(fov_y_deg / 2.0)))
        K = torch.tensor([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1.0]], dtype=eye.dtype)
        return Cameras(R[None], t[None], K[None], width, height)

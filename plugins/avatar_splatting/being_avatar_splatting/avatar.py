"""The avatar directory: ``avatar.json`` (metadata) + ``gaussians.safetensors`` (the Gaussians).

``avatar.json``::

    {
      "format": "being-splatting-avatar", "format_version": 1,
      "name": "...",
      "head_model": "demo" | "flame2020" | "flame2023" | "generic_model.pkl" | "flame2023.pkl"
                    | a path (absolute, or relative to the avatar directory) to a head-model
                      directory (being_kernel.head.save_head_model) or a FLAME .pkl,
      "motion_space": "...",            # optional; default: the head model's
      "shape": [β0, β1, ...],           # identity coefficients (may be empty)
      "camera": {"width": W, "height": H, "K": 3x3, "R": 3x3, "t": 3},   # OpenCV, world->camera
      "background": [r, g, b]           # what it was trained over (metadata; output is premultiplied)
    }

``gaussians.safetensors`` (float32 unless stated; N Gaussians): ``face_ids`` [N] int64, ``bary``
[N, 3], ``offset`` [N], ``rotation`` [N, 4] wxyz in the triangle frame, ``scale`` [N, 3] relative
to sqrt(rest triangle area), ``opacity`` [N] in [0, 1], ``color`` [N, 3] RGB, optional ``sh``
[N, K, 3] (K in 1, 4, 9, 16; 3DGS convention, colour = SH + 0.5). FLAME may not be redistributed,
so an avatar only *references* its head model; the rest mesh (for triangle areas) is the head
model's template with the avatar's shape applied.

An avatar made from a photo may also carry ``scene/`` (``being_kernel.datasets.SCENE_DIR``, a
``Scene``: the photo's background and torso, where the neck is and the head's scale); the renderer
reports it as ``info().scene`` and ``being run`` places the head in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from being_kernel import InputError
from being_kernel.api import camera_record, check_camera_record, check_tensors, read_format_json
from being_kernel.head import HeadModelData, check_binding

FORMAT_NAME = "being-splatting-avatar"
FORMAT_VERSION = 1
META_FILE, GAUSSIANS_FILE = "avatar.json", "gaussians.safetensors"

#: tensor name -> (trailing shape, dtype) ; None in the shape means "any"
TENSORS: dict[str, tuple[tuple, torch.dtype]] = {
    "face_ids": ((), torch.int64),
    "bary": ((3,), torch.float32),
    "offset": ((), torch.float32),
    "rotation": ((4,), torch.float32),
    "scale": ((3,), torch.float32),
    "opacity": ((), torch.float32),
    "color": ((3,), torch.float32),
}


@dataclass
class Avatar:
    """A SplattingAvatar: Gaussians on a head model's mesh, a camera, and where the head model comes from.

    gaussians: name -> tensor (the TENSORS above, plus optional "sh" [N, K, 3])
    camera:    {"width", "height", "K" [3,3], "R" [3,3], "t" [3]} as float lists
    """

    name: str
    head_model: str
    gaussians: dict[str, torch.Tensor]
    camera: dict
    shape: list[float] = field(default_factory=list)
    motion_space: str | None = None
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    directory: Path | None = None  # where it was loaded from (relative head-model paths resolve here)

    @property
    def num_gaussians(self) -> int:
        return int(self.gaussians["face_ids"].shape[0])

    def validate(self, where: str = "avatar") -> None:
        """Raise InputError naming the first tensor with a wrong shape, dtype or value."""
        n = check_tensors(self.gaussians, TENSORS, where, GAUSSIANS_FILE, "face_ids")
        if "sh" in self.gaussians:
            sh = self.gaussians["sh"]
            if sh.ndim != 3 or sh.shape[0] != n or sh.shape[1] not in (1, 4, 9, 16) or sh.shape[2] != 3:
                raise InputError(f"{where}: tensor 'sh' has shape {tuple(sh.shape)}, expected ({n}, K, 3), K in 1, 4, 9, 16")
        if n and int(self.gaussians["face_ids"].min()) < 0:
            raise InputError(f"{where}: tensor 'face_ids' has negative triangle indices")
        check_camera_record(self.camera, where)

    def check_head(self, head: HeadModelData, where: str = "avatar") -> None:
        """The Gaussians must sit on this head model's triangles, its shape must fit."""
        check_binding(self.gaussians["face_ids"], len(self.shape), head, where)


def save_avatar(directory: str | Path, avatar: Avatar) -> Path:
    """Write ``avatar`` as ``directory``/avatar.json + gaussians.safetensors; returns the directory."""
    from safetensors.torch import save_file

    avatar.validate()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in avatar.gaussians.items()}
    save_file(tensors, str(directory / GAUSSIANS_FILE))
    cam = camera_record(avatar.camera)
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "name": avatar.name,
            "head_model": avatar.head_model, "motion_space": avatar.motion_space,
            "shape": [float(x) for x in avatar.shape], "camera": cam,
            "background": [float(x) for x in avatar.background]}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_avatar(directory: str | Path) -> Avatar:
    """Read an avatar directory (safetensors, no pickle). InputError says what is wrong and what to do."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise InputError(f"avatar: no such directory: {directory}",
                         hint=f"point avatar.path at a directory with {META_FILE} and {GAUSSIANS_FILE}, or leave it unset for the demo avatar")
    meta_path, tensor_path = directory / META_FILE, directory / GAUSSIANS_FILE
    for p in (meta_path, tensor_path):
        if not p.is_file():
            raise InputError(f"avatar {directory}: {p.name} is missing",
                             hint=f"an avatar directory holds {META_FILE} and {GAUSSIANS_FILE}")
    meta = read_format_json(meta_path, FORMAT_NAME, FORMAT_VERSION, "upgrade being-avatar-splatting")
    for key in ("head_model", "camera"):
        if key not in meta:
            raise InputError(f"{meta_path}: '{key}' is missing")
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{tensor_path}: unreadable ({exc})") from exc
    avatar = Avatar(name=str(meta.get("name", directory.name)), head_model=str(meta["head_model"]), gaussians=tensors,
                    camera=meta["camera"], shape=[float(x) for x in meta.get("shape") or []],
                    motion_space=meta.get("motion_space"), background=tuple(meta.get("background") or (0.0, 0.0, 0.0)),
                    directory=directory)
    avatar.validate(str(directory))
    return avatar

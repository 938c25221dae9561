"""The flash avatar directory: ``avatar.json`` + ``gaussians.safetensors`` + ``deform.safetensors``.

``avatar.json``::

    {
      "format": "being-flash-avatar", "format_version": 1,
      "name": "...",
      "head_model": "demo" | "flame2020" | "flame2023" | a head-model path (as the splatting avatar),
      "motion_space": "...",
      "shape": [β0, β1, ...],
      "camera": {"width": W, "height": H, "K": 3x3, "R": 3x3, "t": 3},   # OpenCV, world->camera
      "background": [r, g, b],
      "uv_size": 128,                       # the UV map the Gaussians were placed on
      "network": {"n_expression": E, "frequencies": 8, "hidden": 256, "layers": 6}
    }

``gaussians.safetensors`` (float32 unless stated; N Gaussians): ``face_ids`` [N] int64, ``bary``
[N, 3] (the texel's surface point), ``canonical`` [N, 3] (that point on the rest mesh: the
network's position input), ``rotation`` [N, 4] base wxyz, ``scale`` [N, 3] base standard
deviations (metres), ``opacity`` [N], ``sh`` [N, K, 3] (K in 1, 4, 9, 16; colour = SH + 0.5).
``deform.safetensors``: the DeformNet parameters (network.py), loaded strictly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from being_kernel import InputError
from being_kernel.api import camera_record, check_camera_record, check_tensors, read_format_json
from being_kernel.head import HeadModelData, check_binding

from .network import DeformNet, condition_width

FORMAT_NAME = "being-flash-avatar"
FORMAT_VERSION = 1
META_FILE, GAUSSIANS_FILE, DEFORM_FILE = "avatar.json", "gaussians.safetensors", "deform.safetensors"

TENSORS: dict[str, tuple[tuple, torch.dtype]] = {
    "face_ids": ((), torch.int64),
    "bary": ((3,), torch.float32),
    "canonical": ((3,), torch.float32),
    "rotation": ((4,), torch.float32),
    "scale": ((3,), torch.float32),
    "opacity": ((), torch.float32),
}
NETWORK_KEYS = ("n_expression", "frequencies", "hidden", "layers")


@dataclass
class FlashAvatar:
    """A trained FlashAvatar: Gaussians at UV texels, its deformation network, a camera and its head model."""

    name: str
    head_model: str
    gaussians: dict[str, torch.Tensor]
    network: dict[str, int]
    deform: dict[str, torch.Tensor]
    camera: dict
    uv_size: int
    shape: list[float] = field(default_factory=list)
    motion_space: str | None = None
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    directory: Path | None = None

    @property
    def num_gaussians(self) -> int:
        return int(self.gaussians["face_ids"].shape[0])

    def build_network(self, where: str = "avatar") -> DeformNet:
        """The DeformNet with the stored parameters (strict: every name and shape must match)."""
        net_cfg = self.network
        net = DeformNet(condition_width(net_cfg["n_expression"]), net_cfg["frequencies"], net_cfg["hidden"],
                        net_cfg["layers"])
        try:
            net.load_state_dict(self.deform, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0:3]
            raise InputError(f"{where}: {DEFORM_FILE} does not fit the network avatar.json describes "
                             f"({' '.join(s.strip() for s in first)})") from None
        return net

    def validate(self, where: str = "avatar") -> None:
        """InputError naming the first tensor or field that is wrong."""
        n = check_tensors(self.gaussians, TENSORS, where, GAUSSIANS_FILE, "face_ids")
        sh = self.gaussians.get("sh")
        if sh is None or sh.ndim != 3 or sh.shape[0] != n or sh.shape[1] not in (1, 4, 9, 16) or sh.shape[2] != 3:
            got = "missing" if sh is None else f"shape {tuple(sh.shape)}"
            raise InputError(f"{where}: tensor 'sh' is {got}, expected ({n}, K, 3), K in 1, 4, 9, 16")
        if n and int(self.gaussians["face_ids"].min()) < 0:
            raise InputError(f"{where}: tensor 'face_ids' has negative triangle indices")
        if not (isinstance(self.network, dict) and all(isinstance(self.network.get(k), int) and self.network[k] >= 0
                                                        for k in NETWORK_KEYS)):
            raise InputError(f"{where}: 'network' must give integers {', '.join(NETWORK_KEYS)}, got {self.network!r}")
        check_camera_record(self.camera, where)

    def check_head(self, head: HeadModelData, where: str = "avatar") -> None:
        """The Gaussians must sit on this head model's triangles, its shape and expressions must fit."""
        check_binding(self.gaussians["face_ids"], len(self.shape), head, where)
        if self.network["n_expression"] > head.n_expression:
            raise InputError(f"{where}: the network takes {self.network['n_expression']} expression coefficients, "
                             f"head model '{head.name}' has {head.n_expression}")


def save_avatar(directory: str | Path, avatar: FlashAvatar) -> Path:
    """Write ``avatar`` into ``directory`` (avatar.json + the two safetensors files); returns it."""
    from safetensors.torch import save_file

    avatar.validate()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in avatar.gaussians.items()}, str(directory / GAUSSIANS_FILE))
    save_file({k: v.detach().cpu().contiguous() for k, v in avatar.deform.items()}, str(directory / DEFORM_FILE))
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "name": avatar.name,
            "head_model": avatar.head_model, "motion_space": avatar.motion_space,
            "shape": [float(x) for x in avatar.shape], "camera": camera_record(avatar.camera),
            "background": [float(x) for x in avatar.background], "uv_size": int(avatar.uv_size),
            "network": {k: int(avatar.network[k]) for k in NETWORK_KEYS}}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_avatar(directory: str | Path) -> FlashAvatar:
    """Read a flash avatar directory (safetensors, no pickle); InputError says what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise InputError(f"avatar: no such directory: {directory}",
                         hint="point avatar.path at a directory that `being fit --avatar flash` wrote")
    meta_path = directory / META_FILE
    for name in (META_FILE, GAUSSIANS_FILE, DEFORM_FILE):
        if not (directory / name).is_file():
            raise InputError(f"avatar {directory}: {name} is missing",
                             hint=f"a flash avatar directory holds {META_FILE}, {GAUSSIANS_FILE} and {DEFORM_FILE}")
    meta = read_format_json(meta_path, FORMAT_NAME, FORMAT_VERSION, "upgrade being-avatar-flash")
    for key in ("head_model", "camera", "network", "uv_size"):
        if key not in meta:
            raise InputError(f"{meta_path}: '{key}' is missing")
    loaded = {}
    for name in (GAUSSIANS_FILE, DEFORM_FILE):
        try:
            loaded[name] = load_file(str(directory / name))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{directory / name}: unreadable ({exc})") from exc
    avatar = FlashAvatar(name=str(meta.get("name", directory.name)), head_model=str(meta["head_model"]),
                         gaussians=loaded[GAUSSIANS_FILE], network=meta["network"], deform=loaded[DEFORM_FILE],
                         camera=meta["camera"], uv_size=int(meta["uv_size"]),
                         shape=[float(x) for x in meta.get("shape") or []], motion_space=meta.get("motion_space"),
                         background=tuple(meta.get("background") or (0.0, 0.0, 0.0)), directory=directory)
    avatar.validate(str(directory))
    return avatar

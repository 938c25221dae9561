"""INSTA datasets (github.com/Zielon/INSTA, ``scripts/generate.sh``, made from metrical-tracker
output): ``transforms.json`` (all frames) and ``transforms_{train,test,val}.json`` (the last N frames
are the test split, val its last 20), ``images/NNNNN.png`` (RGBA: the alpha channel is the matte),
``flame/exp/NNNNN.txt`` (100 expression coefficients, one per line), ``meshes/NNNNN.obj`` (the
tracker's FLAME mesh of the frame, no head pose) and ``canonical.obj`` (the tracked identity, jaw
opened 12 degrees), both with FLAME's vertices in FLAME's order.

``transform_matrix`` is the inverse of the tracker's OpenCV ``[R | t]`` (camera to world, OpenCV
axes), so the head pose lives in the camera, as in the tracker. INSTA writes only the expression:
jaw, eyes and eyelids are recovered by posing the head model onto each frame's mesh, the shape from
``canonical.obj`` (``pose_recovery``), unless ``flame/jaw`` and ``flame/eyes`` (and ``flame/eyelids``,
``flame/shape``) files give them, one per frame with the tracker's values (jaw and eyes as 6D
rotations) written as ``flame/exp`` is. See docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..head.flame import FlameModel
from ..head.refs import resolve_head_model
from ..render.conventions import from_insta
from ..types import Motion
from .common import check_image_files, has_alpha, pad_or_cut_width, read_json, read_txt, stack_cameras
from .pose_recovery import CANONICAL_JAW, recover_articulation, recover_shape
from .rotation6d import rotation_6d_to_axis_angle
from .video import Tracking

DESCRIPTION = "INSTA: transforms*.json with images/*.png (RGBA), flame/exp/*.txt and meshes/*.obj"
#: the files of INSTA's frame lists, any of which makes a directory an INSTA dataset
TRANSFORMS = tuple(f"transforms{s}.json" for s in ("", "_train", "_test", "_val"))

_HINT_POSE = ("write every frame's flame/jaw and flame/eyes (the tracker's 6D values, one per line, as flame/exp "
              "is written), or remove both directories to recover the poses from meshes/*.obj")


def _frames(path: Path) -> tuple[dict, list]:
    doc = read_json(path)
    frames = doc.get("frames")
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        raise InputError(f"{path}: missing key 'frames' (a list of objects)")
    return doc, frames


def _entries(root: Path) -> tuple[list[tuple[Path, dict, int, dict]], int | None]:
    """(file, its parsed JSON, index, frame) for every frame in order, and the test split's length:
    transforms.json, else transforms_train.json then transforms_test.json."""
    if (root / "transforms.json").is_file():
        names = ["transforms.json"]
    elif (root / "transforms_train.json").is_file():
        names = ["transforms_train.json", "transforms_test.json"]
    else:
        raise InputError(f"{root}: neither transforms.json nor transforms_train.json")
    entries = []
    for path in (root / n for n in names):
        if path.is_file():
            doc, frames = _frames(path)
            entries += [(path, doc, i, f) for i, f in enumerate(frames)]
    if not entries:
        raise InputError(f"{root / names[0]}: lists no frames")
    test = root / "transforms_test.json"
    return entries, len(_frames(test)[1]) if test.is_file() else None


def _explicit_poses(root: Path, stems: list[str]) -> np.ndarray:
    """[T, 11] jaw, eyes (axis-angle) and eyelids from the flame/jaw, flame/eyes (6D) and optional
    flame/eyelids files of every frame."""
    out = []
    for stem in stems:
        six_d = np.concatenate([read_txt(root / f"flame/jaw/{stem}.txt", 6, _HINT_POSE),
                                read_txt(root / f"flame/eyes/{stem}.txt", 12, _HINT_POSE)])
        try:
            rot = rotation_6d_to_axis_angle(torch.from_numpy(six_d.reshape(3, 6))).numpy()
        except ValueError as exc:
            raise InputError(f"{root / 'flame'}: jaw/{stem}.txt or eyes/{stem}.txt is {exc}") from exc
        lids = root / f"flame/eyelids/{stem}.txt"
        out.append(np.concatenate([rot.reshape(9), read_txt(lids, 2) if lids.is_file() else np.zeros(2)]))
    return np.stack(out)


def _recover(root: Path, ref: str, expression: np.ndarray, exp_sources: list[Path], meshes: list[Path],
             shape: np.ndarray | None, shape_source: Path) -> tuple[np.ndarray | None, Path, np.ndarray]:
    """(shape [S] or None, where it came from, [T, 11] jaw, eyes, eyelids) recovered from the meshes
    with head model ``ref``; the shape from canonical.obj unless given or the model has none."""
    model = FlameModel(resolve_head_model(ref, root, where=f"{root}: head_model")).double()
    if shape is None and model.n_shape:
        shape_source = root / "canonical.obj"
        if not shape_source.is_file():
            raise InputError(f"{shape_source}: missing (needed to recover the identity of head model {ref!r})",
                             hint="restore INSTA's canonical.obj, or write the tracker's flame shape to "
                                  f"flame/shape/{meshes[0].stem}.txt, one value per line")
        canonical = Motion.zeros(1, 0, space=model.motion_space, dtype=torch.float64)
        canonical.jaw[0] = torch.tensor(CANONICAL_JAW)
        shape = recover_shape(model, ref, shape_source, canonical)
    beta = pad_or_cut_width(np.zeros((1, 0)) if shape is None else shape[None], model.n_shape, "shape", [shape_source], ref)
    check_image_files(meshes, "mesh")
    psi = pad_or_cut_width(expression, model.n_expression, "expression", exp_sources, ref)
    poses = recover_articulation(model, ref, meshes, torch.from_numpy(psi), torch.from_numpy(beta[0]))
    return shape, shape_source, poses


def detect(path: Path) -> Path | None:
    """The dataset directory when ``path`` is one holding transforms*.json, or such a file."""
    if path.is_file():
        return path.parent if path.name.startswith("transforms") and path.suffix == ".json" else None
    return path if any((path / name).is_file() for name in TRANSFORMS) else None


def read(root: Path, path: Path, head_model: str) -> Tracking:
    """The registry's entry (``path`` adds nothing: the frame lists are found from ``root``)."""
    return read_insta(root, head_model)


def read_insta(root: Path, head_model: str) -> Tracking:
    """Read an INSTA dataset at ``root`` (the directory holding ``transforms*.json``); poses missing
    from the files are recovered from the meshes with ``head_model`` (a reference, see head.refs)."""
    entries, test_n = _entries(root)
    images, cams, exps, sources, meshes = [], [], [], [], []
    for path, doc, i, frame in entries:
        if not isinstance(frame.get("file_path"), str):
            raise InputError(f"{path}: frames[{i}] missing key 'file_path'")
        image = root / frame["file_path"]
        stem = image.stem
        try:
            cam = from_insta(doc, i)
        except ValueError as exc:
            raise InputError(f"{path}: frames[{i}]: {exc}") from exc
        if cams and (cam.width, cam.height) != (cams[0].width, cams[0].height):
            raise InputError(f"{path}: frames[{i}] is {cam.width}x{cam.height}, the first frame "
                             f"{cams[0].width}x{cams[0].height} (frames of different image sizes)")
        exp_path = root / frame.get("exp_path", f"flame/exp/{stem}.txt")
        exps.append(read_txt(exp_path, None))
        images.append(image)
        cams.append(cam)
        sources.append(exp_path)
        meshes.append(root / frame.get("mesh_path", f"meshes/{stem}.obj"))
    if len({len(e) for e in exps}) > 1:
        raise InputError(f"{root}: flame/exp files differ in length")
    check_image_files(images)
    expression = np.stack(exps)
    shape_source = root / f"flame/shape/{images[0].stem}.txt"
    shape = read_txt(shape_source, None) if shape_source.is_file() else None
    if any((root / "flame" / d).is_dir() for d in ("jaw", "eyes")):
        poses = _explicit_poses(root, [p.stem for p in images])
    else:
        shape, shape_source, poses = _recover(root, head_model, expression, sources, meshes, shape, shape_source)
    n = len(images)
    return Tracking(
        expression=expression, global_rot=np.zeros((n, 3)), neck=np.zeros((n, 3)), jaw=poses[:, :3],
        eyes=poses[:, 3:9], eyelids=poses[:, 9:], translation=np.zeros((n, 3)), shape=shape,
        cameras=stack_cameras(cams),
        image_paths=images, mask_paths=list(images) if has_alpha(images[0]) else [None] * n, sources=sources,
        shape_source=shape_source, test_frames=test_n)

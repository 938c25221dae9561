"""Head-model references: the short strings that avatars and datasets use to name a head model.

A reference is ``"demo"`` (the procedural demo head), a FLAME release (``"flame2020"`` or
``"generic_model.pkl"``, ``"flame2023"`` or ``"flame2023.pkl"``, found via ``$BEING_FLAME_DIR`` or
the user cache), or a path (absolute, or relative to ``directory``) to a head-model directory
(``loaders.save_head_model``) or a FLAME ``.pkl``. FLAME may not be redistributed, so files that
Being writes only ever *reference* their head model.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .data import HeadModelData

#: reference -> FLAME release year
FLAME_REFS = {"flame2020": "2020", "generic_model.pkl": "2020", "flame2023": "2023", "flame2023.pkl": "2023"}


def resolve_head_model(ref: str, directory: Path | None = None, *, where: str = "head_model") -> HeadModelData:
    """Load the head model that ``ref`` names (see the module doc); InputError if it cannot be found."""
    from . import loaders

    if ref == "demo":
        from .demo_head import build_demo_head

        return build_demo_head()
    if ref in FLAME_REFS:
        return loaders.load_flame_pkl(loaders.find_flame_model(version=FLAME_REFS[ref]))
    p = Path(ref).expanduser()
    if not p.is_absolute() and directory is not None:
        p = directory / p
    if p.is_dir():
        return loaders.load_head_model(p)
    if p.is_file() and p.suffix == ".pkl":
        return loaders.load_flame_pkl(p)
    raise InputError(
        f"{where}: head model {ref!r} not found (looked for {p})",
        hint='a head model reference is "demo", "flame2020"/"flame2023" (FLAME, found via $BEING_FLAME_DIR '
        "or the user cache), or a path to a head-model directory (save_head_model) or FLAME .pkl; put the "
        "head model there or fix the reference",
    )


def carry_head_model(ref: str, dataset: Path, directory: Path, name: str = "head_model") -> str:
    """The head-model reference an asset trained on ``dataset`` should store, made to outlive the
    dataset: a head-model *directory* (e.g. ``being prepare``'s fitted identity) is copied into
    ``directory``/``name`` and referenced relatively; "demo", the FLAME names and FLAME .pkl
    files (which may not be redistributed) stay references, a relative path made absolute."""
    import shutil

    if ref == "demo" or ref in FLAME_REFS:
        return ref
    p = Path(ref).expanduser()
    p = p if p.is_absolute() else (Path(dataset) / p).resolve()
    if p.is_dir():
        shutil.copytree(p, Path(directory) / name)
        return name
    return str(p)


def check_binding(face_ids, n_shape: int, head: HeadModelData, where: str) -> None:  # noqa: ANN001 - an int tensor
    """InputError unless primitives on triangles ``face_ids`` [N] and ``n_shape`` identity
    coefficients fit ``head`` (an avatar made for another head model fails here, not in indexing)."""
    f = len(head.faces)
    if len(face_ids) and int(face_ids.max()) >= f:
        raise InputError(f"{where}: tensor 'face_ids' refers to triangle {int(face_ids.max())}, "
                         f"but head model '{head.name}' has {f} triangles",
                         hint="the avatar was made for another head model; check head_model in avatar.json")
    if n_shape > head.n_shape:
        raise InputError(f"{where}: shape has {n_shape} coefficients, head model '{head.name}' has {head.n_shape}")

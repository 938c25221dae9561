"""Read and write FLAME-layout head models as :class:`HeadModelData`.

* ``load_flame_pkl``: the official FLAME pickles (FLAME 2020 ``generic_model.pkl``, FLAME 2023
  ``flame2023.pkl``), read through :class:`RestrictedUnpickler`, which builds numpy arrays, sparse
  matrices and chumpy stand-ins and refuses every other global, so a tampered file cannot run code.
* ``load_flame_masks``: ``FLAME_masks.pkl`` region vertex indices, same unpickler.
* ``save_head_model`` / ``load_head_model``: the project's own format, a directory with
  ``model.safetensors`` (arrays) and ``model.json`` (metadata), loaded without pickle at all.
* ``find_flame_model``: explicit path, then ``$BEING_FLAME_DIR``, then the user cache, then an
  error that says how to get FLAME (``weights.find_weights``; FLAME has no hub to read).
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..formats import read_format_json
from ..weights import find_weights
from .data import FLAME_PARENTS, HeadModelData

FLAME_URL = "https://flame.is.tue.mpg.de"
ENV_FLAME_DIR = "BEING_FLAME_DIR"
#: File name of each FLAME release inside the official download.
FLAME_FILES = {"2020": "generic_model.pkl", "2023": "flame2023.pkl"}
FORMAT_NAME = "being-head-model"
FORMAT_VERSION = 1
N_SHAPE_FLAME = 300  # official shapedirs: 300 identity components, then the expression ones


class UnsafePickleError(InputError):
    """A pickle referenced a global outside the allow-list; nothing from it was called."""

    def __init__(self, global_name: str, source: str) -> None:
        super().__init__(
            f"{source}: refused to load, the pickle references '{global_name}', which a FLAME model file never does",
            hint="the file is not an official FLAME model or has been tampered with; download it again from "
            + FLAME_URL,
        )
        self.global_name = global_name
        self.source = source


# --------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------


class ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch``: keeps the pickled state; the array is ``state['x']``.

    chumpy's ``Ch.__getstate__`` pickles its ``__dict__`` minus ``_parents``/``_cache``, so the
    state holds ``x`` (the value) plus bookkeeping (``_dirty_vars``, ``_itr``, ``_make_dense``,
    ``_make_sparse``, ``_depends_on_deps``) that we ignore.
    """

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def array(self) -> np.ndarray:
        x = self.state.get("x") if isinstance(self.state, dict) else None
        if isinstance(x, ChumpyArray):
            return x.array()
        if x is None:
            raise ValueError("a chumpy value without an 'x' array")
        return np.asarray(x)


class SparseState:
    """Stand-in for a pickled ``scipy.sparse.csc_matrix``: keeps its state (``_shape``,
    ``indptr``, ``indices``, ``data``); :meth:`dense` rebuilds the matrix with validated indices.
    A stand-in, rather than scipy's class, so unpickling never runs scipy code on file data."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def dense(self) -> np.ndarray:
        s = self.state if isinstance(self.state, dict) else {}
        shape = s.get("_shape", s.get("shape"))
        if shape is None or len(shape) != 2 or any(k not in s for k in ("indptr", "indices", "data")):
            raise ValueError("a sparse matrix without _shape/indptr/indices/data")
        rows, cols = int(shape[0]), int(shape[1])
        indptr, indices = np.asarray(s["indptr"], np.int64), np.asarray(s["indices"], np.int64)
        data = np.asarray(s["data"], np.float64)
        if s.get("format", "csc") != "csc" or indptr.shape != (cols + 1,) or indptr[0] != 0 \
                or np.any(np.diff(indptr) < 0) or indptr[-1] != len(indices) or len(indices) != len(data) \
                or (indices.size and (indices.min() < 0 or indices.max() >= rows)):
            raise ValueError("a malformed CSC sparse matrix")
        dense = np.zeros((rows, cols), np.float64)
        col_of = np.repeat(np.arange(cols), np.diff(indptr))
        np.add.at(dense, (indices, col_of), data)  # add: duplicate entries sum, as in scipy
        return dense


def _reconstructor(cls: type, base: type, state: Any) -> object:
    """``copy_reg._reconstructor`` (protocol 0/1 pickles of new-style objects), limited to
    building our stand-ins: the real one would call ``base.__init__`` with file data."""
    if cls not in (ChumpyArray, SparseState) or base is not object or state is not None:
        raise pickle.UnpicklingError("copy_reg._reconstructor used for something other than a chumpy/sparse object")
    return object.__new__(cls)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # numpy 2 renamed numpy.core to numpy._core (numpy 1.26 has an empty numpy._core stub)
    core = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
    multiarray, numeric = (importlib.import_module(f"{core}.{m}") for m in ("multiarray", "numeric"))
    found = {"_reconstruct": multiarray._reconstruct, "scalar": multiarray.scalar, "_frombuffer": numeric._frombuffer}
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for prefix in ("numpy.core", "numpy._core"):  # numpy 1 writes the first, numpy 2 the second
        table[(f"{prefix}.multiarray", "_reconstruct")] = found["_reconstruct"]
        table[(f"{prefix}.multiarray", "scalar")] = found["scalar"]
        table[(f"{prefix}.numeric", "_frombuffer")] = found["_frombuffer"]
    return table


#: Everything a FLAME pickle may reference. Python 2 names (``__builtin__``, ``copy_reg``) arrive
#: here unmapped because overriding ``find_class`` bypasses pickle's own fix_imports mapping.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("chumpy.ch", "Ch"): ChumpyArray,
    ("scipy.sparse.csc", "csc_matrix"): SparseState,  # scipy < 1.8 module path (the 2017-2020 files)
    ("scipy.sparse._csc", "csc_matrix"): SparseState,  # scipy >= 1.8
    ("__builtin__", "set"): set,  # chumpy's _dirty_vars
    ("builtins", "set"): set,
    ("__builtin__", "object"): object,  # argument of copy_reg._reconstructor
    ("builtins", "object"): object,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for FLAME files: resolves only the globals in ``_ALLOWED``.

    Every callable a pickle can invoke (REDUCE, NEWOBJ, BUILD's ``__setstate__``) must first come
    through ``find_class``, so refusing there means a refused global is never even imported.
    """

    def __init__(self, file, source: str) -> None:  # noqa: ANN001 - a binary file object
        super().__init__(file, encoding="latin1")  # Python 2 str holds raw array bytes
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{module}.{name}", self.source) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"persistent id {pid!r}", self.source)


def restricted_load(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; ``InputError`` if it is no pickle."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return RestrictedUnpickler(fh, str(path)).load()
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any decoding failure means "not a usable pickle"
        raise InputError(f"{path}: not a readable FLAME pickle ({type(exc).__name__}: {exc})",
                         hint="download the file again from " + FLAME_URL) from exc


def _array(value: Any) -> np.ndarray:
    """A plain ndarray from what a FLAME pickle stores (ndarray, chumpy value, sparse matrix)."""
    if isinstance(value, ChumpyArray):
        return value.array()
    if isinstance(value, SparseState):
        return value.dense()
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(f"expected an array, found {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# Official FLAME files
# --------------------------------------------------------------------------------------------

_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")


def _parents_from_kintree(kintree: np.ndarray) -> np.ndarray:
    """Row 1 holds joint ids, row 0 each joint's parent id (the root's is a sentinel)."""
    ids = [int(i) for i in kintree[1]]
    index = {jid: k for k, jid in enumerate(ids)}
    parents = np.array([-1] + [index.get(int(p), -2) for p in kintree[0, 1:]], np.int64)
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, len(parents))):
        raise ValueError(f"kintree_table {kintree.tolist()} is not a tree with parents before children")
    return parents


def _motion_space_for(path: Path) -> str:
    return "flame2023" if "2023" in path.name else "flame2020"


def load_flame_pkl(path: str | Path, *, motion_space: str | None = None, n_shape: int = N_SHAPE_FLAME,
                   name: str | None = None) -> HeadModelData:
    """Load an official FLAME pickle into :class:`HeadModelData` (float32, dense).

    shapedirs [V, 3, K] is split into ``n_shape`` identity then ``K - n_shape`` expression
    components. ``motion_space`` defaults to "flame2023" when the file name contains 2023, else
    "flame2020". Optional files beside the model are picked up: ``l_eyelid.npy`` and
    ``r_eyelid.npy`` (eyelid blendshapes [V, 3] or [1, V, 3]) and ``FLAME_masks.pkl`` (regions;
    also looked for in a ``FLAME_masks/`` subfolder, as the masks download unpacks).
    """
    path = Path(path)
    if not path.is_file():
        version = "2023" if "2023" in path.name else "2020"
        raise InputError(f"FLAME model file not found: {path}", hint=_get_flame_hint(version))
    raw = restricted_load(path)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not a FLAME model (the pickle holds a {type(raw).__name__}, not a dict)")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise InputError(f"{path}: not a FLAME model, missing {', '.join(missing)}",
                         hint="use generic_model.pkl (FLAME 2020) or flame2023.pkl from " + FLAME_URL)
    try:
        a = {k: _array(raw[k]) for k in _REQUIRED}
        v_template = a["v_template"].astype(np.float32)
        num_v = v_template.shape[0]
        shapedirs = a["shapedirs"]
        if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num_v, 3) or shapedirs.shape[2] <= n_shape:
            raise ValueError(f"shapedirs has shape {shapedirs.shape}, expected ({num_v}, 3, >{n_shape})")
        posedirs = a["posedirs"]
        j_regressor, weights = a["J_regressor"], a["weights"]
        parents = _parents_from_kintree(a["kintree_table"])
        eyelids = _load_eyelids(path.parent, num_v)
        masks_path = next((m for m in (path.parent / "FLAME_masks.pkl", path.parent / "FLAME_masks" / "FLAME_masks.pkl")
                           if m.is_file()), None)
        data = HeadModelData(
            v_template=v_template,
            faces=a["f"].astype(np.int64),
            shapedirs=np.ascontiguousarray(shapedirs[:, :, :n_shape], np.float32),
            exprdirs=np.ascontiguousarray(shapedirs[:, :, n_shape:], np.float32),
            posedirs=posedirs.astype(np.float32),
            j_regressor=j_regressor.astype(np.float32),
            lbs_weights=weights.astype(np.float32),
            motion_space=motion_space or _motion_space_for(path),
            name=name or path.stem,
            parents=parents,
            eyelid_dirs=eyelids,
            regions=load_flame_masks(masks_path) if masks_path else {},
        )
        data.validate()
    except InputError:
        raise
    except (ValueError, IndexError, TypeError) as exc:
        raise InputError(f"{path}: not a usable FLAME model ({exc})",
                         hint="use generic_model.pkl (FLAME 2020) or flame2023.pkl from " + FLAME_URL) from exc
    return data


def _load_eyelids(folder: Path, num_v: int) -> np.ndarray | None:
    """``l_eyelid.npy`` + ``r_eyelid.npy`` (vertex offsets of a closed eyelid, as distributed by
    metrical-tracker/SMIRK/GaussianAvatars-style FLAME 2023 setups) -> [V, 3, 2] (left, right)."""
    left, right = folder / "l_eyelid.npy", folder / "r_eyelid.npy"
    if not (left.is_file() and right.is_file()):
        return None
    sides = []
    for p in (left, right):
        arr = np.load(p, allow_pickle=False)  # plain arrays only: no pickle from .npy either
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != (num_v, 3):
            raise InputError(f"{p}: eyelid blendshape has shape {arr.shape}, expected ({num_v}, 3)")
        sides.append(arr.astype(np.float32))
    return np.stack(sides, axis=-1)


#: Kernel region names built from FLAME_masks.pkl regions (the originals are kept as well).
_REGION_UNIONS = {
    "eyes": ("left_eyeball", "right_eyeball"),
    "ears": ("left_ear", "right_ear"),
    "neck_boundary": ("boundary",),  # FLAME's 'boundary' is the ring where the neck is cut
}


def load_flame_masks(path: str | Path) -> dict[str, np.ndarray]:
    """``FLAME_masks.pkl`` -> region name -> sorted unique int64 vertex indices.

    Keeps FLAME's names (lips, face, neck, forehead, nose, scalp, eye_region, left/right_eyeball,
    left/right_ear, left/right_eye_region, boundary) and adds "eyes", "ears", "neck_boundary".
    """
    path = Path(path)
    raw = restricted_load(path)
    if not isinstance(raw, dict):
        raise InputError(f"{path}: not a FLAME masks file (holds a {type(raw).__name__}, not a dict)")
    regions: dict[str, np.ndarray] = {}
    try:
        for key, value in raw.items():
            idx = _array(value)
            if not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
                raise ValueError(f"region '{key}' is not a 1-D integer array")
            regions[str(key)] = np.unique(idx.astype(np.int64))
    except ValueError as exc:
        raise InputError(f"{path}: not a usable FLAME masks file ({exc})") from exc
    for name, parts in _REGION_UNIONS.items():
        if name not in regions and all(p in regions for p in parts):
            regions[name] = np.unique(np.concatenate([regions[p] for p in parts]))
    return regions


# --------------------------------------------------------------------------------------------
# The project's own format
# --------------------------------------------------------------------------------------------

_ARRAY_FIELDS = ("v_template", "faces", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights",
                 "parents", "eyelid_dirs", "uv_coords", "uv_faces", "texture")


def _safetensors_numpy():  # noqa: ANN202 - module
    try:
        import safetensors.numpy as stn
    except ImportError as exc:
        raise InputError("the head-model format needs the 'safetensors' package",
                         hint="pip install safetensors") from exc
    return stn


def save_head_model(data: HeadModelData, directory: str | Path) -> Path:
    """Write ``data`` to ``directory``/model.safetensors + model.json; returns the directory."""
    data.validate()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f: np.ascontiguousarray(getattr(data, f)) for f in _ARRAY_FIELDS if getattr(data, f) is not None}
    arrays.update({f"region.{k}": np.ascontiguousarray(v, np.int64) for k, v in data.regions.items()})
    _safetensors_numpy().save_file(arrays, str(directory / "model.safetensors"))
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "name": data.name,
            "motion_space": data.motion_space, "expression_names": data.expression_names,
            "arrays": sorted(arrays)}
    (directory / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_head_model(directory: str | Path) -> HeadModelData:
    """Read a directory written by :func:`save_head_model` (no pickle involved)."""
    directory = Path(directory)
    meta_path, arr_path = directory / "model.json", directory / "model.safetensors"
    if not meta_path.is_file() or not arr_path.is_file():
        raise InputError(f"{directory}: not a head model directory (needs model.json and model.safetensors)")
    meta = read_format_json(meta_path, FORMAT_NAME, FORMAT_VERSION, "upgrade being")
    try:
        arrays = _safetensors_numpy().load_file(str(arr_path))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt file
        raise InputError(f"{arr_path}: unreadable ({exc})") from exc
    fields = {f: arrays[f] for f in _ARRAY_FIELDS if f in arrays}
    missing = [f for f in ("v_template", "faces", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights")
               if f not in fields]
    if missing:
        raise InputError(f"{arr_path}: missing arrays {', '.join(missing)}")
    fields.setdefault("parents", FLAME_PARENTS.copy())
    regions = {k[len("region."):]: v for k, v in arrays.items() if k.startswith("region.")}
    data = HeadModelData(**fields, regions=regions, motion_space=str(meta.get("motion_space", "")),
                         name=str(meta.get("name", directory.name)), expression_names=meta.get("expression_names"))
    try:
        data.validate()
    except ValueError as exc:
        raise InputError(f"{directory}: {exc}") from exc
    return data


# --------------------------------------------------------------------------------------------
# Finding FLAME on disk
# --------------------------------------------------------------------------------------------


def flame_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/being/flame`` (``~/.cache/being/flame`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "being" / "flame"


def _get_flame_hint(version: str) -> str:
    filename = FLAME_FILES.get(version, FLAME_FILES["2020"])
    release = "FLAME 2023 (the version with jaw rotation)" if version == "2023" else "FLAME 2020"
    return (f"FLAME needs a free registration at {FLAME_URL}; after signing in, download {release} and put "
            f"{filename} at {flame_cache_dir() / filename}")


def find_flame_model(explicit: str | Path | None = None, version: str = "2020") -> Path:
    """Locate a FLAME pickle (``weights.find_weights``): ``explicit`` (the file, or a folder holding
    the release's file), then ``$BEING_FLAME_DIR``, then :func:`flame_cache_dir`; otherwise
    ``InputError`` that says where to get FLAME and where to put it. A wrong explicit path or
    ``$BEING_FLAME_DIR`` is an error, never a fall-back to another model. ``version``: "2020"
    (generic_model.pkl) or "2023" (flame2023.pkl).
    """
    if version not in FLAME_FILES:
        raise ValueError(f"unknown FLAME version {version!r}; known: {', '.join(FLAME_FILES)}")
    filename = FLAME_FILES[version]
    if explicit is not None and Path(explicit).expanduser().is_file():
        return Path(explicit).expanduser()
    folder = find_weights(f"FLAME {version} model ({filename})", explicit=explicit, env_var=ENV_FLAME_DIR,
                          hub_repo=None, files=[filename], hint=_get_flame_hint(version),
                          cache_dirs=[flame_cache_dir()])
    return folder / filename

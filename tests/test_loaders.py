"""FLAME loaders: the restricted unpickler on files laid out like the official ones, masks,
eyelids, the project's own format, and where FLAME is looked for.

``write_flame_pkl`` writes a small random model with the official file's structure: a Python 2
style protocol-2 pickle (byte strings as BINSTRING, ``__builtin__``/``numpy.core`` names) of a
dict whose arrays are numpy arrays, ``chumpy.ch.Ch`` objects (state dict with ``x``) and a
``scipy.sparse.csc.csc_matrix`` J_regressor. test_flame.py imports it for the smplx comparison.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import pickletools
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from being_kernel.errors import InputError
from being_kernel.head.data import FLAME_PARENTS, HeadModelData
from being_kernel.head.loaders import (
    ENV_FLAME_DIR,
    UnsafePickleError,
    find_flame_model,
    load_flame_masks,
    load_flame_pkl,
    load_head_model,
    restricted_load,
    save_head_model,
)

N_SHAPE, N_EXPR, N_JOINTS = 300, 100, 5

# --------------------------------------------------------------------------------------------
# Writing FLAME-layout pickles the way the official (Python 2, chumpy-era) files are written
# --------------------------------------------------------------------------------------------


class _Ch:
    """Pickles as ``chumpy.ch.Ch`` with the state chumpy's ``Ch.__getstate__`` produces."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._dirty_vars = {"x"}
        self._itr = None
        self._make_dense = False
        self._make_sparse = False
        self._depends_on_deps = {}


class _Csc:
    """Pickles as ``scipy.sparse.csc.csc_matrix`` with an old-scipy instance dict."""

    def __init__(self, dense: np.ndarray) -> None:
        rows, cols = np.nonzero(dense.T)  # column-major walk: CSC order
        self._shape = dense.shape
        self.maxprint = 50
        self.format = "csc"
        self.indices = cols.astype(np.int32)
        self.data = dense.T[rows, cols].astype(np.float64)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[1]))]).astype(np.int32)


def _np_reconstruct():  # the same function under numpy 1 (numpy.core) and numpy 2 (numpy._core)
    return np.zeros(0).__reduce__()[0]


# Globals written under the names a Python 2 / numpy 1 / old scipy pickler used.
_PY2_NAMES = {
    _Ch: ("chumpy.ch", "Ch"),
    _Csc: ("scipy.sparse.csc", "csc_matrix"),
    _np_reconstruct(): ("numpy.core.multiarray", "_reconstruct"),
}


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table is editable
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: str | bytes) -> None:
        # Python 2 wrote byte strings (keys, dtype codes, raw array data) as BINSTRING.
        raw = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str

    def save_global(self, obj, name=None):  # noqa: ANN001, ANN201 - pickle's signature
        target = _PY2_NAMES.get(obj)
        if target is None:
            return super().save_global(obj, name)
        self.write(pickle.GLOBAL + f"{target[0]}\n{target[1]}\n".encode())
        self.memoize(obj)


def py2_pickle(obj: object, protocol: int = 2) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def pickle_globals(payload: bytes) -> set[tuple[str, str]]:
    return {tuple(arg.split(" ", 1)) for op, arg, _ in pickletools.genops(payload) if op.name == "GLOBAL"}


def random_flame_arrays(num_v: int = 300, num_f: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    """A random model in the official layout: shapedirs [V,3,300+100], posedirs [V,3,36],
    J_regressor [5,V], weights [V,5] (some zeros, so the jaw moves only part of the mesh)."""
    rng = np.random.default_rng(seed)
    v_template = rng.normal(0.0, 0.08, (num_v, 3))
    faces = np.stack([rng.choice(num_v, 3, replace=False) for _ in range(num_f)]).astype(np.uint32)
    j_regressor = np.zeros((N_JOINTS, num_v))
    for j in range(N_JOINTS):
        idx = rng.choice(num_v, 8, replace=False)
        j_regressor[j, idx] = rng.dirichlet(np.ones(8))
    weights = rng.random((num_v, N_JOINTS)) * (rng.random((num_v, N_JOINTS)) < 0.5)
    weights[weights.sum(1) == 0, 0] = 1.0
    weights /= weights.sum(1, keepdims=True)
    return {
        "v_template": v_template,
        "f": faces,
        "shapedirs": rng.normal(0.0, 1e-3, (num_v, 3, N_SHAPE + N_EXPR)),
        "posedirs": rng.normal(0.0, 1e-3, (num_v, 3, 9 * (N_JOINTS - 1))),
        "J_regressor": j_regressor,
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": weights,
    }


def write_flame_pkl(path: Path, arrays: dict[str, np.ndarray] | None = None, protocol: int = 2,
                    extra: dict | None = None) -> Path:
    """Write ``arrays`` (default: ``random_flame_arrays()``) as an official-style FLAME pickle."""
    a = arrays if arrays is not None else random_flame_arrays()
    model = {
        "f": a["f"], "J_regressor": _Csc(a["J_regressor"]), "kintree_table": a["kintree_table"],
        "J": _Ch(a["J_regressor"] @ a["v_template"]), "bs_style": "lbs", "weights": a["weights"],
        "posedirs": _Ch(a["posedirs"]), "v_template": _Ch(a["v_template"]),
        "shapedirs": _Ch(a["shapedirs"]), "bs_type": "lrotmin", **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(py2_pickle(model, protocol))
    return path


FLAME_MASK_NAMES = ("eye_region", "neck", "left_eyeball", "right_eyeball", "right_ear", "right_eye_region",
                    "forehead", "lips", "nose", "scalp", "boundary", "face", "left_ear", "left_eye_region")


def write_flame_masks(path: Path, num_v: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = {k: np.sort(rng.choice(num_v, 20, replace=False)).astype(np.int64) for k in FLAME_MASK_NAMES}
    path.write_bytes(py2_pickle(masks))
    return masks


FAKE_CHUMPY = '''
import numpy as np

class Ch(object):
    """Test-only stand-in so smplx's plain pickle.load can rebuild chumpy values."""
    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.x, dtype=dtype)
    @property
    def shape(self):
        return self.x.shape
    def __getitem__(self, key):
        return self.x[key]
'''


@contextlib.contextmanager
def fake_chumpy(tmp_path: Path):
    """A throwaway ``chumpy`` package on sys.path while an unrestricted loader (smplx) reads a
    FLAME pickle; removed from sys.path and sys.modules afterwards."""
    root = tmp_path / "fake_chumpy"
    (root / "chumpy").mkdir(parents=True, exist_ok=True)
    (root / "chumpy" / "__init__.py").write_text("")
    (root / "chumpy" / "ch.py").write_text(FAKE_CHUMPY)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "chumpy" or m.startswith("chumpy.")]:
            del sys.modules[name]


@pytest.fixture
def flame_arrays() -> dict[str, np.ndarray]:
    return random_flame_arrays()


@pytest.fixture
def flame_pkl(tmp_path: Path, flame_arrays) -> Path:
    return write_flame_pkl(tmp_path / "FLAME2020" / "generic_model.pkl", flame_arrays)


# --------------------------------------------------------------------------------------------
# Loading the official layout
# --------------------------------------------------------------------------------------------


def test_fixture_references_the_official_globals(flame_pkl: Path) -> None:
    payload = flame_pkl.read_bytes()
    assert payload[:2] == b"\x80\x02"  # protocol 2
    assert pickle_globals(payload) == {
        ("chumpy.ch", "Ch"), ("scipy.sparse.csc", "csc_matrix"), ("__builtin__", "set"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
    }
    assert "chumpy" not in sys.modules


def test_load_flame_pkl(flame_pkl: Path, flame_arrays) -> None:
    data = load_flame_pkl(flame_pkl)
    a = flame_arrays
    assert data.motion_space == "flame2020" and data.name == "generic_model"
    np.testing.assert_allclose(data.v_template, a["v_template"], rtol=1e-6)
    np.testing.assert_array_equal(data.faces, a["f"].astype(np.int64))
    assert data.faces.dtype == np.int64
    assert data.shapedirs.shape == (300, 3, 300) and data.exprdirs.shape == (300, 3, 100)
    np.testing.assert_allclose(data.exprdirs, a["shapedirs"][:, :, 300:], rtol=1e-6)
    np.testing.assert_allclose(data.posedirs, a["posedirs"], rtol=1e-6)
    np.testing.assert_allclose(data.j_regressor, a["J_regressor"], rtol=1e-6)
    np.testing.assert_allclose(data.lbs_weights, a["weights"], rtol=1e-6)
    np.testing.assert_array_equal(data.parents, FLAME_PARENTS)
    assert all(arr.dtype == np.float32 for arr in (data.v_template, data.shapedirs, data.exprdirs, data.posedirs,
                                                   data.j_regressor, data.lbs_weights))
    assert data.eyelid_dirs is None and data.regions == {}


def test_protocol_1_pickles_load_the_same(tmp_path: Path, flame_pkl: Path, flame_arrays) -> None:
    # Protocol 0/1 pickles rebuild objects through copy_reg._reconstructor(cls, object, None).
    old = write_flame_pkl(tmp_path / "old" / "generic_model.pkl", flame_arrays, protocol=1)
    assert ("copy_reg", "_reconstructor") in pickle_globals(old.read_bytes())
    a, b = load_flame_pkl(old), load_flame_pkl(flame_pkl)
    np.testing.assert_array_equal(a.shapedirs, b.shapedirs)
    np.testing.assert_array_equal(a.j_regressor, b.j_regressor)


def test_motion_space_from_name_or_parameter(tmp_path: Path, flame_arrays) -> None:
    p2023 = write_flame_pkl(tmp_path / "flame2023.pkl", flame_arrays)
    assert load_flame_pkl(p2023).motion_space == "flame2023"
    assert load_flame_pkl(p2023, motion_space="flame2020").motion_space == "flame2020"


def test_eyelids_and_masks_beside_the_model(tmp_path: Path, flame_arrays) -> None:
    path = write_flame_pkl(tmp_path / "flame2023.pkl", flame_arrays)
    rng = np.random.default_rng(1)
    left, right = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    np.save(tmp_path / "l_eyelid.npy", left[None])  # [1, V, 3], as some projects ship it
    np.save(tmp_path / "r_eyelid.npy", right)  # [V, 3]
    masks = write_flame_masks(tmp_path / "FLAME_masks.pkl")
    data = load_flame_pkl(path)
    assert data.eyelid_dirs.shape == (300, 3, 2)
    np.testing.assert_allclose(data.eyelid_dirs[..., 0], left, rtol=1e-6)
    np.testing.assert_allclose(data.eyelid_dirs[..., 1], right, rtol=1e-6)
    np.testing.assert_array_equal(data.regions["lips"], masks["lips"])
    np.save(tmp_path / "r_eyelid.npy", right[:10])
    with pytest.raises(InputError, match="r_eyelid.npy"):
        load_flame_pkl(path)


def test_load_flame_masks(tmp_path: Path) -> None:
    masks = write_flame_masks(tmp_path / "FLAME_masks.pkl")
    regions = load_flame_masks(tmp_path / "FLAME_masks.pkl")
    assert set(FLAME_MASK_NAMES) <= set(regions)  # FLAME's own names are kept
    np.testing.assert_array_equal(regions["eyes"], np.union1d(masks["left_eyeball"], masks["right_eyeball"]))
    np.testing.assert_array_equal(regions["neck_boundary"], masks["boundary"])
    np.testing.assert_array_equal(regions["ears"], np.union1d(masks["left_ear"], masks["right_ear"]))
    assert all(v.dtype == np.int64 for v in regions.values())


# --------------------------------------------------------------------------------------------
# Safety: what the restricted unpickler refuses
# --------------------------------------------------------------------------------------------


def _refused(path: Path, global_name: str) -> None:
    with pytest.raises(UnsafePickleError) as info:
        restricted_load(path)
    err = info.value
    assert isinstance(err, InputError)
    assert err.global_name == global_name and global_name in str(err) and str(path) in str(err)


def test_refuses_os_system_and_does_not_run_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    evil = tmp_path / "generic_model.pkl"
    evil.write_bytes(payload)
    _refused(evil, "os.system")
    with pytest.raises(InputError):
        load_flame_pkl(evil)
    assert not marker.exists()
    pickle.loads(payload)  # the payload is real: an ordinary unpickler runs it
    assert marker.exists()


def test_refuses_builtins_eval_and_subprocess(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').close()".encode()
    evil = tmp_path / "eval.pkl"
    evil.write_bytes(b"c__builtin__\neval\n(S\"" + code + b"\"\ntR.")
    _refused(evil, "__builtin__.eval")
    evil.write_bytes(b"\x80\x04cbuiltins\neval\n\x8c" + bytes([len(code)]) + code + b"\x85R.")
    _refused(evil, "builtins.eval")
    evil.write_bytes(b"csubprocess\nPopen\n(S'true'\ntR.")
    _refused(evil, "subprocess.Popen")
    assert not marker.exists()


def test_refuses_a_payload_hidden_in_a_valid_model(tmp_path: Path, flame_arrays) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {marker}",))

    path = write_flame_pkl(tmp_path / "generic_model.pkl", flame_arrays, extra={"weights_prior": Evil()})
    with pytest.raises(UnsafePickleError, match=r"system") as info:
        load_flame_pkl(path)
    assert info.value.global_name == f"{os.system.__module__}.system"
    assert not marker.exists()


def test_refuses_chumpy_classes_other_than_ch(tmp_path: Path) -> None:
    evil = tmp_path / "m.pkl"
    evil.write_bytes(b"\x80\x02cchumpy.reordering\nSelect\n)\x81.")
    _refused(evil, "chumpy.reordering.Select")


# --------------------------------------------------------------------------------------------
# Wrong files
# --------------------------------------------------------------------------------------------


def test_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "generic_model.pkl"
    path.write_text("<html>Please log in</html>")
    with pytest.raises(InputError, match="generic_model.pkl: not a readable FLAME pickle"):
        load_flame_pkl(path)


def test_missing_keys_and_wrong_shapes(tmp_path: Path, flame_arrays) -> None:
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(py2_pickle({"v_template": np.zeros((3, 3)), "f": np.zeros((1, 3), np.int64)}))
    with pytest.raises(InputError, match=r"generic_model.pkl: not a FLAME model, missing shapedirs, posedirs"):
        load_flame_pkl(path)
    path.write_bytes(py2_pickle([1, 2, 3]))
    with pytest.raises(InputError, match="holds a list"):
        load_flame_pkl(path)
    bad = dict(flame_arrays, shapedirs=flame_arrays["shapedirs"][:200])
    write_flame_pkl(path, bad)
    with pytest.raises(InputError, match=r"generic_model.pkl: not a usable FLAME model \(shapedirs has shape"):
        load_flame_pkl(path)
    bad = dict(flame_arrays, weights=flame_arrays["weights"][:, :4])
    write_flame_pkl(path, bad)
    with pytest.raises(InputError, match="lbs_weights"):
        load_flame_pkl(path)
    with pytest.raises(InputError, match="not found"):
        load_flame_pkl(tmp_path / "nope.pkl")


# --------------------------------------------------------------------------------------------
# The project's own format
# --------------------------------------------------------------------------------------------


def _assert_same(a: HeadModelData, b: HeadModelData) -> None:
    for f in ("v_template", "faces", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights", "parents",
              "eyelid_dirs", "uv_coords", "uv_faces", "texture"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            assert x.dtype == y.dtype, f
            np.testing.assert_array_equal(x, y, err_msg=f)
    assert a.regions.keys() == b.regions.keys()
    for k in a.regions:
        np.testing.assert_array_equal(a.regions[k], b.regions[k])
    assert (a.name, a.motion_space, a.expression_names) == (b.name, b.motion_space, b.expression_names)


def test_own_format_round_trip(tmp_path: Path, flame_arrays) -> None:
    src = write_flame_pkl(tmp_path / "src" / "flame2023.pkl", flame_arrays)
    np.save(src.parent / "l_eyelid.npy", np.ones((300, 3)))
    np.save(src.parent / "r_eyelid.npy", np.zeros((300, 3)))
    write_flame_masks(src.parent / "FLAME_masks.pkl")
    data = load_flame_pkl(src)
    data.expression_names = [f"e{i}" for i in range(data.n_expression)]
    data.uv_coords = np.random.default_rng(0).random((40, 2)).astype(np.float32)
    data.uv_faces = np.random.default_rng(1).integers(0, 40, data.faces.shape).astype(np.int64)
    data.texture = np.full((4, 4, 3), 0.5, np.float32)
    data.regions["empty"] = np.zeros(0, np.int64)
    out = save_head_model(data, tmp_path / "own")
    meta = json.loads((out / "model.json").read_text())
    assert meta["format_version"] == 1 and meta["motion_space"] == "flame2023" and "region.lips" in meta["arrays"]
    _assert_same(data, load_head_model(out))


def test_own_format_refuses_newer_version(tmp_path: Path, flame_pkl: Path) -> None:
    out = save_head_model(load_flame_pkl(flame_pkl), tmp_path / "own")
    meta = json.loads((out / "model.json").read_text())
    meta["format_version"] = 99
    (out / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="format version 99 is newer") as info:
        load_head_model(out)
    assert info.value.hint == "upgrade being"
    with pytest.raises(InputError, match="not a head model directory"):
        load_head_model(tmp_path)


# --------------------------------------------------------------------------------------------
# Finding FLAME
# --------------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv(ENV_FLAME_DIR, raising=False)
    return home


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_find_explicit(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    model = _touch(tmp_path / "mine" / "generic_model.pkl")
    monkeypatch.setenv(ENV_FLAME_DIR, str(_touch(tmp_path / "env" / "generic_model.pkl").parent))
    assert find_flame_model(model) == model
    assert find_flame_model(model.parent) == model  # a folder holding the release's file
    with pytest.raises(InputError, match="missing.pkl: no such file or directory"):
        find_flame_model(tmp_path / "missing.pkl")  # never falls back to another model
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(InputError, match=r"FLAME 2020 model \(generic_model.pkl\): .*elsewhere has no generic_model.pkl"):
        find_flame_model(tmp_path / "elsewhere")


def test_find_env_before_cache(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    cached = _touch(clean_env / ".cache" / "being" / "flame" / "generic_model.pkl")
    env = _touch(tmp_path / "env" / "generic_model.pkl")
    monkeypatch.setenv(ENV_FLAME_DIR, str(env.parent))
    assert find_flame_model() == env
    monkeypatch.setenv(ENV_FLAME_DIR, "")
    assert find_flame_model() == cached  # set but empty counts as unset: go on to the cache
    monkeypatch.delenv(ENV_FLAME_DIR)
    assert find_flame_model() == cached
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(ENV_FLAME_DIR, str(tmp_path / "empty"))
    with pytest.raises(InputError, match=r"\$BEING_FLAME_DIR=.*empty has no generic_model.pkl"):
        find_flame_model()  # a folder the user named that lacks the file: never the cached model


def test_find_respects_xdg_cache_home(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model = _touch(tmp_path / "xdg" / "being" / "flame" / "flame2023.pkl")
    assert find_flame_model(version="2023") == model
    with pytest.raises(InputError):
        find_flame_model(version="2020")


def test_find_error_says_how_to_get_flame(tmp_path: Path, clean_env: Path, monkeypatch) -> None:
    with pytest.raises(InputError) as info:
        find_flame_model()
    err = info.value
    expected_path = clean_env / ".cache" / "being" / "flame" / "generic_model.pkl"
    assert str(err) == (f"FLAME 2020 model (generic_model.pkl) not found: no generic_model.pkl in "
                        f"${ENV_FLAME_DIR} (unset), {expected_path.parent}")
    assert "https://flame.is.tue.mpg.de" in err.hint and "registration" in err.hint
    assert str(expected_path) in err.hint and ENV_FLAME_DIR in err.hint and "FLAME 2020" in err.hint
    with pytest.raises(InputError) as info:
        find_flame_model(version="2023")
    assert "flame2023.pkl" in info.value.hint and "FLAME 2023" in info.value.hint
    with pytest.raises(ValueError, match="unknown FLAME version"):
        find_flame_model(version="2017")

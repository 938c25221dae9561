"""The one weights finder (explicit path, environment variable, Hugging Face cache read offline,
other local caches, then an error saying what to download) and the one safe ``torch.load``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from being_kernel.errors import InputError
from being_kernel.weights import MissingWeights, find_weights, hub_cache_dir, safe_checkpoint_load, safe_torch_load

FILES = ["model.pt", "sub/config.json"]
REPO = "org/Model"
ENV = "BEING_TEST_WEIGHTS"


def _fill(directory: Path, files: list[str] = FILES) -> Path:
    for rel in files:
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(rel)
    return directory


def _snapshot(cache: Path, revision: str, files: list[str] = FILES, main: str | None = None) -> Path:
    """huggingface_hub's layout: blobs, snapshot entries as relative symlinks to them, refs/main."""
    repo = cache / "models--org--Model"
    for rel in files:
        blob = repo / "blobs" / f"{revision}-{rel.replace('/', '_')}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_text(rel)
        link = repo / "snapshots" / revision / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if main is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(main + "\n")
    return repo / "snapshots" / revision


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No weights anywhere: a fresh HOME, no HF or XDG variables, ENV unset."""
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", ENV):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _find(explicit: str | Path | None = None, cache_dirs: tuple[Path, ...] = ()) -> Path:
    return find_weights("Test weights", explicit=explicit, env_var=ENV, hub_repo=REPO, files=FILES,
                        hint="or pass --weights DIR", cache_dirs=cache_dirs)


def test_lookup_order_explicit_env_hub_then_other_caches(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _fill(env / "own_cache")
    assert _find(cache_dirs=(env / "empty", own)) == own
    cache = env / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snapshot = _snapshot(cache, "abc123", main="abc123")
    assert _find(cache_dirs=(own,)) == snapshot  # the hub cache before other caches
    monkeypatch.setenv(ENV, str(_fill(env / "from_env")))
    assert _find(cache_dirs=(own,)) == env / "from_env"  # the variable before the hub
    assert _find(_fill(env / "explicit")) == env / "explicit"  # the explicit path before all
    monkeypatch.setenv(ENV, "")
    assert _find() == snapshot  # set but empty counts as unset


def test_a_place_the_user_named_never_falls_back(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(env / "hub"))
    _snapshot(env / "hub", "abc123", main="abc123")
    partial = _fill(env / "partial", FILES[:1])
    with pytest.raises(MissingWeights, match=r"^Test weights: .*partial has no sub/config.json$"):
        _find(partial)
    with pytest.raises(MissingWeights, match=r"^Test weights: .*nope: no such file or directory$"):
        _find(env / "nope")
    monkeypatch.setenv(ENV, str(partial))
    with pytest.raises(MissingWeights, match=r"^Test weights: \$BEING_TEST_WEIGHTS=.*partial has no sub/config.json$"):
        _find()


def test_hub_cache_location_follows_huggingface_hub(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub_cache_dir() == env / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(env / "xdg"))
    assert hub_cache_dir() == env / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(env / "hf_home"))
    assert hub_cache_dir() == env / "hf_home" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(env / "old"))
    assert hub_cache_dir() == env / "old"
    monkeypatch.setenv("HF_HUB_CACHE", str(env / "new"))
    assert hub_cache_dir() == env / "new"
    assert hub_cache_dir({"HF_HOME": str(env / "given")}) == env / "given" / "hub"  # an explicit mapping


def test_hub_snapshot_of_refs_main_first_then_the_newest_complete_one(env: Path) -> None:
    cache = env / "home" / ".cache" / "huggingface" / "hub"  # the default place, read offline
    old = _snapshot(cache, "0ld")
    os.utime(old, (1, 1))
    partial = _snapshot(cache, "partial", FILES[:1], main="partial")  # refs/main names an incomplete one
    assert _find() == old
    new = _snapshot(cache, "n3w")
    assert _find() == new  # the newer of the complete ones
    _fill(partial, FILES[1:])
    assert _find() == partial  # refs/main, once complete, wins


def test_missing_weights_say_what_to_download_from_where_and_where_to_put_it(env: Path) -> None:
    with pytest.raises(MissingWeights) as err:
        _find(cache_dirs=(env / "own",))
    cache = env / "home" / ".cache" / "huggingface" / "hub"
    assert str(err.value) == (f"Test weights not found: no model.pt and sub/config.json in $BEING_TEST_WEIGHTS "
                              f"(unset), the Hugging Face cache {cache}, {env / 'own'}")
    assert err.value.hint == ("download model.pt and sub/config.json from the Hugging Face repository org/Model into "
                              "its cache (huggingface-cli download org/Model) or put model.pt and sub/config.json in "
                              "one directory and set BEING_TEST_WEIGHTS to it; or pass --weights DIR")
    assert isinstance(err.value, InputError) and "\n" not in err.value.one_line()
    with pytest.raises(MissingWeights) as err:  # no hub: the caller's hint says where they come from
        find_weights("Local", explicit=None, env_var=ENV, hub_repo=None, files=["a.bin"], hint="get a.bin at URL")
    assert err.value.hint == "get a.bin at URL; or put a.bin in one directory and set BEING_TEST_WEIGHTS to it"
    assert err.value.detail == "no a.bin in $BEING_TEST_WEIGHTS (unset)"


class Payload:
    marker: Path

    def __reduce__(self):  # noqa: ANN204 - what a malicious checkpoint does
        return os.system, (f"touch {self.marker}",)


class Plain:
    def __init__(self) -> None:
        self.x = 1


def test_safe_torch_load_reads_tensors_and_plain_values(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"step": 3, "name": "x", "sizes": [1, 2]}}
    torch.save(state, tmp_path / "a.pt")
    for mmap in (False, True):
        loaded = safe_torch_load(tmp_path / "a.pt", mmap=mmap)
        assert torch.equal(loaded["w"], state["w"]) and loaded["meta"] == state["meta"]
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(safe_torch_load(tmp_path / "legacy.pt", mmap=True)["w"], state["w"])  # no mmap for it


@pytest.mark.parametrize("evil", ["reduce", "instance"])
def test_safe_torch_load_refuses_pickled_objects_without_running_them(tmp_path: Path, evil: str) -> None:
    Payload.marker = tmp_path / "pwned"
    torch.save({"w": torch.zeros(2), "x": Payload() if evil == "reduce" else Plain()}, tmp_path / "evil.pt")
    with pytest.raises(InputError) as err:
        safe_torch_load(tmp_path / "evil.pt", what="test checkpoint")
    line = err.value.one_line()
    assert line.startswith(f"{tmp_path / 'evil.pt'}: not a readable test checkpoint (")
    assert "not a weights-only checkpoint, or it is corrupt" in line and "\n" not in line
    assert ("posix.system" if evil == "reduce" else "Plain") in line
    assert not Payload.marker.exists()


def test_safe_torch_load_names_corrupt_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk.pt: not a readable checkpoint \(.*or it is corrupt$"):
        safe_torch_load(tmp_path / "junk.pt", mmap=True)
    with pytest.raises(InputError, match=r"gone.pt: no such style clip file"):
        safe_torch_load(tmp_path / "gone.pt", what="style clip")


def test_safe_globals_allow_only_what_they_name(tmp_path: Path) -> None:
    torch.save({"a": np.arange(3.0)}, tmp_path / "np.pt")
    with pytest.raises(InputError, match="not a readable"):
        safe_torch_load(tmp_path / "np.pt")
    reconstruct = np.zeros(0).__reduce__()[0]
    allowed = [reconstruct, np.ndarray, np.dtype, type(np.dtype("f8"))]
    assert np.array_equal(safe_torch_load(tmp_path / "np.pt", safe_globals=allowed)["a"], np.arange(3.0))
    Payload.marker = tmp_path / "pwned"
    torch.save({"a": np.arange(3.0), "x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="posix.system"):
        safe_torch_load(tmp_path / "evil.pt", safe_globals=allowed)
    assert not Payload.marker.exists()


def _lightning_checkpoint(path: Path, extra: object = None) -> dict:
    """A checkpoint pickled as PyTorch Lightning writes one: the model's tensors under
    ``state_dict``, ``hyper_parameters`` an ``AttributeDict`` holding a real OmegaConf config."""
    omegaconf = pytest.importorskip("omegaconf")
    import sys
    import types

    module = types.ModuleType("pytorch_lightning.utilities.parsing")
    attribute_dict = type("AttributeDict", (dict,), {"__module__": module.__name__})
    module.AttributeDict = attribute_dict
    callbacks = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
    callbacks.ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": callbacks.__name__})
    for name in ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.callbacks"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules[module.__name__], sys.modules[callbacks.__name__] = module, callbacks
    try:
        config = {"model": {"sizes": [1, 2.5, "x"], "flag": True, "none": None, "ref": "${model.flag}"}, "n": 3}
        cfg = omegaconf.OmegaConf.create(config)
        content = {"epoch": 7, "pytorch-lightning_version": "1.8.6", "state_dict": {"w": torch.arange(4.0)},
                   "hyper_parameters": attribute_dict(cfg=cfg, note="x"),
                   # Lightning 1.x keys callback states by the callback class itself
                   "callbacks": {callbacks.ModelCheckpoint: {"best_model_score": torch.ones(1), "dirpath": "ckpt"}}}
        if extra is not None:
            content["extra"] = extra
        torch.save(content, path)
    finally:
        del sys.modules[module.__name__], sys.modules[callbacks.__name__]
    return config


def test_safe_checkpoint_load_reads_lightning_configs_as_plain_data(tmp_path: Path) -> None:
    config = _lightning_checkpoint(tmp_path / "model.ckpt")
    out = safe_checkpoint_load(tmp_path / "model.ckpt")
    assert type(out["hyper_parameters"]) is dict and type(out["hyper_parameters"]["cfg"]) is dict
    assert out["hyper_parameters"] == {"cfg": config, "note": "x"}
    assert torch.equal(out["state_dict"]["w"], torch.arange(4.0)) and out["epoch"] == 7
    (key, state), = out["callbacks"].items()  # the class key is an inert stand-in named after the class
    assert key.name == "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint" and state["dirpath"] == "ckpt"
    with pytest.raises(InputError, match="not a readable"):  # the plain loader refuses the config objects
        safe_torch_load(tmp_path / "model.ckpt")


@pytest.mark.parametrize("evil", ["reduce", "class"])
def test_safe_checkpoint_load_refuses_other_classes_by_name(tmp_path: Path, evil: str) -> None:
    Payload.marker = tmp_path / "pwned"
    _lightning_checkpoint(tmp_path / "evil.ckpt", extra=Payload() if evil == "reduce" else Plain())
    with pytest.raises(InputError) as err:
        safe_checkpoint_load(tmp_path / "evil.ckpt", what="EMOTE checkpoint")
    assert ("posix.system" if evil == "reduce" else "Plain") in err.value.one_line()
    assert not Payload.marker.exists()

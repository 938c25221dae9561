"""Finding weight files on this machine and loading checkpoints safely; nothing is downloaded.

:func:`find_weights` looks, in order, at an explicit path, an environment variable, the Hugging
Face hub cache (read offline) and any other local caches a caller names, and otherwise raises
:class:`MissingWeights` saying which files to download, from where and where to put them. An
explicit path or a set environment variable that lacks the files is an error, never a silent
fall-back to another copy.

:func:`safe_torch_load` is the one ``torch.load`` of the kernel and its plugins: always
``weights_only=True`` on the CPU, so a checkpoint cannot run code, and every failure is an
``InputError`` naming the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from .errors import InputError


class MissingWeights(InputError):
    """Weights not on this machine; ``hint`` says what to download, from where and where to put
    it. ``detail`` is the message without the name ("no FILES in PLACES"), for callers that
    report several lookups in one line."""

    def __init__(self, message: str, hint: str | None = None, detail: str = "") -> None:
        super().__init__(message, hint)
        self.detail = detail or message


def hub_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The Hugging Face hub cache as huggingface_hub resolves it: ``$HF_HUB_CACHE`` (or the older
    ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``,
    else ``~/.cache/huggingface/hub``."""
    env = os.environ if env is None else env
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def hub_snapshot(cache: Path, repo: str, files: Sequence[str]) -> Path | None:
    """The snapshot of model repository ``repo`` ("ORG/NAME") in the hub cache ``cache`` that holds
    all ``files``: ``models--ORG--NAME/snapshots/<revision>/``, the revision ``refs/main`` names
    first, then the others newest first (a partial download can leave an older snapshot)."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    main = folder / "refs" / "main"
    preferred = [snapshots / main.read_text().strip()] if main.is_file() else []
    others = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((s for s in preferred + others if _holds(s, files)), None)


def _holds(directory: Path, files: Sequence[str]) -> bool:
    return all((directory / f).is_file() for f in files)


def _names(files: Sequence[str]) -> str:
    return " and ".join(files)


def _holding(directory: Path, files: Sequence[str], name: str, label: str, how: str) -> Path:
    """``directory`` if it holds all ``files``; a place the user named that lacks them is an error."""
    if not directory.is_dir():
        raise MissingWeights(f"{name}: {label}{directory}: no such file or directory", hint=how)
    missing = [f for f in files if not (directory / f).is_file()]
    if missing:
        raise MissingWeights(f"{name}: {label}{directory} has no {_names(missing)}", hint=how)
    return directory


def find_weights(name: str, *, explicit: str | Path | None, env_var: str | None, hub_repo: str | None,
                 files: Sequence[str], hint: str, cache_dirs: Sequence[Path] = (),
                 env: Mapping[str, str] | None = None) -> Path:
    """The directory that holds all ``files`` (paths relative to it) of the weights called
    ``name`` (e.g. "ARTalk weights"; it starts every message).

    Looked for, first hit wins: ``explicit`` (a directory; must hold them), the directory in
    ``$env_var`` when that is set (must hold them), the snapshot of ``hub_repo`` in the Hugging
    Face cache (:func:`hub_cache_dir`, read offline), then each of ``cache_dirs``. Otherwise
    :class:`MissingWeights` whose hint says to download ``files`` (from ``hub_repo`` when given)
    and where to put them, followed by ``hint`` (the caller's words: where else to get them,
    how its users pass the explicit path). ``env``: the environment to read (default os.environ).
    """
    env = os.environ if env is None else env
    put = f"put {_names(files)} in one directory" + (f" and set {env_var} to it" if env_var else "")
    if hub_repo:
        how = (f"download {_names(files)} from the Hugging Face repository {hub_repo} into its cache "
               f"(huggingface-cli download {hub_repo}) or {put}" + (f"; {hint}" if hint else ""))
    else:
        how = f"{hint}; or {put}" if hint else put
    if explicit is not None:
        return _holding(Path(explicit).expanduser(), files, name, "", how)
    if env_var and env.get(env_var):
        return _holding(Path(env[env_var]).expanduser(), files, name, f"${env_var}=", how)
    looked = [f"${env_var} (unset)"] if env_var else []
    if hub_repo:
        cache = hub_cache_dir(env)
        snapshot = hub_snapshot(cache, hub_repo, files)
        if snapshot is not None:
            return snapshot
        looked.append(f"the Hugging Face cache {cache}")
    for directory in cache_dirs:
        if _holds(directory, files):
            return directory
        looked.append(str(directory))
    detail = f"no {_names(files)} in {', '.join(looked) or '(nowhere to look)'}"
    raise MissingWeights(f"{name} not found: {detail}", hint=how, detail=detail)


def _why(exc: Exception) -> str:
    """The line of a torch.load failure that says what went wrong (torch wraps it in advice)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if any(m in ln.lower() for m in ("global", "weightsunpickler", "can only build")):
            ln = ln.split("WeightsUnpickler error:")[-1].split(". Please use")[0].strip()
            if ln:
                return ln
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def safe_torch_load(path: str | Path, *, mmap: bool = False, what: str = "checkpoint",
                    safe_globals: Sequence[object] = (), hint: str | None = None) -> object:
    """``torch.load(path, weights_only=True, map_location="cpu")``: tensors, numbers, strings and
    containers of them, nothing that runs code.

    ``mmap``: memory-map the tensors (files in the old pre-zip format load without). ``what``
    names the file in messages. ``safe_globals``: further globals the unpickler may build, as
    ``torch.serialization.safe_globals`` takes them (e.g. numpy's array reconstruction; needs
    torch >= 2.5). Every failure is an InputError naming the file and saying that it is not a
    weights-only checkpoint or is corrupt; ``hint`` replaces the default advice.
    """
    path = Path(path)
    hint = hint or "download the file again; a weights-only checkpoint holds only tensors and plain values"
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file", hint=hint)
    allow = getattr(torch.serialization, "safe_globals", None)
    if safe_globals and allow is None:
        raise InputError(f"{path}: reading this {what} safely needs torch >= 2.5", hint="upgrade torch")

    def load(with_mmap: bool) -> object:
        with allow(list(safe_globals)) if safe_globals else contextlib.nullcontext():
            return torch.load(path, map_location="cpu", weights_only=True, mmap=with_mmap)

    try:
        try:
            return load(mmap)
        except RuntimeError as exc:
            if not mmap or "mmap" not in str(exc):
                raise
            return load(False)  # the pre-zip format cannot be memory-mapped
    except Exception as exc:  # noqa: BLE001 - a corrupt or unsafe file is one user error
        raise InputError(f"{path}: not a readable {what} ({_why(exc)}); it is not a weights-only checkpoint, "
                         "or it is corrupt", hint=hint) from exc


# -- checkpoints whose pickles carry configuration objects (PyTorch Lightning, OmegaConf) ---------

class PickledObject:
    """Stands in for an object of a data-only class named in a checkpoint's pickle: its class is
    never imported and no code of it runs; the pickled constructor arguments (``args``) and state
    (``state``) are kept as the unpickler built them. :func:`plain_config` turns them into values."""

    name = "?"  # the pickled class's dotted name

    def __new__(cls, *args: object, **kwargs: object) -> PickledObject:
        obj = object.__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        self.state = state


#: Classes a checkpoint's pickle may name that hold configuration data only, read as stand-ins.
CONFIG_CLASSES: tuple[str, ...] = (
    "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig",
    *(f"omegaconf.nodes.{n}" for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode",
                                       "BytesNode", "PathNode", "EnumNode", "UnionNode")),
    "omegaconf.base.ContainerMetadata", "omegaconf.base.Metadata", "typing.Any",
    # Lightning 1.x keys a checkpoint's callback states by the callback's class
    *(f"{pl}.callbacks.{m}" for pl in ("pytorch_lightning", "lightning.pytorch")
      for m in ("model_checkpoint.ModelCheckpoint", "early_stopping.EarlyStopping", "lr_monitor.LearningRateMonitor")),
    # types stored as values (OmegaConf metadata's object_type, a defaultdict's factory)
    *(f"builtins.{n}" for n in ("dict", "list", "tuple", "int", "float", "str", "bool", "object")),
)
#: dict subclasses read as plain dicts (their items, without the subclass's behaviour)
MAPPING_CLASSES: tuple[str, ...] = (
    "pytorch_lightning.utilities.parsing.AttributeDict", "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
)


def _new_defaultdict(*factory: object) -> dict:
    """``collections.defaultdict(factory)`` as the unpickler calls it: a plain dict, the factory dropped."""
    return {}


def _stand_ins() -> list[tuple[object, str]]:
    # one class per name: the unpickler tells them apart by identity. The weights-only unpickler
    # fills only exact dicts, so dict subclasses are built as dict itself.
    out: list[tuple[object, str]] = [(type(n.rsplit(".", 1)[-1], (PickledObject,), {"name": n}), n)
                                     for n in CONFIG_CLASSES]
    return out + [(dict, n) for n in MAPPING_CLASSES] + [(_new_defaultdict, "collections.defaultdict")]


def plain_config(value: object) -> object:
    """``value`` with every stand-in replaced by plain data: OmegaConf containers by dicts and
    lists of their values, nodes by their value, metadata and types by their class names."""
    if isinstance(value, PickledObject):
        state = value.state if isinstance(value.state, dict) else {}
        if value.name.endswith(("DictConfig", "ListConfig")):
            content = state.get("_content")
            if isinstance(content, dict):
                return {k: plain_config(v) for k, v in content.items()}
            if isinstance(content, list):
                return [plain_config(v) for v in content]
            return content  # None, or an unresolved "${...}" / "???" string
        if value.name.startswith("omegaconf.nodes."):
            return plain_config(state.get("_val"))
        return value.name  # metadata and types: only their name means anything here
    if isinstance(value, dict):
        return {k: plain_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_config(v) for v in value)
    return value


def safe_checkpoint_load(path: str | Path, *, what: str = "checkpoint", hint: str | None = None) -> object:
    """:func:`safe_torch_load` for checkpoints whose pickles also carry configuration objects
    (PyTorch Lightning's ``hyper_parameters``, OmegaConf configs): those of :data:`CONFIG_CLASSES`
    and :data:`MAPPING_CLASSES` are built as inert stand-ins and returned as plain data
    (:func:`plain_config`); any other class or function is refused, by name, before anything of
    it runs. Tensors are memory-mapped where the format allows."""
    return plain_config(safe_torch_load(path, mmap=True, what=what, safe_globals=_stand_ins(), hint=hint))


def layout_mismatches(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> list[str]:
    """Differences between a state dict and a model's: missing, unexpected, wrong shape."""
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [f"{k} has shape {list(v.shape)}, expected {list(expected[k].shape)}"
                 for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    return problems


def load_strict(build: Callable[[], torch.nn.Module], state: Mapping[str, torch.Tensor], *, where: str,
                model: str, hint: str) -> torch.nn.Module:
    """``build()`` (constructed on the meta device, so nothing is allocated twice) with ``state``
    loaded by a strict ``load_state_dict``, float tensors widened to float32, in eval mode with
    gradients off, on the CPU. Keys and shapes are compared first: a file that does not match is an
    InputError "WHERE does not match the MODEL model: <first mismatches>" with ``hint``."""
    with torch.device("meta"):
        module = build()
    problems = layout_mismatches(state, module.state_dict())
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{where} does not match the {model} model: {shown}", hint=hint)
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                           strict=True, assign=True)
    return module.eval().requires_grad_(False)

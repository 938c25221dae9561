"""The kernel's public surface: what plugins import, and what ``KERNEL_API_VERSION`` covers.

Public are ``being_kernel`` (light: what spec modules need), ``being_kernel.api`` (what
implementations need from the core) and the service packages' top-level modules (``PUBLIC``);
every other module is private and may change in any release. Plugins (``plugins/``) and the
example plugin and the templates (``docs/example-plugin/``, ``docs/templates/``) import only public modules and only names in their
``__all__``; a test here scans their source and names the file and line of each import that
does not.

``being_kernel.__all__`` and ``being_kernel.api.__all__`` are frozen below (``TOP_ALL``,
``API_ALL``). Changing one is changing the surface that ``KERNEL_API_VERSION`` covers: do it on
purpose, edit the list here in the same change, and bump ``KERNEL_API_VERSION`` when a name is
removed or changes meaning (adding one is compatible).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import being_kernel

REPO = Path(__file__).resolve().parents[1]
KERNEL = Path(being_kernel.__file__).parent
SCANNED = [REPO / "plugins", REPO / "docs" / "example-plugin", REPO / "docs" / "templates"]
SKIPPED_DIRS = {"build", "dist", ".venv", "__pycache__"}  # build outputs: copies of the scanned source

#: the public modules
PUBLIC = ("being_kernel", "being_kernel.api", "being_kernel.audio", "being_kernel.head", "being_kernel.render", "being_kernel.datasets",
          "being_kernel.metrics", "being_kernel.media", "being_kernel.train", "being_kernel.evaluation",
          "being_kernel.testing", "being_kernel.hooks")
#: private modules a plugin may still name -> why
ALLOWED_PRIVATE = {
    "being_kernel.testing.pytest_plugin": "pytest loads the testing kit's fixtures by this module name: the kernel's "
    "`pytest11` entry point, or `-p being_kernel.testing.pytest_plugin` / `pytest_plugins` where entry-point "
    "autoloading is off; nothing is imported from it",
}

#: being_kernel.__all__: what spec modules need (light: no torch)
TOP_ALL = [
    "__version__", "KERNEL_API_VERSION",
    "PluginSpec", "PluginConfig", "TrainerSpec", "BenchSettings", "DatasetKind",
    "DeviceName", "PathName", "ImageSize", "VideoSize",
    "BeingError", "ConfigError", "ContractError", "InputError", "PluginError", "StageError", "Interrupted",
]
#: being_kernel.api.__all__: what implementations need from the core
API_ALL = [
    "AudioToFlame", "AudioToFlameInfo", "FlameRenderer", "FlameRendererInfo", "TorsoCompositor", "TorsoCompositorInfo",
    "Stream", "FramewiseStream", "FramewiseRenderStream",
    "Audio", "Motion", "Frame", "Placement", "HeadPose", "head_poses", "frames_for", "POSE_FIELDS",
    "FLAME_2020", "FLAME_2023", "DEMO_HEAD", "Cameras",
    "resolve_device", "default_device", "find_weights", "safe_torch_load", "safe_checkpoint_load", "MissingWeights",
    "load_strict",
    "read_format_json",
    "check_tensors", "check_camera_record", "camera_record",
    "Registry", "PluginRecord", "build_plugin", "build_named",
    "packet_frames", "parse_sets", "load_config_file", "merge_config", "build_config", "parse_size", "check_device",
    "check_stages", "StageCheck", "run_pipeline", "RunResult", "FrameSink", "close_all", "pose_only",
]


def kernel_modules() -> set[str]:
    """Every module and package under being_kernel, from the files."""
    names = {"being_kernel"}
    for path in KERNEL.rglob("*.py"):
        parts = path.relative_to(KERNEL).with_suffix("").parts
        names.add(".".join(("being_kernel", *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return names


def _imports(tree: ast.AST, line: int | None = None) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, name) for each absolute import of being_kernel in ``tree``; name None for
    ``import M``. Code in string literals (``python -c "..."``) is scanned too, at the string's line."""
    for node in ast.walk(tree):
        where = line or getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            yield from ((where, a.name, None) for a in node.names if a.name.split(".")[0] == "being_kernel")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "being_kernel":
            yield from ((where, node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "being_kernel" in node.value \
                and "import" in node.value:
            try:
                code = ast.parse(node.value)
            except SyntaxError:  # prose, not code
                continue
            yield from _imports(code, where)


def violations(source: str, filename: str, modules: set[str], exported: Callable[[str], list[str]]) -> list[str]:
    """``filename:line: ...`` for each import in ``source`` of a private module, or of a name that
    its public module does not export (``exported(module)``: its ``__all__``)."""
    allowed = set(PUBLIC) | set(ALLOWED_PRIVATE)
    found = []
    for line, module, name in sorted(_imports(ast.parse(source, filename)), key=lambda i: i[0]):
        what = f"import {module}" if name is None else f"from {module} import {name}"
        if module not in allowed:
            home = next((m for m in PUBLIC if name is not None and name in exported(m)), None)
            fix = f"from {home} import {name}" if home else "see docs/architecture.md#public-surface"
            found.append(f"{filename}:{line}: {what}: {module} is private ({fix})")
        elif name is not None and name != "*" and module in PUBLIC:
            if f"{module}.{name}" in modules:  # a submodule
                if f"{module}.{name}" not in allowed:
                    found.append(f"{filename}:{line}: {what}: {module}.{name} is private")
            elif name not in exported(module):
                found.append(f"{filename}:{line}: {what}: {name} is not in {module}.__all__")
    return found


def plugin_sources() -> Iterator[Path]:
    for root in SCANNED:
        for path in sorted(root.rglob("*.py")):
            if not SKIPPED_DIRS & set(path.relative_to(root).parts) and not any(
                    p.endswith(".egg-info") for p in path.parts):
                yield path


def _exported(module: str) -> list[str]:
    return list(importlib.import_module(module).__all__)


# --------------------------------------------------------------------------------------------
# The scanner itself


def test_the_scanner_finds_private_imports_and_unexported_names() -> None:
    modules = {"being_kernel", "being_kernel.api", "being_kernel.types", "being_kernel.config", "being_kernel.head",
               "being_kernel.head.flame", "being_kernel.testing", "being_kernel.testing.pytest_plugin",
               "being_kernel.testing.specs", "being_kernel.cli", "being_kernel.cli.main"}
    exports = {"being_kernel": ["InputError"], "being_kernel.api": ["Motion"], "being_kernel.head": ["FlameModel"]}
    source = (
        "from being_kernel import InputError\n"                 # fine
        "from being_kernel.api import Motion\n"                  # fine
        "from being_kernel.types import Motion\n"                # 3: a private module
        "import being_kernel.head.flame\n"                       # 4: a private module
        "from being_kernel import config as cfg\n"               # 5: a private module through its package
        "from being_kernel.api import Nothing\n"                 # 6: not exported
        "from .local import thing\n"                             # a relative import: the plugin's own
        "def f():\n"
        "    from being_kernel.head.flame import FlameModel\n"   # 9: inside a function too
        "    from being_kernel.head import FlameModel\n"         # fine
        "from being_kernel.testing import pytest_plugin\n"      # allowed, with its reason
        "from being_kernel.testing import specs\n"               # 12: a private submodule
        "CMD = ['python', '-c', 'from being_kernel.cli.main import main; main()']\n"  # 13: code in a string
        "DOC = 'prose that says being_kernel.types is private; import it from the api'\n"  # prose: ignored
    )
    got = violations(source, "x.py", modules, lambda m: exports.get(m, []))
    assert [v.split(":")[1] for v in got] == ["3", "4", "5", "6", "9", "12", "13"], got
    assert got[0] == "x.py:3: from being_kernel.types import Motion: being_kernel.types is private " \
                     "(from being_kernel.api import Motion)"
    assert "being_kernel.config is private" in got[2] and "Nothing is not in being_kernel.api.__all__" in got[3]
    assert "(from being_kernel.head import FlameModel)" in got[4] and "being_kernel.cli.main is private" in got[6]


def test_the_scan_reaches_every_plugin() -> None:
    scanned = {p.relative_to(REPO).parts[:2] for p in plugin_sources()}
    plugins = {("plugins", d.name) for d in (REPO / "plugins").iterdir() if (d / "pyproject.toml").is_file()}
    assert plugins <= scanned and {("docs", "example-plugin"), ("docs", "templates")} <= scanned


# --------------------------------------------------------------------------------------------
# The surface


def test_plugins_import_only_the_public_surface() -> None:
    modules = kernel_modules()
    found = [v for p in plugin_sources() for v in violations(p.read_text(), str(p.relative_to(REPO)), modules, _exported)]
    assert not found, "plugins must import only the kernel's public surface (docs/architecture.md#public-surface):\n" \
                      + "\n".join(found)


@pytest.mark.parametrize("module, frozen", [("being_kernel", TOP_ALL), ("being_kernel.api", API_ALL)])
def test_the_versioned_surface_is_the_frozen_one(module: str, frozen: list[str]) -> None:
    """A change to these lists is a change to what KERNEL_API_VERSION covers (see the module docstring)."""
    actual = _exported(module)
    assert len(actual) == len(set(actual)), f"{module}.__all__ names something twice"
    added, removed = sorted(set(actual) - set(frozen)), sorted(set(frozen) - set(actual))
    assert not added and not removed, (f"{module}.__all__ changed: added {added}, removed {removed}; if on purpose, "
                                       f"update tests/test_public_surface.py and see KERNEL_API_VERSION")


def test_a_name_has_one_home() -> None:
    """``being_kernel.api`` does not repeat the light names of ``being_kernel`` (the modules'
    own ``__all__``, not the frozen copies above)."""
    assert not set(_exported("being_kernel")) & set(_exported("being_kernel.api"))


@pytest.mark.parametrize("module", PUBLIC)
def test_every_exported_name_is_there(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(getattr(mod, "__all__", None), (list, tuple)), f"{module} has no __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{module}.__all__ names what it does not have: {missing}"


def test_the_spec_level_surface_imports_no_torch() -> None:
    """Spec modules import ``being_kernel`` and ``being_kernel.train`` (``FitConfig``); ``being
    plugins`` imports every spec module, so neither may pull in torch."""
    code = "import sys, being_kernel, being_kernel.train; print(sorted({'torch', 'being_kernel.api'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr

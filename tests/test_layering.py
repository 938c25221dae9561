"""The kernel reads in one look: its packages import each other in one direction only.

A "package" is a subpackage of being_kernel (``head``, ``render``, ``datasets``, ...); the
top-level modules (contracts, types, spec, discovery, config, bus, pipeline, errors, cameras,
weights, ...) together are the package ``core``. The import graph between packages is built from
the source with ``ast`` (module-level and function-level imports, relative ones resolved) and
must have no cycle; each package imports only the layers below it (``LAYERS``); ``cli`` and
``testing`` sit on top, and nothing else imports them; ``core`` reaches a service only through the
lazy imports listed in ``LAZY_CORE_IMPORTS``, each with its reason (none today).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import being_kernel

ROOT = Path(being_kernel.__file__).parent
#: the layers, bottom up: a package imports only packages of lower layers (and itself)
LAYERS = {"core": 0, "head": 1, "media": 1, "render": 2, "metrics": 3, "datasets": 3, "train": 4, "evaluation": 5, "batch": 5,
          "serve": 5,
          "cli": 6, "testing": 6}
TOP = {"cli", "testing"}  # may import anything; only they import themselves

#: (core module, service package it imports inside a function) -> why that lazy import stays
LAZY_CORE_IMPORTS: dict[tuple[str, str], str] = {}
#: modules that are compiled, not imported, by the import check -> why
NOT_IMPORTED = {"being_kernel.cli.__main__": "importing it runs the CLI (it is python -m being_kernel.cli)",
                "being_kernel.serve.adapters.livekit": "needs the optional livekit extra (a PluginError without it)",
                "being_kernel.serve.adapters.pipecat": "needs the optional pipecat extra (a PluginError without it)"}


@dataclass(frozen=True)
class Edge:
    """``source`` (a module) imports ``target`` (a module), at ``line``, ``lazy`` inside a function."""

    source: str
    target: str
    line: int
    lazy: bool


def module_names() -> list[str]:
    """Every module and package under being_kernel, from the files (none skipped)."""
    names = ["being_kernel"]
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            names.append(".".join(("being_kernel", *parts)))
    return names


def module_file(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    return ROOT / rel / "__init__.py" if (ROOT / rel).is_dir() else (ROOT / rel).with_suffix(".py")


def package_of(module: str) -> str:
    """The package a module belongs to: its first component under being_kernel when that is a
    directory, else "core"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else "core"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module ``from <level dots><node.module> import ...`` names inside ``module``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if module_file(module).name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, source: str, known: set[str]) -> list[Edge]:
    """The being_kernel modules that ``module`` (whose text is ``source``) imports, anywhere in it.
    ``from P import x`` counts as importing ``P.x`` when that is a module, else ``P``."""
    tree = ast.parse(source)
    lazy_nodes: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lazy_nodes |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
    edges = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target == "being_kernel" or target.startswith("being_kernel."):
                while target not in known and "." in target:  # being_kernel.x.attr -> being_kernel.x
                    target = target.rsplit(".", 1)[0]
                edges.append(Edge(module, target, node.lineno, id(node) in lazy_nodes))
    return edges


def kernel_edges() -> list[Edge]:
    names = module_names()
    known = set(names)
    return [e for m in names for e in imports_of(m, module_file(m).read_text(), known)]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` (node -> successors) as [a, b, ..., a], or None; depth-first, nodes and
    successors in sorted order so the answer is stable."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def package_graph(edges: list[Edge]) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[Edge]]]:
    """Package -> packages it imports (the listed lazy core imports left out), and the imports
    behind each package edge."""
    graph: dict[str, set[str]] = {}
    sites: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        a, b = package_of(e.source), package_of(e.target)
        if a == b or (e.lazy and (e.source, b) in LAZY_CORE_IMPORTS):
            continue
        graph.setdefault(a, set()).add(b)
        sites.setdefault((a, b), []).append(e)
    return graph, sites


def _where(e: Edge) -> str:
    return f"{module_file(e.source).relative_to(ROOT.parent)}:{e.line} imports {e.target}"


# --------------------------------------------------------------------------------------------
# The cycle finder itself


def test_find_cycle_on_synthetic_graphs() -> None:
    assert find_cycle({}) is None
    assert find_cycle({"core": set(), "head": {"core"}, "render": {"head", "core"}}) is None
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"core": {"render"}, "render": {"head"}, "head": {"core"}}) == ["core", "render", "head", "core"]
    # the cycle is reported from where it closes, not from the start of the path into it
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]
    # a diamond is not a cycle
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


def test_graph_builder_resolves_relative_and_lazy_imports() -> None:
    known = {"being_kernel", "being_kernel.cameras", "being_kernel.head", "being_kernel.head.flame",
             "being_kernel.head.demo", "being_kernel.head.demo.rig", "being_kernel.render", "being_kernel.render.mesh"}
    source = (
        "from ..cameras import Cameras\n"              # a module's relative import, two levels
        "from . import flame\n"                          # a sibling module through its package
        "import being_kernel.render.mesh as m\n"
        "from being_kernel.render.mesh import sample\n"  # an attribute of a module
        "def f():\n"
        "    from ..render import mesh\n"
        "    from .demo.rig import x\n"
    )
    edges = imports_of("being_kernel.head.refs", source, known | {"being_kernel.head.refs"})
    got = [(e.target, e.line, e.lazy) for e in edges]
    assert sorted(got) == sorted([
        ("being_kernel.cameras", 1, False), ("being_kernel.head.flame", 2, False),
        ("being_kernel.render.mesh", 3, False), ("being_kernel.render.mesh", 4, False),
        ("being_kernel.render.mesh", 6, True), ("being_kernel.head.demo.rig", 7, True)])
    # inside a package's __init__, one dot is the package itself
    edges = imports_of("being_kernel.render", "from .mesh import y\nfrom ..cameras import Cameras\n", known)
    assert [e.target for e in edges] == ["being_kernel.render.mesh", "being_kernel.cameras"]
    assert package_of("being_kernel.cameras") == "core" and package_of("being_kernel") == "core"
    assert package_of("being_kernel.head.demo.rig") == "head"


def test_a_core_import_of_a_renderer_is_a_cycle() -> None:
    """What contracts.py importing Cameras from render would be (why Cameras lives in core)."""
    known = {"being_kernel.contracts", "being_kernel.types", "being_kernel.render", "being_kernel.render.camera"}
    edges = (imports_of("being_kernel.contracts", "from .render.camera import Cameras\n", known)
             + imports_of("being_kernel.render.camera", "from ..types import Motion\n", known))
    graph, _ = package_graph(edges)
    assert find_cycle(graph) == ["core", "render", "core"]


# --------------------------------------------------------------------------------------------
# The kernel


def test_every_kernel_module_imports() -> None:
    failures = []
    for name in module_names():
        try:
            if name in NOT_IMPORTED:
                compile(module_file(name).read_text(), str(module_file(name)), "exec")
            else:
                importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none skipped
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    # and the file walk agrees with what Python finds
    found = {m.name for m in pkgutil.walk_packages(being_kernel.__path__, "being_kernel.", onerror=_raise)}
    assert found | {"being_kernel"} == set(module_names())


def _raise(name: str) -> None:
    raise ImportError(f"walk_packages could not import {name}: {sys.exc_info()[1]}")


def test_no_import_cycle_between_kernel_packages() -> None:
    graph, sites = package_graph(kernel_edges())
    cycle = find_cycle(graph)
    if cycle:
        detail = "; ".join(f"{a} -> {b} ({_where(sites[a, b][0])})" for a, b in zip(cycle, cycle[1:]))
        pytest.fail(f"import cycle between kernel packages: {' -> '.join(cycle)}: {detail}")


def test_packages_import_only_lower_layers() -> None:
    graph, sites = package_graph(kernel_edges())
    unknown = sorted((set(graph) | {q for qs in graph.values() for q in qs}) - set(LAYERS))
    assert not unknown, f"packages without a layer: {unknown} (add them to LAYERS in {Path(__file__).name})"
    upward = [f"{a} -> {b} ({_where(sites[a, b][0])})" for a in sorted(graph) for b in sorted(graph[a])
              if LAYERS[b] >= LAYERS[a] and not (a in TOP and b in TOP)]
    assert not upward, "imports up or across the layers: " + "; ".join(upward)


def test_cli_and_testing_sit_on_top() -> None:
    wrong = [_where(e) for e in kernel_edges()
             if package_of(e.target) in TOP and package_of(e.source) not in TOP]
    assert not wrong, "only cli and testing may import cli and testing: " + "; ".join(wrong)


def test_core_reaches_services_only_through_the_listed_lazy_imports() -> None:
    edges = [e for e in kernel_edges() if package_of(e.source) == "core" and package_of(e.target) != "core"]
    eager = [_where(e) for e in edges if not e.lazy]
    assert not eager, "core imports a service at module import time: " + "; ".join(eager)
    unlisted = [_where(e) for e in edges if (e.source, package_of(e.target)) not in LAZY_CORE_IMPORTS]
    assert not unlisted, "lazy core imports of services must be listed in LAZY_CORE_IMPORTS: " + "; ".join(unlisted)
    used = {(e.source, package_of(e.target)) for e in edges}
    assert not set(LAZY_CORE_IMPORTS) - used, f"listed but gone: {sorted(set(LAZY_CORE_IMPORTS) - used)}"


def test_dataset_readers_never_import_each_other() -> None:
    from being_kernel.datasets.registry import _BUILTIN

    readers = {f"being_kernel.datasets.{r.read.__module__.rsplit('.', 1)[1]}" for r in _BUILTIN}
    assert len(readers) == 3
    wrong = [_where(e) for e in kernel_edges() if e.source in readers and e.target in readers]
    assert not wrong, "; ".join(wrong)


# --------------------------------------------------------------------------------------------
# Python 3.10 (requires-python >= 3.10): no newer syntax, no newer standard-library names

NEWER_MODULES = {"tomllib"}  # 3.11
NEWER_NAMES = {("typing", n) for n in ("Self", "Never", "LiteralString", "assert_never", "reveal_type", "NotRequired",
                                        "Required", "Unpack", "TypeVarTuple", "dataclass_transform", "override")} | {
    ("datetime", "UTC"), ("enum", "StrEnum"), ("asyncio", "TaskGroup"), ("asyncio", "timeout"),
    ("builtins", "ExceptionGroup"), ("builtins", "BaseExceptionGroup"), ("itertools", "batched")}


def _guarded(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if sys.version_info ...`` or ``if TYPE_CHECKING``."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and any(isinstance(n, (ast.Attribute, ast.Name))
                                            and getattr(n, "attr", getattr(n, "id", "")) in ("version_info", "TYPE_CHECKING")
                                            for n in ast.walk(node.test)):
            out |= {id(n) for n in ast.walk(node)}
    return out


def python310_problems(path: Path, source: str) -> list[str]:
    """What in ``source`` needs a Python newer than 3.10 (outside a version or TYPE_CHECKING guard)."""
    try:
        tree = ast.parse(source, feature_version=(3, 10))
    except SyntaxError as exc:
        return [f"{path}:{exc.lineno}: syntax newer than Python 3.10 ({exc.msg})"]
    guarded = _guarded(tree)
    problems = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        names: list[tuple[str, str]] = []  # (module, name in it); name "" for the module itself
        if isinstance(node, ast.Import):
            names = [(a.name.split(".")[0], "") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [(node.module, "")] + [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [(node.value.id, node.attr)]
        elif isinstance(node, ast.Name):
            names = [("builtins", node.id)]
        problems += [f"{path}:{node.lineno}: {m}{'.' + n if n else ''} is newer than Python 3.10"
                     for m, n in names if (m in NEWER_MODULES and not n) or (m, n) in NEWER_NAMES]
    return problems


def test_python310_checker_finds_newer_names() -> None:
    newer = ("import tomllib\nfrom typing import Self\nimport datetime\nx = datetime.UTC\n"
             "try:\n    pass\nexcept* ValueError:\n    pass\n")
    assert len(python310_problems(Path("a.py"), newer)) == 1  # the except* syntax stops the parse
    found = python310_problems(Path("a.py"), newer.split("try:")[0])
    assert [p.split(": ")[1] for p in found] == ["tomllib is newer than Python 3.10",
                                                  "typing.Self is newer than Python 3.10",
                                                  "datetime.UTC is newer than Python 3.10"]
    guarded = "import sys\nif sys.version_info >= (3, 11):\n    import tomllib\nelse:\n    import tomli as tomllib\n"
    assert python310_problems(Path("a.py"), guarded) == []


def test_the_kernel_and_plugins_need_only_python_310() -> None:
    sources = [*ROOT.rglob("*.py"), *(p for p in (ROOT.parent / "plugins").glob("*/being_*/**/*.py"))]
    assert len(sources) > len(module_names())  # the plugins were found too
    problems = [p for path in sorted(sources) for p in python310_problems(path, path.read_text())]
    assert not problems, "\n".join(problems)

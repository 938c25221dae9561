"""Shared test helpers: fake installed distributions and running the ``being`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def make_dist(root: Path, dist: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None,
              version: str = "1.0.0") -> Path:
    """Lay out an installed distribution in ``root`` the way pip does (``*.dist-info`` with
    METADATA and entry_points.txt, plus module files), so ``importlib.metadata`` finds it once
    ``root`` is on sys.path. Returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for filename, source in (modules or {}).items():
        path = root / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


#: A method announced but not released, for the tests of that state (every real method is released).
PLANNED_SITE = """
import being_kernel.discovery as discovery
import being_kernel.known as known

PLANNED = known.KnownMethod("nextgen", "torso", "being-torso-nextgen", "torso_nextgen",
                            "a method announced but not released", planned=True)
known.KNOWN_METHODS = discovery.KNOWN_METHODS = known.KNOWN_METHODS + (PLANNED,)
"""


@pytest.fixture
def planned_site(tmp_path: Path) -> Path:
    """A folder whose ``sitecustomize`` adds the planned torso ``nextgen`` to the known methods of a
    ``being`` started with it on PYTHONPATH (``run_being(..., extra_path=[planned_site])``)."""
    site = tmp_path / "planned-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PLANNED_SITE)
    return site


def run_being(*args: str, extra_path: list[Path] = (), env: dict[str, str] | None = None, timeout: float = 300,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``being`` CLI in a subprocess with ``extra_path`` on PYTHONPATH."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    full_env["PYTHONPATH"] = os.pathsep.join([str(p) for p in extra_path] + [full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    cmd = [sys.executable, "-c", "from being_kernel.cli.main import main; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd)


@pytest.fixture
def broken_plugin(tmp_path: Path) -> Path:
    """A distribution whose avatar plugin raises on import."""
    return make_dist(tmp_path / "broken", "being-avatar-broken", {"being.avatar": {"broken": "broken_avatar:SPEC"}},
                     {"broken_avatar.py": "raise ImportError('needs libfoo.so, which is missing')\n"})


#: ``being serve`` tests: the fake triple at 96x96 (the fake mouth follows its own frame's loudness)
LIVE_FAKES = {"audio": "fake", "avatar": "fake", "torso": "fake"}
LIVE_SIZE = {"avatar": {"size": [96, 96]}, "torso": {"size": [96, 96]}}


@pytest.fixture(scope="module")
def live_engine():
    """A live engine on the fake triple, shared by a module's tests."""
    from being_kernel.discovery import Registry
    from being_kernel.media.clip import LoadedTriple, select
    from being_kernel.serve.engine import Engine

    registry = Registry.discover()
    triple = LoadedTriple.load(select(registry, LIVE_FAKES, LIVE_SIZE), registry)
    engine = Engine(triple, margin_s=0.08)
    yield engine
    engine.stop()
    triple.close()

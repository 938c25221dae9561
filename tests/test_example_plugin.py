"""The example plugin of docs/writing-a-plugin.md, installed with pip the way a user would, then
listed, run, its hook command used, and its own one-line conformance suite run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from being_kernel.hooks import HookSpecs
from conftest import REPO, run_being

EXAMPLE = REPO / "docs" / "example-plugin"
DOC = REPO / "docs" / "writing-a-plugin.md"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True)
    return target


def test_listed_run_and_hook_command(installed, tmp_path) -> None:
    r = run_being("plugins", extra_path=[installed])
    assert any(line.split()[:2] == ["nod", "being-audio-nod"] for line in r.stdout.splitlines()), r.stdout
    assert "being_cli_commands" in r.stdout  # the hooks section names what the plugin implements
    out = tmp_path / "nod.mp4"
    r = run_being("run", "--audio", "nod", "--avatar", "fake", "--torso", "static", "--set", "torso.size=[96,96]",
                  "--out", str(out), extra_path=[installed])
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0
    r = run_being("nod-info", extra_path=[installed])
    assert r.returncode == 0 and "pitches forward" in r.stdout


def test_its_conformance_suite_passes(installed) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                       capture_output=True, text=True, env=env, cwd=EXAMPLE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\d+ passed", r.stdout)


def test_the_doc_shows_the_example_files_as_they_are() -> None:
    doc = DOC.read_text()
    for path in ["pyproject.toml", "being_audio_nod/spec.py", "being_audio_nod/model.py",
                 "being_audio_nod/commands.py", "tests/test_conformance.py"]:
        assert (EXAMPLE / path).read_text().strip() in doc, f"docs/writing-a-plugin.md is out of date for {path}"


def test_every_hook_spec_is_documented() -> None:
    doc = DOC.read_text()
    for name in [n for n in vars(HookSpecs) if n.startswith("being_")]:
        assert f"`{name}" in doc, f"hook {name} is not documented in {DOC.name}"

"""The plugin templates of docs/writing-a-plugin.md (docs/templates/): each installed with pip the
way a user would, then its own tests run (the conformance suite, and for the avatar the trainer
conformance suite: atomic output, exact resume, typed summary, PSNR agreeing with being eval); and
the doc shows their files as they are."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

TEMPLATES = REPO / "docs" / "templates"
DOC = REPO / "docs" / "writing-a-plugin.md"
FILES = {"avatar-points": ["being_avatar_points/spec.py", "being_avatar_points/model.py", "being_avatar_points/train.py",
                           "tests/test_points.py"],
         "torso-plain": ["being_torso_plain/spec.py", "being_torso_plain/model.py", "tests/test_plain.py"]}


@pytest.mark.parametrize("template", sorted(FILES))
def test_template_installs_and_passes_its_tests(template: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(TEMPLATES / template)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATES / template / "tests")],
                       capture_output=True, text=True, env=env, cwd=TEMPLATES / template, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\d+ passed", r.stdout)


def test_the_doc_shows_the_template_files_as_they_are() -> None:
    doc = DOC.read_text()
    for template, paths in FILES.items():
        for path in paths:
            text = (TEMPLATES / template / path).read_text().strip()
            assert text in doc, f"docs/writing-a-plugin.md is out of date for docs/templates/{template}/{path}"

"""Make the plugin (and the kernel next to it) importable when the plugin is not pip-installed.

Paths added here are also put on PYTHONPATH, so subprocesses (the conformance suite's
light-import check) see them too.
"""

import importlib.util
import os
import sys
from pathlib import Path

_PLUGIN = Path(__file__).resolve().parents[1]
_REPO = _PLUGIN.parents[1]


def _add(path: Path) -> None:
    sys.path.insert(0, str(path))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), os.environ.get("PYTHONPATH", "")) if p)


if importlib.util.find_spec("being_kernel") is None:
    _add(_REPO)
if importlib.util.find_spec("being_torso_static") is None:
    _add(_PLUGIN)

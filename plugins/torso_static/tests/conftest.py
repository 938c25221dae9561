"""Make the plugin (and the kernel next to it) importable when the plugin is not pip-installed."""

import importlib.util
import sys
from pathlib import Path

_PLUGIN = Path(__file__).resolve().parents[1]
_REPO = _PLUGIN.parents[1]

if importlib.util.find_spec("being_kernel") is None:
    sys.path.insert(0, str(_REPO))
if importlib.util.find_spec("being_torso_static") is None:
    sys.path.insert(0, str(_PLUGIN))

"""The kernel's conformance suite on the warp compositor, with a random torso of the trained layout
(written once at import into a temporary folder: the suite takes its config when the class is made)."""

import tempfile
from importlib.metadata import entry_points
from pathlib import Path

from being_kernel.testing import conformance_suite
from being_torso_warp.spec import SPEC
from being_torso_warp.testing import random_torso

_TORSO = str(random_torso(Path(tempfile.mkdtemp(prefix="being-warp-")) / "torso", size=64))
_installed = any(ep.name == "warp" for ep in entry_points(group="being.torso"))

TestConformanceWarpFast = (
    conformance_suite("torso", "warp", {"path": _TORSO, "mode": "fast", "device": "cpu"})
    if _installed
    else conformance_suite("torso", config={"path": _TORSO, "mode": "fast", "device": "cpu"}, spec=SPEC)
)
TestConformanceWarpFull = conformance_suite("torso", config={"path": _TORSO, "mode": "full", "device": "cpu"}, spec=SPEC)

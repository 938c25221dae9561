"""The kernel's conformance suite for TorsoCompositor plugins, on the static compositor.

The plugin is tested by its spec, so it need not be installed; once it is (pip install -e), the
entry-point registration is tested too.
"""

from importlib.metadata import entry_points

from being_kernel.testing import conformance_suite
from being_torso_static.spec import SPEC

_installed = any(ep.name == "static" for ep in entry_points(group="being.torso"))

TestConformanceStatic = (
    conformance_suite("torso", "static", {"size": [128, 96]})
    if _installed
    else conformance_suite("torso", config={"size": [128, 96]}, spec=SPEC)
)
TestConformanceStaticScaled = conformance_suite(
    "torso", config={"size": [160, 120], "head_px_per_metre": 300.0, "neck_xy": [0.4, 0.8]}, spec=SPEC
)

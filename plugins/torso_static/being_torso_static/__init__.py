"""being-torso-static: the ``static`` TorsoCompositor (head over a fixed background and torso).

The kernel finds it through the ``being.torso`` entry point ``static`` -> ``being_torso_static.spec:SPEC``;
the implementation is ``being_torso_static.compositor.StaticTorso``.
"""

__version__ = "0.1.0"

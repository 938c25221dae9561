"""being-torso-restorer: the ``restorer`` TorsoCompositor, a seam restorer over a base torso.

SyncTalk++ (arXiv 2506.14742) adds a Torso Restorer: a U-Net that repaints the band where a
rendered head meets the torso. Here the head is composited over a base torso (``static``, or
``warp`` when installed) by that base compositor, and a small U-Net trained per subject on the
subject's own frames repaints only the band around the lower outline of the head.

The kernel finds it through the ``being.torso`` entry point ``restorer`` ->
``being_torso_restorer.spec:SPEC``; the compositor is ``being_torso_restorer.compositor:RestorerTorso``,
the trainer ``being_torso_restorer.fit:RestorerFit``. See the package README.
"""

__version__ = "0.1.0"

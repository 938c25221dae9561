"""being-torso-warp: the ``warp`` TorsoCompositor, a torso that follows the head, trained per subject.

Gaussian Head & Shoulders (Wu et al., ICLR 2025, arXiv 2405.12069): the torso is a learned neural
texture seen through a pose-conditioned warp of image coordinates, guided by sparse anchor points
that follow the head's skinning; a colour MLP adds pose-dependent detail; a distilled mode bakes the
colour into the texture and replaces the warp by one homography per frame fitted to the anchors.

The kernel finds it through the ``being.torso`` entry point ``warp`` -> ``being_torso_warp.spec:SPEC``;
the compositor is ``being_torso_warp.compositor:WarpTorso``, the trainer
``being_torso_warp.fit:WarpFit``. See the package README.
"""

__version__ = "0.1.0"

"""Rendering services: OpenCV camera converters (``conventions``), Gaussian rasterization with a
gsplat and a PyTorch backend (``gaussians``), mesh-embedded Gaussians (``surface``), and the
textured-mesh reference renderer (``mesh``). See docs/rendering.md.

``Cameras`` lives in the core (``being_kernel.cameras``) so that contracts and head models use it
without importing the renderers; it is re-exported here for renderer code."""

from ..cameras import Cameras

__all__ = ["Cameras"]

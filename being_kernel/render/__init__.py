"""Rendering services: OpenCV cameras (``camera``) and converters (``conventions``), Gaussian
rasterization with a gsplat and a PyTorch backend (``gaussians``), mesh-embedded Gaussians
(``surface``), and the textured-mesh reference renderer (``mesh``). See docs/rendering.md."""

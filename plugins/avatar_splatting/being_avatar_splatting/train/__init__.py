"""SplattingAvatar training (Shao et al., CVPR 2024) on the kernel's harness: ``walking``
(Gaussians move across triangles), ``params`` (the trainable Gaussians), ``densify`` (clone, split,
prune), ``scene`` (frames and posed meshes on the device), ``method`` (the FitMethod: rendering a
batch, schedule, hooks, export)."""

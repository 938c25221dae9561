"""SplattingAvatar training (Shao et al., CVPR 2024): ``walking`` (Gaussians move across triangles),
``params`` (the trainable Gaussians and their optimizer), ``densify`` (clone, split, prune),
``trainer`` (the ``being fit`` loop: losses, schedule, previews, checkpoints, export)."""

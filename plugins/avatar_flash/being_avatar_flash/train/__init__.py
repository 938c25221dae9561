"""FlashAvatar training (Xiang et al., CVPR 2024) on the kernel's harness: ``data`` (frames, posed
meshes, conditions and mouth masks on the device), ``gaussians`` (the trainable Gaussians and their
initialisation), ``method`` (the FitMethod: a batch, the mouth term, export)."""

"""Being plugin ``--avatar flash``: FlashAvatar (Xiang et al., CVPR 2024). See README.md."""

__version__ = "0.1.0"

"""being-avatar-splatting: the rendering side of SplattingAvatar (Shao et al., CVPR 2024) as a Being
``FlameRenderer``. The implementation lives in ``renderer`` (the renderer), ``avatar`` (the avatar
directory format) and ``demo`` (the built-in demo avatar); ``spec`` is what ``being plugins`` imports."""

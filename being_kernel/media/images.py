"""Still images: PNG writing (PyAV's encoder, so no imaging library is needed)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """float [H, W, 3] in [0, 1] (array or tensor, any device) or uint8 -> uint8 [H, W, 3]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def write_png(path: str | Path, image: np.ndarray | torch.Tensor) -> Path:
    """Write an RGB image [H, W, 3] (uint8, or float in [0, 1]) as PNG."""
    rgb = to_uint8(image)
    path = Path(path)
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path

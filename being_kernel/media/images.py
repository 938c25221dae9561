"""Still images: PNG writing and image reading (PyAV's codecs, so no imaging library is needed)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch

from being_kernel.errors import InputError

#: PNG pixel formats by channel count: gray, RGB, RGBA
_PIX_FMT = {1: "gray", 3: "rgb24", 4: "rgba"}


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """float [..., H, W, C] in [0, 1] (array or tensor, any device) or uint8 -> uint8 [..., H, W, C]
    in host memory. A tensor is converted on its own device, so only uint8 crosses to the host; NaN -> 0."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image)
    if image.is_floating_point():
        image = torch.nan_to_num(image.detach(), nan=0.0).clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(image.cpu().numpy())


def write_png(path: str | Path, image: np.ndarray | torch.Tensor) -> Path:
    """Write an image as PNG: RGB [H, W, 3], RGBA [H, W, 4] or gray [H, W, 1] / [H, W]
    (uint8, or float in [0, 1])."""
    pixels = to_uint8(image)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in _PIX_FMT:
        raise ValueError(f"write_png: image must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got {pixels.shape}")
    fmt = _PIX_FMT[pixels.shape[2]]
    path = Path(path)
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = pixels.shape[1], pixels.shape[0], fmt
        frame = av.VideoFrame.from_ndarray(pixels[..., 0] if fmt == "gray" else pixels, format=fmt)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def read_image(path: str | Path) -> np.ndarray:
    """Decode a still image (PNG, JPEG, ...) into uint8 [H, W, C]: C = 1 for gray, 3 for RGB,
    4 when the file has an alpha channel (RGBA, gray + alpha, palette). InputError if unreadable."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (OSError, av.FFmpegError, StopIteration) as exc:
        raise InputError(f"{path}: not a readable image ({exc or 'no picture in it'})") from exc
    fmt = frame.format
    if fmt.has_palette or any(c.is_alpha for c in fmt.components):
        target = "rgba"
    elif len(fmt.components) == 1:
        target = "gray"
    else:
        target = "rgb24"
    pixels = frame.to_ndarray(format=target)
    return np.ascontiguousarray(pixels[..., None] if target == "gray" else pixels)

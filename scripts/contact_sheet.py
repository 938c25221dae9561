"""Write a PNG contact sheet of chosen frames of a video (e.g. an MP4 written by `being run`).

    python scripts/contact_sheet.py talk.mp4 sheet.png --frames 0 25 50 75
    python scripts/contact_sheet.py talk.mp4 sheet.png --times 0.5 1.0 2.5 --columns 3 --scale 0.5 --no-labels

Frames are picked by index (--frames) or by time in seconds (--times: the frame shown at that
time, i.e. the last one whose presentation time is <= t). Each tile is labelled with its frame
index and time (a small built-in bitmap font, so no font files are needed) unless --no-labels.
Decoding is PyAV; the PNG is written by being_kernel.media.write_png.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import av
import numpy as np

from being_kernel.media import write_png

# 3x5 bitmap glyphs for the label characters: each row is 3 bits, most significant bit left.
_GLYPHS = {
    "0": (7, 5, 5, 5, 7), "1": (2, 6, 2, 2, 7), "2": (7, 1, 7, 4, 7), "3": (7, 1, 7, 1, 7), "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7), "6": (7, 4, 7, 5, 7), "7": (7, 1, 1, 1, 1), "8": (7, 5, 7, 5, 7), "9": (7, 5, 7, 1, 7),
    ".": (0, 0, 0, 0, 2), "s": (0, 3, 6, 1, 6), "#": (5, 7, 5, 7, 5), " ": (0, 0, 0, 0, 0), "-": (0, 0, 7, 0, 0),
}


def draw_label(tile: np.ndarray, text: str, scale: int) -> None:
    """Draw ``text`` in white on a dark box at the tile's top-left corner, in place (uint8 RGB)."""
    gw, gh, pad = 4 * scale, 5 * scale, 2 * scale
    h = min(tile.shape[0], gh + 2 * pad)
    w = min(tile.shape[1], len(text) * gw + 2 * pad)
    tile[:h, :w] = (tile[:h, :w] * 0.35).astype(np.uint8)
    for k, ch in enumerate(text):
        rows = _GLYPHS.get(ch, _GLYPHS[" "])
        for r, bits in enumerate(rows):
            for c in range(3):
                if bits >> (2 - c) & 1:
                    y, x = pad + r * scale, pad + k * gw + c * scale
                    tile[y : y + scale, x : x + scale] = 255


def read_frames(video: Path, indices: list[int] | None, times: list[float] | None) -> list[tuple[int, float, np.ndarray]]:
    """Decode the wanted frames: (index, pts seconds, uint8 RGB [H, W, 3]) in the order asked."""
    frames: list[tuple[float, np.ndarray]] = []
    want_idx = set(indices or [])
    last_idx = max(want_idx) if indices else None
    last_t = max(times) if times else None
    with av.open(str(video)) as container:
        if not container.streams.video:
            raise SystemExit(f"{video}: no video stream")
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else math.nan
            keep = (indices is not None and i in want_idx) or times is not None
            frames.append((t, frame.to_ndarray(format="rgb24") if keep else None))
            if last_idx is not None and i >= last_idx:
                break
            if last_t is not None and t > last_t:
                break
    out = []
    if indices is not None:
        for i in indices:
            if i < 0 or i >= len(frames) or frames[i][1] is None:
                raise SystemExit(f"{video}: frame {i} not found (the video has {len(frames)} frames)")
            out.append((i, frames[i][0], frames[i][1]))
    else:
        for t in times:
            at = [k for k, (pts, _) in enumerate(frames) if pts <= t + 1e-9]
            if not at:
                raise SystemExit(f"{video}: no frame at {t} s")
            k = at[-1]
            out.append((k, frames[k][0], frames[k][1]))
    return out


def contact_sheet(tiles: list[np.ndarray], columns: int, gap: int = 4, background: int = 255) -> np.ndarray:
    """Tiles (uint8 RGB, same size) in a grid of ``columns``, ``gap`` pixels apart."""
    h, w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / columns)
    sheet = np.full((rows * h + (rows + 1) * gap, columns * w + (columns + 1) * gap, 3), background, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + h, x : x + w] = tile
    return sheet


def resize(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return img
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    h, w = max(1, round(img.shape[0] * scale)), max(1, round(img.shape[1] * scale))
    t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=scale < 1.0)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", type=Path, help="input video (MP4 from `being run`)")
    p.add_argument("out", type=Path, help="output PNG")
    pick = p.add_mutually_exclusive_group(required=True)
    pick.add_argument("--frames", type=int, nargs="+", help="frame indices, from 0")
    pick.add_argument("--times", type=float, nargs="+", help="times in seconds")
    p.add_argument("--columns", type=int, default=None, help="tiles per row (default: all in one row, at most 6)")
    p.add_argument("--scale", type=float, default=1.0, help="tile scale factor (e.g. 0.5)")
    p.add_argument("--no-labels", action="store_true", help="no frame index / time labels")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such file")
    picked = read_frames(args.video, args.frames, args.times)
    tiles = []
    for i, t, img in picked:
        tile = resize(img, args.scale).copy()
        if not args.no_labels:
            draw_label(tile, f"#{i} {t:.2f}s", max(1, round(tile.shape[0] / 160)))
        tiles.append(tile)
    columns = args.columns or min(len(tiles), 6)
    out = write_png(args.out, contact_sheet(tiles, columns))
    print(f"wrote {out}: {len(tiles)} frames")
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)

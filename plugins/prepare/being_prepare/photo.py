"""Reading a person's photo for ``being prepare PHOTO``: any image Pillow opens (jpg, png, webp,
tiff, bmp, ...), turned upright by its EXIF orientation, as 8-bit RGB whatever its mode (grey,
palette, 16-bit, float, with alpha), and bounded in size; and the checks a single view needs
(one face, large enough, not cut by the border), each failing with one line that says what to do.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from being_kernel import InputError

from .landmarks import CHIN, FOREHEAD

#: what ``being prepare`` treats as a photo rather than a video
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
#: longer photos are scaled down to this side: 2048 px leave a face that fills a quarter of the
#: height at ~500 px, the crop's resolution; beyond it only the memory and the time grow
MAX_SIDE = 2048
#: decoding refuses images with more pixels than this (a decompression bomb or a scan, not a portrait)
MAX_PIXELS = 200_000_000
#: the smallest face (forehead-to-chin, pixels of the photo) that gives an avatar worth having
MIN_FACE_PX = 64
#: landmarks further than this fraction of the face height outside the photo mean the face is cut
CUT_TOLERANCE = 0.02
_HINT = "give a jpg, png or webp photo of one face, frontal or slightly turned"


def is_photo(path: str | Path) -> bool:
    """Whether ``path`` names an image by its suffix (a video otherwise)."""
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


def _to_rgb8(image) -> np.ndarray:  # noqa: ANN001 - a PIL.Image.Image
    """Any Pillow mode -> uint8 [H, W, 3]. High bit depths are scaled by their type's range (a
    16-bit PNG's 65535 is white); alpha is composited over white (a cut-out portrait's usual page)."""
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        if mode == "F":  # floats: [0, 1] when they fit, else 8-bit values
            top = 1.0 if a.max() <= 1.0 else 255.0
        else:  # Pillow opens 16-bit greys as I;16 or I
            top = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        grey = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA", "P", "RGBa", "La"):
        image = image.convert("RGBA")
        page = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(page, image)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def read_photo(path: str | Path, say=print) -> np.ndarray:  # noqa: ANN001 - say(str) -> None
    """The photo as upright uint8 RGB [H, W, 3], at most MAX_SIDE on its long side (scaled down
    with a note). InputError for a file that is missing, not an image, corrupt or absurdly large."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"no such photo: {path}", hint=_HINT)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"photo '{path}' is too large to be a portrait (over {MAX_PIXELS // 1_000_000} megapixels)",
                         hint="scale it down, e.g. to 2048 pixels on the long side") from None
    except UnidentifiedImageError:
        raise InputError(f"cannot read photo '{path}': not an image Pillow knows", hint=_HINT) from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
        raise InputError(f"cannot read photo '{path}': {e}".replace("\n", " "), hint=_HINT) from None
    if min(image.size) < 64:
        raise InputError(f"photo '{path}' is {image.width}x{image.height} pixels: too small for a face",
                         hint="give a photo at least 256 pixels on each side")
    if max(image.size) > MAX_SIDE:
        scale = MAX_SIDE / max(image.size)
        say(f"note: the photo is {image.width}x{image.height}; working on it scaled to "
            f"{round(image.width * scale)}x{round(image.height * scale)}")
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.LANCZOS, reducing_gap=3.0)
    return _to_rgb8(image)


def check_face(points: np.ndarray | None, width: int, height: int, path: Path) -> None:
    """A single view must show its face whole and large: InputError otherwise. points [478, 2]
    (photo pixels) or None when no face was found."""
    if points is None:
        raise InputError(f"no face was found in '{path}'", hint=_HINT)
    face = float(np.linalg.norm(points[FOREHEAD] - points[CHIN]))
    if face < MIN_FACE_PX:
        raise InputError(f"the face in '{path}' is only {face:.0f} pixels high (forehead to chin); at least "
                         f"{MIN_FACE_PX} are needed", hint="give a closer or larger photo, or crop it around the face")
    margin = CUT_TOLERANCE * face
    outside = ((points[:, 0] < -margin) | (points[:, 0] > width + margin) | (points[:, 1] < -margin)
               | (points[:, 1] > height + margin))
    if outside.any():
        raise InputError(f"the face in '{path}' is cut by the photo's border ({int(outside.sum())} of its "
                         f"{len(points)} landmarks lie outside)", hint="give a photo that shows the whole face")

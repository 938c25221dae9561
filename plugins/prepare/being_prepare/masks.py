"""Masks for the prepared dataset: the person, the head alone, the mouth interior, and the
background plate seen behind the person.

Why each one: training renders the head (FLAME-driven) separately from the torso and the
background, so the losses need to know which pixels are head (face, hair, ears), which are the
rest of the person, and what the empty scene looks like where the person stands. The mouth
interior is the one part of the face the mesh does not cover (teeth, tongue), so it gets its own
mask.

* :class:`PersonSegmenter` runs mediapipe's selfie segmentation (bundled in the 0.10.21 wheel).
* :func:`head_mask` keeps the person above a cut just under the chin and jaw (the face-oval
  landmarks pushed out a little, so it follows head roll), bounded sideways so neck, collar and
  shoulders never count as head.
* :func:`mouth_mask` fills the inner-lip polygon of the face mesh (zero when the lips are closed).
* :func:`background_plate` takes a per-pixel temporal median over the frames that see the
  background there, and inpaints what no frame saw.

Conventions: images RGB uint8 [H, W, 3]; masks float32 [H, W] in [0, 1]; landmarks mediapipe's
face mesh as [478, 2] pixel coordinates (x right, y down, pixel centres at +0.5).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType

import cv2
import numpy as np

from being_kernel import InputError

FOREHEAD, CHIN = 10, 152
#: mediapipe's face-oval contour (FACEMESH_FACE_OVAL), clockwise from the forehead top
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
#: inner-lip contour in polygon order: upper lip 78 -> 308, then lower lip back from 308 (the inner
#: loop of mediapipe's FACEMESH_LIPS; the tests check it against mediapipe's connections)
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)


class PersonSegmenter:
    """mediapipe selfie segmentation as a context manager: ``seg(rgb)`` -> person probability.

    ``model_selection=0`` (the default) is the 'general' model, 256x256 input. It beats the
    'landscape' model (1, 144x256) on head-and-shoulders frames: on skimage's astronaut photo the
    landscape model leaks onto the flag (mean 0.31 there vs 0.02) and leaves 3x more uncertain
    (0.1-0.9) pixels, and square crops would be squeezed to 144 rows.
    """

    def __init__(self, model_selection: int = 0) -> None:
        if model_selection not in (0, 1):
            raise InputError(f"model_selection must be 0 (general) or 1 (landscape), got {model_selection!r}")
        try:
            from mediapipe.python import solutions
        except ImportError as e:
            hint = ("mediapipe 0.10.21 has wheels for CPython 3.9-3.12 only" if sys.version_info >= (3, 13)
                    else "pip install mediapipe==0.10.21")
            raise InputError(f"person segmentation needs mediapipe 0.10.21, which is not importable ({e})",
                             hint=hint) from e
        self._seg = solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> person probability float32 [H, W] in [0, 1]."""
        if self._seg is None:
            raise RuntimeError("PersonSegmenter is closed")
        _check_image(rgb, "frame")
        mask = self._seg.process(np.ascontiguousarray(rgb)).segmentation_mask
        return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None

    def __enter__(self) -> PersonSegmenter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _check_image(rgb: np.ndarray, what: str) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InputError(f"{what} must be an RGB uint8 [H, W, 3] image, got {got}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"{what} is empty ({rgb.shape})")


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 468:
        raise InputError(f"landmarks must be mediapipe's face mesh [478, 2] in pixels, got {lm.shape}")
    if not np.isfinite(lm).all():
        raise InputError("landmarks contain NaN or inf (no face in this frame?)",
                         hint="fill landmark gaps before computing masks")
    return lm


def _ramp(signed: np.ndarray, feather_px: float) -> np.ndarray:
    """float32 ramp from 0 to 1 as ``signed`` (>0: inside) crosses 0, ``feather_px`` wide (a step if 0)."""
    if feather_px <= 0:
        return (signed > 0).astype(np.float32)
    return np.clip(signed / feather_px + 0.5, 0.0, 1.0).astype(np.float32)


def _fill_polygon(poly: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [height, width]: 1 where the pixel centre lies inside ``poly`` [N, 2] (pixel units,
    pixel (i, j) spanning [j, j+1] x [i, i+1]). cv2.fillPoly treats integer coordinates as pixel
    centres and fills both ends of each span, i.e. one pixel too many per row and column; passing
    the coordinates unshifted and dropping the last pixel of each span (erosion by a 2x2 block
    anchored at its top-left) gives centre sampling."""
    img = np.zeros((height, width), np.uint8)
    cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return cv2.erode(img, np.ones((2, 2), np.uint8), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT,
                     borderValue=0)


def head_mask(person: np.ndarray, landmarks: np.ndarray, *, chin_margin: float = 0.05,
              side_margin: float = 0.5, feather_px: float = 2.0) -> np.ndarray:
    """The head (face, hair, ears) part of a person mask: float32 [H, W] in [0, 1].

    person [H, W] float in [0, 1]; landmarks [478, 2] pixels. Works in the face's own frame: v along
    the axis forehead top (10) -> chin (152), u across it (so everything follows roll), with the
    face height F = |10 - 152| as the unit. Kept: the person, where

    * down to the ear lobes' level (oval landmarks 132/361), u within the face oval's extent
      widened by ``side_margin`` * F (0.5) on each side: room for hair, ears and tall hair, no top;
    * below that, within a distance of the face oval (the jaw line) that shrinks from
      ``side_margin`` * F at the ear lobes to ``chin_margin`` * F (0.05, about the soft tissue
      under the chin tip) at the jaw angle (172/397) and stays so to the chin.

    So the cut under the head is the jaw line pushed out by 0.05 F: its lowest point is 0.05 F
    below the chin (152) along the face axis, where it runs perpendicular to that axis, and beside
    the chin it rises with the jaw, so the neck beside the jaw and any collar or shoulder rising
    towards it stay out (a straight cut at the chin's level would let them in). Edges are
    feathered over ``feather_px`` pixels.
    """
    person = np.asarray(person, dtype=np.float32)
    if person.ndim != 2:
        raise InputError(f"person mask must be float [H, W], got {person.shape}")
    lm = _check_landmarks(landmarks)
    axis = lm[CHIN] - lm[FOREHEAD]
    face = float(np.linalg.norm(axis))
    if face < 1e-3:
        raise InputError("landmarks are degenerate: forehead and chin coincide")
    down = axis / face
    right = np.array([down[1], -down[0]])  # (1, 0) for an upright face
    oval = lm[list(FACE_OVAL)]
    u_oval = oval @ right
    v_lobe = 0.5 * (lm[132] + lm[361]) @ down
    v_angle = max(0.5 * (lm[172] + lm[397]) @ down, v_lobe + 1e-3)

    h, w = person.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    u = xs * right[0] + ys * right[1]
    v = xs * down[0] + ys * down[1]
    side = side_margin * face
    band = (_ramp(u - (u_oval.min() - side), feather_px) * _ramp((u_oval.max() + side) - u, feather_px)
            * _ramp(v_lobe - v, feather_px))
    inside = _fill_polygon(oval, h, w)
    # distance to the nearest inside pixel centre, less half a pixel: about the distance to the edge
    dist = np.maximum(cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) - 0.5, 0)
    t = np.clip((v - v_lobe) / (v_angle - v_lobe), 0.0, 1.0)
    reach = side + t * (chin_margin * face - side)
    near_jaw = _ramp(reach - dist, feather_px)
    keep = np.maximum(band, near_jaw)
    return (np.clip(person, 0.0, 1.0) * keep).astype(np.float32)


def mouth_mask(landmarks: np.ndarray, height: int, width: int, *, closed_gap: float = 0.03,
               supersample: int = 8) -> np.ndarray:
    """The mouth interior: the inner-lip polygon filled, float32 [height, width] in [0, 1].

    Edge pixels hold their covered fraction (rendered ``supersample`` times finer), so the sum is
    the polygon's area. Zero when the lips are closed: polygon area below
    (``closed_gap`` * mouth width) * mouth width, i.e. a mean opening under 3% of the mouth width
    (about a pixel at 512x512), which is landmark jitter on sealed lips, not a visible gap.
    """
    lm = _check_landmarks(landmarks)
    out = np.zeros((height, width), np.float32)
    poly = lm[list(INNER_LIPS)]
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    mouth_w = float(np.linalg.norm(lm[INNER_LIPS[0]] - lm[INNER_LIPS[10]]))
    if area <= closed_gap * mouth_w * mouth_w:
        return out
    x0, y0 = max(int(np.floor(x.min())) - 1, 0), max(int(np.floor(y.min())) - 1, 0)
    x1, y1 = min(int(np.ceil(x.max())) + 1, width), min(int(np.ceil(y.max())) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return out  # entirely outside the image
    s = supersample
    fine = _fill_polygon((poly - [x0, y0]) * s, (y1 - y0) * s, (x1 - x0) * s)
    cover = fine.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3), dtype=np.float32)
    out[y0:y1, x0:x1] = cover
    return out


def background_plate(frames: Sequence[np.ndarray] | np.ndarray, person: Sequence[np.ndarray] | np.ndarray, *,
                     threshold: float = 0.5, dilate_px: int = 6, max_frames: int = 60,
                     inpaint_radius: int = 5, rows_per_chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The background behind the person, from T frames and their person masks.

    frames T x [H, W, 3] uint8 (a list or a [T, H, W, 3] array); person T x [H, W] float. A pixel is
    background in a frame where person < ``threshold`` after the person is dilated by ``dilate_px``
    (the segmenter runs at 256x256, so at 512x512 its edge is uncertain by a few pixels and carries a
    halo of hair and motion blur). The plate is the per-pixel median over up to ``max_frames``
    frames spread evenly over the clip: 60 samples give a median robust to a few bad masks, and
    cost 60 x H x W x 3 bytes (47 MB at 512x512; the whole run peaks near 100 MB) rather than the
    whole clip; the median is taken in row chunks. Pixels those frames never saw but other frames
    did (briefly uncovered) get the mean over those other frames (one streaming pass, O(H W)
    memory); pixels no frame saw are inpainted (Telea). If no frame sees any background the plate
    is mid-grey and ``seen`` all 0 (the caller decides; it is not an error of the input).

    Returns (plate uint8 [H, W, 3], seen float32 [H, W]: 1 where some frame saw the background).
    """
    n = len(frames)
    if n == 0:
        raise InputError("background_plate got no frames")
    if len(person) != n:
        raise InputError(f"background_plate got {n} frames but {len(person)} person masks")
    _check_image(np.asarray(frames[0]), "frame 0")
    h, w = np.asarray(frames[0]).shape[:2]
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1,) * 2) if dilate_px > 0 else None

    for i in range(n):  # shapes only, before any work
        img, p = frames[i], person[i]
        if np.shape(img) != (h, w, 3) or np.asarray(img).dtype != np.uint8:
            raise InputError(f"frame {i} is {np.asarray(img).dtype} {np.shape(img)}, frame 0 is uint8 {(h, w, 3)}")
        if np.shape(p) != (h, w):
            raise InputError(f"person mask {i} is {np.shape(p)}, the frames are {(h, w)}")

    def background(i: int) -> tuple[np.ndarray, np.ndarray]:
        img, p = np.asarray(frames[i]), np.asarray(person[i])
        fg = (p >= threshold).astype(np.uint8)
        if kernel is not None:
            fg = cv2.dilate(fg, kernel)
        return img, fg == 0

    picked = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    stack = np.empty((len(picked), h, w, 3), np.uint8)
    valid = np.empty((len(picked), h, w), bool)
    for k, i in enumerate(picked):
        stack[k], valid[k] = background(int(i))

    plate = np.zeros((h, w, 3), np.uint8)
    count = valid.sum(axis=0)
    for r0 in range(0, h, rows_per_chunk):
        r1 = min(r0 + rows_per_chunk, h)
        # person pixels sort last (sentinel 256), so the median of the k valid samples sits at
        # sorted positions (k-1)//2 and k//2
        chunk = np.where(valid[:, r0:r1, :, None], stack[:, r0:r1].astype(np.int16), np.int16(256))
        chunk.sort(axis=0)
        k = count[r0:r1][None, :, :, None]
        lo = np.take_along_axis(chunk, np.maximum(k - 1, 0) // 2, axis=0)[0]
        hi = np.take_along_axis(chunk, k // 2, axis=0)[0]
        med = (lo.astype(np.int32) + hi + 1) // 2
        plate[r0:r1] = np.where(count[r0:r1, :, None] > 0, np.clip(med, 0, 255), 0).astype(np.uint8)
    seen = count > 0
    del stack, valid

    rest = np.setdiff1d(np.arange(n), picked)
    if len(rest) and not seen.all():
        total, hits = np.zeros((h, w, 3), np.float64), np.zeros((h, w), np.int64)
        for i in rest:
            img, bg = background(int(i))
            new = bg & ~seen
            total[new] += img[new]
            hits += new
        got = hits > 0
        plate[got] = np.round(total[got] / hits[got, None]).astype(np.uint8)
        seen |= got

    if not seen.any():
        return np.full((h, w, 3), 128, np.uint8), np.zeros((h, w), np.float32)
    if not seen.all():
        plate = cv2.inpaint(plate, (~seen).astype(np.uint8), inpaint_radius, cv2.INPAINT_TELEA)
    return plate, seen.astype(np.float32)

"""Face landmarks: mediapipe's 478-point face mesh (468 points plus 10 iris points), one face
followed through the clip, smoothed over time.

mediapipe 0.10.21 is the last release whose wheel bundles the face-detection and face-mesh models
(later ones download ``.task`` files), so nothing is fetched at run time. Faces are found with the
full-range face detector and the mesh runs on a crop around each (``FaceLandmarker``); the face chosen
in the first frame that has one (the largest, or ``--face N``: the N-th largest) is followed by
nearest centre, so a second person walking in does not steal the track.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from being_kernel import InputError

from .smoothing import fill_gaps, smooth_track

N_LANDMARKS = 478
#: mediapipe face-mesh indices: forehead top, chin, the outer eye corners, the iris centres
FOREHEAD, CHIN = 10, 152
EYE_CORNERS = (33, 263)
IRIS_CENTRES = (468, 473)
#: landmarks that move fast in speech and blinks (lips, eyelids, irises): a higher rest cutoff
_LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
         270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
_LIDS = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246, 249, 263, 362, 373, 374,
         380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
FAST = np.array(sorted(set(_LIPS) | set(_LIDS) | set(range(468, 478))))


def mediapipe_solutions():  # noqa: ANN201 - the mediapipe.solutions module
    """``mediapipe.solutions``, or an InputError saying how to get it on this Python."""
    try:
        from mediapipe.python import solutions
    except ImportError as e:
        v = f"{sys.version_info.major}.{sys.version_info.minor}"
        hint = ("mediapipe 0.10.21 has wheels for CPython 3.9-3.12 only: run being prepare from a 3.9-3.12 "
                "environment" if sys.version_info >= (3, 13) else "pip install mediapipe==0.10.21")
        raise InputError(f"being prepare needs mediapipe 0.10.21, which is not importable on Python {v} ({e})",
                         hint=hint) from e
    return solutions


@dataclass
class LandmarkTrack:
    """The chosen face's landmarks over T frames.

    points [T, 478, 2] float64 pixels (x right, y down, pixel centres at +0.5), smoothed, gaps filled
    raw    [T, 478, 2] as detected (NaN where no face)
    found  [T] bool: the face was found in that frame
    """

    points: np.ndarray
    raw: np.ndarray
    found: np.ndarray

    @property
    def face_size(self) -> float:
        """Median forehead-to-chin distance in pixels over the frames with a face."""
        d = np.linalg.norm(self.raw[self.found, FOREHEAD] - self.raw[self.found, CHIN], axis=-1)
        return float(np.median(d))


class FaceLandmarker:
    """Faces in an image: ``landmarker(rgb)`` -> list of [478, 2] pixel arrays, one per face.

    mediapipe's face mesh finds faces with its short-range detector on a 128-pixel copy of the
    whole frame, which misses faces smaller than about a fifth of the frame and, in wide frames,
    often every face. So faces are found first with the full-range detector (up to 5 m, the
    ``model_selection=1`` model), and the mesh runs on a square crop around each one (twice the
    detected box), where the face is large."""

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5) -> None:
        solutions = mediapipe_solutions()
        self.max_faces = max_faces
        self._detector = solutions.face_detection.FaceDetection(model_selection=1,
                                                                min_detection_confidence=min_confidence)
        self._mesh = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                                  min_detection_confidence=min_confidence)

    def _boxes(self, rgb: np.ndarray) -> list[tuple[float, float, float]]:
        """Detected faces as (centre x, centre y, side) squares in pixels, largest first."""
        h, w = rgb.shape[:2]
        result = self._detector.process(rgb)
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            side = 2.0 * max(b.width * w, b.height * h)
            boxes.append(((b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h, side))
        return sorted(boxes, key=lambda b: -b[2])[: self.max_faces]

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        """All faces in an RGB uint8 [H, W, 3] image, each [478, 2] float64 pixels."""
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        faces = []
        for cx, cy, side in self._boxes(rgb):
            x0, y0, n = int(round(cx - side / 2)), int(round(cy - side / 2)), max(16, int(round(side)))
            window = np.zeros((n, n, 3), np.uint8)  # the crop, black where it leaves the frame
            sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + n), min(h, y0 + n)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            window[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
            result = self._mesh.process(window)
            if result.multi_face_landmarks:
                pts = np.array([(p.x * n + x0, p.y * n + y0) for p in result.multi_face_landmarks[0].landmark])
                faces.append(pts)
        return faces

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    def __enter__(self) -> FaceLandmarker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _size(points: np.ndarray) -> float:
    return float(np.ptp(points[:, 0]) * np.ptp(points[:, 1]))


class FaceFollower:
    """Chooses one face per frame: the ``face``-th largest in the first frame with faces, then
    the face nearest to the previous choice (lost when none is within one face size)."""

    def __init__(self, face: int | None = None) -> None:
        self.face = face
        self.previous: np.ndarray | None = None
        self.note: str | None = None  # said once, when the first frame has several faces

    def choose(self, faces: list[np.ndarray]) -> np.ndarray | None:
        if not faces:
            return None
        if self.previous is None:
            order = sorted(range(len(faces)), key=lambda i: -_size(faces[i]))
            k = self.face or 0
            if k >= len(faces):
                raise InputError(f"--face {k}: the first frame with a face has only {len(faces)} "
                                 f"(0 is the largest)", hint=f"give --face 0 to {len(faces) - 1}")
            if len(faces) > 1:
                self.note = (f"{len(faces)} faces in view; following face {k} by size "
                             f"({'the largest' if k == 0 else f'{k + 1}-th largest'}; --face N chooses another)")
            chosen = faces[order[k]]
        else:
            centre = self.previous.mean(0)
            dist = [np.linalg.norm(f.mean(0) - centre) for f in faces]
            i = int(np.argmin(dist))
            size = np.linalg.norm(self.previous[FOREHEAD] - self.previous[CHIN])
            if dist[i] > size:
                return None
            chosen = faces[i]
        self.previous = chosen
        return chosen


def build_track(raw: list[np.ndarray | None], fps: float) -> LandmarkTrack:
    """Smooth (zero-lag One-Euro, in units of the face size) and gap-fill the chosen face's
    landmarks. ``raw[t]`` is [478, 2] or None. InputError when no frame has a face."""
    found = np.array([r is not None for r in raw])
    if not found.any():
        raise InputError("no face was found in any frame of the video",
                         hint="give a video where a face is visible, frontal or turned less than about 60°")
    points = np.full((len(raw), N_LANDMARKS, 2), np.nan)
    for t, r in enumerate(raw):
        if r is not None:
            points[t] = r
    track = LandmarkTrack(points, points.copy(), found)
    size = track.face_size
    filled = fill_gaps(points, found) / size
    slow = smooth_track(filled, fps, min_cutoff=1.0, beta=5.0)
    fast = smooth_track(filled, fps, min_cutoff=min(10.0, 0.4 * fps), beta=5.0)
    slow[:, FAST] = fast[:, FAST]
    track.points = slow * size
    return track

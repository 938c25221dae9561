"""Tests for being_prepare.masks: synthetic scenes with known ground truth, plus a real photo
(skimage's public-domain astronaut) run through mediapipe for the segmenter and the head cut."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from being_kernel import InputError
from being_prepare.masks import (FACE_OVAL, INNER_LIPS, PersonSegmenter, background_plate, head_mask,
                                 mouth_mask)


def _loop(edges: set[tuple[int, int]], start: int) -> list[int]:
    """The closed loop of an undirected edge set that passes through ``start``."""
    nbrs: dict[int, list[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    loop, prev = [start], None
    while True:
        nxt = [n for n in nbrs[loop[-1]] if n != prev][0]
        if nxt == start:
            return loop
        prev = loop[-1]
        loop.append(nxt)


def _same_cycle(a: list[int], b: tuple[int, ...]) -> bool:
    if len(a) != len(b):
        return False
    for seq in (a, a[::-1]):
        k = seq.index(b[0])
        if seq[k:] + seq[:k] == list(b):
            return True
    return False


def _shoelace(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / max((a | b).sum(), 1))


def _rotate(img: np.ndarray, pts: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image about its centre and landmarks (pixel centres at +0.5) with the same matrix."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), deg, 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out, (pts - 0.5) @ m[:, :2].T + m[:, 2] + 0.5


# --- landmark index tables against mediapipe's own connection lists -------------------------------

def test_index_tables_match_mediapipe_connections() -> None:
    conn = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections",
                               reason="mediapipe is not importable")
    assert _same_cycle(_loop(set(conn.FACEMESH_LIPS), 13), INNER_LIPS)  # 13: upper inner lip centre
    assert _same_cycle(_loop(set(conn.FACEMESH_FACE_OVAL), 10), FACE_OVAL)


# --- mouth ---------------------------------------------------------------------------------------

def _mouth_landmarks(gap: float) -> np.ndarray:
    """Landmarks whose inner lips form an ellipse 40 px wide and ``gap`` px tall at (70.3, 50.6)."""
    lm = np.zeros((478, 2), np.float32)
    ang = np.linspace(np.pi, -np.pi, len(INNER_LIPS), endpoint=False)  # 78 at the left corner
    lm[list(INNER_LIPS)] = np.stack([70.3 + 20 * np.cos(ang), 50.6 - gap / 2 * np.sin(ang)], 1)
    return lm


def test_mouth_mask_open_is_the_filled_polygon() -> None:
    lm = _mouth_landmarks(gap=14.0)
    m = mouth_mask(lm, 100, 140)
    assert m.dtype == np.float32 and m.shape == (100, 140) and m.min() >= 0 and m.max() <= 1
    poly = lm[list(INNER_LIPS)]
    assert m.sum() == pytest.approx(_shoelace(poly), rel=0.03)
    # oracle: pixel centres inside the polygon, by cv2.pointPolygonTest
    inside = np.array([[cv2.pointPolygonTest(poly.reshape(-1, 1, 2), (x + 0.5, y + 0.5), False) > 0
                        for x in range(140)] for y in range(100)])
    assert _iou(m, inside) > 0.95
    assert m[~cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)].max() == 0


def test_mouth_mask_pixel_convention() -> None:
    """Pixel (row i, col j) spans [j, j+1] x [i, i+1]: a square with corners on pixel borders
    covers exactly its pixels, and one shifted by half a pixel covers the border pixels half."""
    lm = np.zeros((478, 2), np.float32)
    sq = np.array([[10, 5], [20, 5], [20, 15], [10, 15]], np.float32)
    lm[list(INNER_LIPS)] = np.repeat(sq, 5, axis=0)  # 20 points on the square's corners
    m = mouth_mask(lm, 30, 30)
    want = np.zeros((30, 30), np.float32)
    want[5:15, 10:20] = 1
    assert np.abs(m - want).max() < 0.15 and m.sum() == pytest.approx(100, rel=0.03)
    lm[list(INNER_LIPS)] += 0.5
    m = mouth_mask(lm, 30, 30)
    assert m[10, 10] == pytest.approx(0.5, abs=0.1) and m[10, 20] == pytest.approx(0.5, abs=0.1)
    assert m[5, 15] == pytest.approx(0.5, abs=0.1) and m[10, 15] == 1 and m[10, 9] == 0


@pytest.mark.parametrize("gap", [0.0, 0.4])
def test_mouth_mask_closed_lips_is_zero(gap: float) -> None:
    assert mouth_mask(_mouth_landmarks(gap), 100, 140).max() == 0


def test_mouth_mask_outside_image_and_bad_landmarks() -> None:
    lm = _mouth_landmarks(14.0) + 500
    assert mouth_mask(lm, 100, 140).max() == 0
    with pytest.raises(InputError):
        mouth_mask(np.zeros((10, 2)), 100, 140)
    bad = _mouth_landmarks(14.0)
    bad[13] = np.nan
    with pytest.raises(InputError):
        mouth_mask(bad, 100, 140)


# --- background plate ----------------------------------------------------------------------------

H = W = 96


def _background() -> np.ndarray:
    ys, xs = np.mgrid[0:H, 0:W]
    checker = np.where(((xs // 8) + (ys // 8)) % 2 == 0, 30, -30)
    bg = np.stack([60 + xs, 60 + ys, 100 + xs // 2], -1) + checker[..., None]
    return np.clip(bg, 0, 255).astype(np.uint8)  # values in [30, 190]


RECT = (slice(70, 96), slice(30, 66))  # a 'torso' that never moves


def _scene(t_frames: int = 40, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """A disc moving left to right over a textured background, a static rectangle below it, a
    2 px bright halo around the disc that the person mask misses, sensor noise, and an exposure
    jump in every 7th frame (a median ignores it, a mean would not)."""
    rng = np.random.default_rng(seed)
    bg = _background()
    frames, masks = [], []
    for t in range(t_frames):
        cx = 15 + 65 * t / (t_frames - 1)
        mask = np.zeros((H, W), np.uint8)
        cv2.circle(mask, (round(cx), 35), 14, 1, -1)
        mask[RECT] = 1
        halo = cv2.dilate(mask, np.ones((5, 5), np.uint8)) > mask
        img = bg.astype(np.float32) + rng.normal(0, 3, bg.shape) + (60 if t % 7 == 3 else 0)
        img[halo] = 250
        img[mask > 0] = (200, 30, 200)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        masks.append(mask.astype(np.float32))
    return bg, frames, masks


def test_background_plate_recovers_background_and_fills_only_the_static_hole() -> None:
    bg, frames, masks = _scene()
    plate, seen = background_plate(frames, masks, dilate_px=4)
    assert plate.dtype == np.uint8 and plate.shape == (H, W, 3)
    assert seen.dtype == np.float32 and set(np.unique(seen)) <= {0.0, 1.0}
    err = np.abs(plate.astype(int) - bg)[seen > 0]
    assert err.mean() < 1.5 and np.percentile(err, 99) < 6  # halo and noise rejected
    # the hole is the rectangle grown by the dilation (oracle: distance to the rectangle)
    outside = np.ones((H, W), np.uint8)
    outside[RECT] = 0
    dist = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    hole = seen == 0
    assert hole[dist <= 3].all() and not hole[dist > 5].any()
    # filled values lie within the range of the seen background around the hole
    ring = (dist > 5) & (dist <= 12)
    for c in range(3):
        lo, hi = bg[..., c][ring].min(), bg[..., c][ring].max()
        assert lo <= plate[..., c][hole].min() and plate[..., c][hole].max() <= hi


def test_background_plate_array_input_matches_list_input() -> None:
    _, frames, masks = _scene(t_frames=12)
    a = background_plate(frames, masks)
    b = background_plate(np.stack(frames), np.stack(masks))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_background_plate_uses_frames_outside_the_subsample() -> None:
    bg = _background()
    frames, masks = [], []
    for t in range(40):
        m = np.zeros((H, W), np.float32)
        m[:, :48] = 1  # the left half is covered ...
        if t == 3:  # ... except in frame 3, which linspace(0, 39, 5) does not pick
            m[:] = 0
        m[:, 60:] = 1 if t % 2 else 0
        frames.append(np.where(m[..., None] > 0, 0, bg).astype(np.uint8))
        masks.append(m)
    plate, seen = background_plate(frames, masks, max_frames=5, dilate_px=0)
    assert seen.all()
    assert np.abs(plate.astype(int) - bg).max() <= 1


def test_background_plate_never_seen_and_errors() -> None:
    frames = [np.zeros((8, 8, 3), np.uint8)] * 3
    plate, seen = background_plate(frames, [np.ones((8, 8), np.float32)] * 3)
    assert seen.max() == 0 and plate.shape == (8, 8, 3)
    with pytest.raises(InputError):
        background_plate([], [])
    with pytest.raises(InputError):
        background_plate(frames, [np.zeros((8, 8))] * 2)
    with pytest.raises(InputError):
        background_plate(frames, [np.zeros((8, 9))] * 3)
    with pytest.raises(InputError):
        background_plate(frames[:2] + [np.zeros((8, 8, 3), np.float32)], [np.zeros((8, 8))] * 3)


# --- head mask on a synthetic person -------------------------------------------------------------

def _synthetic_person() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A 160x160 person: hair/head ellipse, a face oval, neck, shoulders that rise beside the jaw.

    Face oval: centre pixel (80, 62), half-width 20, half-height 25 (forehead top y 37, chin y 87);
    the landmarks are +0.5 (pixel centres), the cv2 drawing calls take pixel indices.
    """
    size = 160
    lm = np.zeros((478, 2), np.float32)
    ang = 2 * np.pi * np.arange(len(FACE_OVAL)) / len(FACE_OVAL)  # clockwise from the top
    lm[list(FACE_OVAL)] = np.stack([80.5 + 20 * np.sin(ang), 62.5 - 25 * np.cos(ang)], 1)
    parts = {k: np.zeros((size, size), np.uint8) for k in ("hair", "face", "neck", "torso", "shrug", "hand", "bun")}
    cv2.ellipse(parts["hair"], (80, 52), (29, 30), 0, 0, 360, 1, -1)  # hair: above and beside the face
    cv2.ellipse(parts["face"], (80, 62), (20, 25), 0, 0, 360, 1, -1)
    parts["neck"][80:110, 68:93] = 1
    parts["torso"][105:160, 10:150] = 1
    parts["shrug"][75:110, 20:48] = 1  # a raised shoulder beside the jaw, 0.25 face heights out
    parts["hand"][5:40, 128:150] = 1  # a raised hand beside the hair, 0.55+ face heights out
    parts["bun"][0:16, 70:91] = 1  # hair piled up to 0.75 face heights above the forehead (landmark 10)
    person = np.clip(sum(p.astype(np.float32) for p in parts.values()), 0, 1)
    return person, lm, {k: v.astype(bool) for k, v in parts.items()}


def test_head_mask_synthetic_keeps_head_drops_neck_torso_shoulders() -> None:
    person, lm, parts = _synthetic_person()
    m = head_mask(person, lm)
    assert m.dtype == np.float32 and m.shape == person.shape and (m <= person + 1e-6).all()
    face_h = 50.0
    below = np.arange(160)[:, None] + 0.5 > 87.5 + 0.05 * face_h + 1  # chin + margin + feather/2
    assert m[np.broadcast_to(below, m.shape)].max() == 0
    assert m[parts["torso"]].max() == 0 and m[parts["shrug"]].max() == 0 and m[parts["hand"]].max() == 0
    rows = np.arange(160)[:, None]
    assert m[parts["face"] & (rows < 80)].min() == 1  # the face down to the mouth, fully
    assert m[parts["hair"] & (rows < 62)].min() == 1  # hair above and beside the forehead
    assert m[parts["bun"]].min() == 1
    assert m[parts["neck"] & (rows >= 95)].max() == 0


def test_head_mask_synthetic_follows_roll() -> None:
    person, lm, _ = _synthetic_person()
    m = head_mask(person, lm)
    rp, rl = _rotate(person, lm, 30)
    rm, _ = _rotate(m, lm, 30)
    got = head_mask(rp, rl)
    assert _iou(got, rm) > 0.95
    # the cut is perpendicular to the rotated 10 -> 152 axis: person pixels past it are dropped,
    # among them some above the chin's image row, which an axis-aligned cut there would keep
    down = (rl[152] - rl[10]) / np.linalg.norm(rl[152] - rl[10])
    ys, xs = np.mgrid[0:160, 0:160] + 0.5
    v = xs * down[0] + ys * down[1]
    v_cut = (rl[list(FACE_OVAL)] @ down).max() + 0.05 * 50
    past = (rp > 0.5) & (v > v_cut + 2)
    assert (past & (ys < rl[152, 1])).sum() > 20
    assert got[past].max() == 0
    # the face itself (inside the rotated oval, by cv2.pointPolygonTest) is all kept
    oval = rl[list(FACE_OVAL)].reshape(-1, 1, 2).astype(np.float32)
    face = np.array([[cv2.pointPolygonTest(oval, (x + 0.5, y + 0.5), False) > 0 for x in range(160)]
                     for y in range(160)])
    assert face.sum() > 1000 and np.allclose(got[face], rp[face])


def test_head_mask_edges_at_pixel_centres() -> None:
    """Unfeathered, the band's side edge falls between pixel centres where the +0.5 convention says."""
    _, lm, _ = _synthetic_person()
    m = head_mask(np.ones((160, 160), np.float32), lm, side_margin=25.75 / 50, feather_px=0)
    # the oval's right edge is x = 100.5, so the band ends at x = 126.25: column 125 (centre
    # 125.5) is in, column 126 (centre 126.5) is out; rows 0-9 are far above the oval's reach
    assert m[:10, 125].min() == 1 and m[:10, 126].max() == 0
    assert m[:10, 35].min() == 1 and m[:10, 34].max() == 0  # left: 60.5 - 25.75 = 34.75
    # the cut under the chin (y 87.5) lies chin_margin * F below it: 87.5 + 3.25 = 90.75 (the
    # distance to the rasterised oval is good to half a pixel, so no edge within that of a centre)
    m = head_mask(np.ones((160, 160), np.float32), lm, chin_margin=3.25 / 50, feather_px=0)
    assert m[90, 79:82].min() == 1 and m[91:, :].max() == 0


def test_head_mask_bad_input() -> None:
    person, lm, _ = _synthetic_person()
    with pytest.raises(InputError):
        head_mask(person[..., None], lm)
    with pytest.raises(InputError):
        head_mask(person, lm[:100])
    flat = lm.copy()
    flat[152] = flat[10]
    with pytest.raises(InputError):
        head_mask(person, flat)


# --- the astronaut photo through mediapipe -------------------------------------------------------

@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb [512, 512, 3], landmarks [478, 2] pixels, person [512, 512])."""
    solutions = pytest.importorskip("mediapipe.python.solutions", reason="mediapipe is not importable")
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (the astronaut photo) is not installed")
    rgb = np.ascontiguousarray(skdata.astronaut())
    h, w = rgb.shape[:2]
    with solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        res = fm.process(rgb)
    assert res.multi_face_landmarks, "mediapipe found no face on the astronaut photo"
    lm = np.array([[p.x * w, p.y * h] for p in res.multi_face_landmarks[0].landmark], np.float32)
    assert lm.shape == (478, 2)
    with PersonSegmenter() as seg:
        person = seg(rgb)
    return rgb, lm, person


def test_person_segmenter_on_astronaut(astronaut: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rgb, lm, person = astronaut
    assert person.dtype == np.float32 and person.shape == rgb.shape[:2]
    assert 0 <= person.min() and person.max() <= 1
    xi, yi = lm[:, 0].astype(int), lm[:, 1].astype(int)
    assert (person[yi, xi] > 0.5).mean() > 0.95
    # the top corners are flag and wall (the bottom ones are her suit and the helmet she holds)
    assert person[:64, :64].mean() < 0.05 and person[:64, -64:].mean() < 0.05


def test_person_segmenter_rejects_bad_input_and_closes() -> None:
    pytest.importorskip("mediapipe.python.solutions", reason="mediapipe is not importable")
    seg = PersonSegmenter()
    with pytest.raises(InputError):
        seg(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError):
        seg(np.zeros((32, 32, 3), np.float32))
    seg.close()
    seg.close()
    with pytest.raises(RuntimeError):
        seg(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(InputError):
        PersonSegmenter(model_selection=2)


def test_head_mask_on_astronaut(astronaut: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rgb, lm, person = astronaut
    m = head_mask(person, lm)
    face_h = float(np.linalg.norm(lm[152] - lm[10]))
    chin_y = lm[list(FACE_OVAL), 1].max()
    assert m[int(chin_y + 0.15 * face_h):].max() == 0  # collar, suit, shoulders
    # forehead and hair above landmark 10 (where the segmenter sees her) are head
    x10, y10 = int(lm[10, 0]), int(lm[10, 1])
    above = np.zeros_like(m, bool)
    above[int(y10 - 0.4 * face_h):y10, x10 - 10:x10 + 10] = True
    above &= person > 0.5
    assert above.sum() > 200 and (m[above] > 0.5).mean() > 0.98
    # the face itself: every landmark pixel is head
    assert (m[lm[:, 1].astype(int), lm[:, 0].astype(int)] > 0.5).mean() > 0.95
    # the head is a small part of the person here (head and upper body in frame)
    assert 0.1 < (m > 0.5).sum() / (person > 0.5).sum() < 0.35


def test_head_mask_on_rotated_astronaut(astronaut: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rgb, lm, person = astronaut
    m = head_mask(person, lm)
    rrgb, rlm = _rotate(rgb, lm, 20)
    rm, _ = _rotate(m, lm, 20)
    with PersonSegmenter() as seg:
        rperson = seg(rrgb)
    assert _iou(head_mask(rperson, rlm), rm) > 0.9  # segmenter re-run on the rotated photo
    rp, _ = _rotate(person, lm, 20)
    assert _iou(head_mask(rp, rlm), rm) > 0.97  # the cut alone, same person mask


def test_mouth_mask_on_astronaut(astronaut: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rgb, lm, _ = astronaut
    m = mouth_mask(lm, *rgb.shape[:2])
    # she smiles with her teeth showing: mediapipe gives an open inner-lip polygon (about 210 px²)
    area = _shoelace(lm[list(INNER_LIPS)].astype(np.float64))
    assert area > 100 and m.sum() == pytest.approx(area, rel=0.04)
    # the filled mouth is mostly teeth (pale: low saturation, bright), the lips around it are not
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(int)
    pale = (hsv[..., 1] < 60) & (hsv[..., 2] > 170)
    core = m > 0.99
    ring = (cv2.dilate((m > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & (m == 0)
    assert pale[core].mean() > 0.45 and pale[ring].mean() < 0.3

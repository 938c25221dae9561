"""Reading photos for ``being prepare PHOTO`` (no mediapipe needed): EXIF orientation, modes,
sizes, bad files; and the single-view face checks on given landmarks."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from being_kernel import InputError
from being_prepare.landmarks import CHIN, FOREHEAD
from being_prepare.photo import MAX_SIDE, MIN_FACE_PX, check_face, read_photo


def _halves(w: int = 80, h: int = 40) -> np.ndarray:
    """Left half red, right half blue."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2, 0] = 255
    a[:, w // 2:, 2] = 255
    return a


def test_exif_orientation_is_honoured(tmp_path) -> None:
    # EXIF orientation 6: the stored picture must be turned 90 degrees clockwise to be shown
    # upright (EXIF 2.32, tag 0x0112), so the stored left half ends up at the top
    image = Image.fromarray(_halves(160, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    image.save(path, exif=exif, quality=95)
    rgb = read_photo(path)
    assert rgb.shape == (160, 80, 3)
    assert rgb[5, 40, 0] > 200 and rgb[5, 40, 2] < 60  # top: red
    assert rgb[155, 40, 2] > 200 and rgb[155, 40, 0] < 60  # bottom: blue


def test_grey_16_bit_palette_and_alpha_become_8_bit_rgb(tmp_path) -> None:
    grey16 = np.full((70, 70), 65535, np.uint16)
    grey16[:, 35:] = 32768
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    rgb = read_photo(tmp_path / "g16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (70, 70, 3)
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[0, 69]) == (128, 128, 128)

    Image.fromarray(np.full((70, 70), 77, np.uint8), "L").save(tmp_path / "g8.png")
    assert tuple(read_photo(tmp_path / "g8.png")[3, 3]) == (77, 77, 77)

    Image.fromarray(_halves(70, 70)).convert("P").save(tmp_path / "p.png")
    assert tuple(read_photo(tmp_path / "p.png")[3, 3]) == (255, 0, 0)

    rgba = np.zeros((70, 70, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[:, 35:, 3] = 255  # left half fully transparent: the page (white) shows
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    rgb = read_photo(tmp_path / "a.png")
    assert tuple(rgb[3, 3]) == (255, 255, 255) and tuple(rgb[3, 60]) == (0, 200, 0)

    Image.fromarray(_halves(70, 70)).save(tmp_path / "w.webp", lossless=True)
    assert tuple(read_photo(tmp_path / "w.webp")[3, 3]) == (255, 0, 0)


def test_a_large_photo_is_scaled_down_with_a_note(tmp_path) -> None:
    Image.fromarray(_halves(3000, 1000)).save(tmp_path / "wide.png")
    said: list[str] = []
    rgb = read_photo(tmp_path / "wide.png", say=said.append)
    assert rgb.shape == (round(1000 * MAX_SIDE / 3000), MAX_SIDE, 3)
    assert said and "scaled" in said[0]


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (no pixel data): what a decompression bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b"this is not a picture"), "not an image"),
    (lambda p: p.write_bytes(_png_header_only(30000, 30000)), "too large"),
    (lambda p: Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(p, format="PNG"), "too small"),
    (lambda p: p.write_bytes(_png_header_only(300, 300)), "cannot read photo"),  # truncated: no pixels
])
def test_bad_files_get_one_line_errors(tmp_path, make, words) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InputError) as err:
        read_photo(path)
    assert words in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InputError, match="no such photo"):
        read_photo(tmp_path / "missing.jpg")


def _face(centre=(200.0, 200.0), height: float = 120.0) -> np.ndarray:
    """478 landmarks on an ellipse, forehead and chin ``height`` apart."""
    a = np.linspace(0, 2 * np.pi, 478, endpoint=False)
    pts = np.stack([centre[0] + 0.4 * height * np.cos(a), centre[1] + 0.5 * height * np.sin(a)], -1)
    pts[FOREHEAD] = (centre[0], centre[1] - height / 2)
    pts[CHIN] = (centre[0], centre[1] + height / 2)
    return pts


def test_face_checks(tmp_path) -> None:
    where = tmp_path / "me.jpg"
    check_face(_face(), 400, 400, where)  # whole and large: fine
    with pytest.raises(InputError, match="no face was found"):
        check_face(None, 400, 400, where)
    with pytest.raises(InputError, match=f"only {MIN_FACE_PX - 4} pixels high"):
        check_face(_face(height=MIN_FACE_PX - 4), 400, 400, where)
    with pytest.raises(InputError, match="cut by the photo's border"):
        check_face(_face(centre=(20.0, 200.0)), 400, 400, where)


def test_from_photo_interrupted_leaves_nothing(tmp_path, monkeypatch) -> None:
    """Ctrl-C while training: no avatar under OUT and nothing hidden beside it (the dataset
    and the half-trained avatar are made in a hidden directory that is removed)."""
    import being_kernel.train as train
    from being_prepare import photo_avatar

    def fake_prepare(photo, data, opts, say):  # noqa: ANN001, ANN202 - prepare_video's signature
        (data / "input").mkdir(parents=True)

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        (args[4] / "partial").mkdir(parents=True)  # the avatar being written
        raise KeyboardInterrupt

    monkeypatch.setattr(photo_avatar, "prepare_video", fake_prepare)
    monkeypatch.setattr(train, "fit_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        photo_avatar.from_photo(tmp_path / "me.jpg", tmp_path / "me", device="cpu", progress=False, say=lambda s: None)
    assert list(tmp_path.iterdir()) == []

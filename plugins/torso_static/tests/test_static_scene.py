"""The static compositor in a scene (being_kernel.datasets.Scene: a photo's background plate, torso
layer, neck position and head scale), against numpy oracles: the plate is the scene's torso over its
background, cover-fit; the head's anchor lands on the scene's neck, moved and scaled by the same
cover-fit; what the user sets explicitly wins."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from being_kernel import ConfigError
from being_kernel.api import Frame, FramewiseStream, Motion, Placement, head_poses
from being_kernel.datasets import write_scene
from being_kernel.media import write_png
from being_torso_static.compositor import StaticTorso
from being_torso_static.spec import StaticConfig

STILL = head_poses(Motion.zeros(1, 0), None)[0]
#: the scene: 48 x 64 (width, height), the neck base at (20.5, 30.25) px, the head at 400 px/m
W, H, NECK, PPM = 48, 64, (20.5, 30.25), 400.0
TORSO_RGB = (200, 40, 90)
#: a feather so long that the head's alpha below the anchor stays 1 (to 1e-11): its pixel at the anchor is kept whole
NO_FEATHER = 1e6
QUANT = 0.6 / 255  # layers are kept as uint8 premultiplied RGBA: half a step of rounding


def scene_images() -> tuple[np.ndarray, np.ndarray]:
    """(background uint8 [H, W, 3]: a gradient, torso uint8 straight RGBA [H, W, 4]: an opaque
    rectangle with a transparent window and a half-transparent band)."""
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    background = np.stack([xx * 5, yy * 4, np.full_like(xx, 77)], axis=-1).astype(np.uint8)
    torso = np.zeros((H, W, 4), np.uint8)
    torso[20:60, 6:42, :3] = TORSO_RGB
    torso[20:60, 6:42, 3] = 255
    torso[40:48, 16:30, 3] = 0      # a window: the background shows
    torso[52:56, 6:42, 3] = 128     # half transparent: straight colour over the background
    torso[0:4, 0:4, :3] = 255       # colour under alpha 0 must not show
    return background, torso


def plate_oracle(background: np.ndarray, torso: np.ndarray) -> np.ndarray:
    """float [H, W, 3]: straight-alpha torso over the background, in numpy."""
    a = torso[..., 3:].astype(np.float64) / 255
    return a * torso[..., :3] / 255 + (1 - a) * background / 255


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_scene(tmp_path / "scene", *scene_images(), NECK, PPM)


@pytest.fixture
def dark_scene(tmp_path: Path) -> Path:
    """Black background, nothing in the torso layer: the output is the head's coverage."""
    return write_scene(tmp_path / "dark", np.zeros((H, W, 3), np.uint8), np.zeros((H, W, 4), np.uint8), NECK, PPM)


def frame(image: torch.Tensor, anchor: tuple[float, float], ppm: float, index: int = 0) -> Frame:
    return Frame(image=image, index=index, pts=index / 25.0, placement=Placement(anchor, ppm), head=STILL)


def empty_head() -> Frame:
    return frame(torch.zeros(8, 8, 4), (4.0, 4.0), PPM)


def dot_head(ppm: float = PPM) -> Frame:
    """A 20 x 20 head whose only (white, opaque) pixel is the one whose centre is its anchor."""
    img = torch.zeros(20, 20, 4)
    img[10, 7] = 1.0
    return frame(img, (7.5, 10.5), ppm)


def disc_head(ppm: float) -> Frame:
    """A white disc of radius 4 px centred 10 px above the anchor."""
    yy, xx = torch.meshgrid(torch.arange(24) + 0.5, torch.arange(20) + 0.5, indexing="ij")
    inside = (((xx - 10.0) ** 2 + (yy - 8.0) ** 2) <= 16.0).float()
    return frame(inside[..., None].expand(24, 20, 4).clone(), (10.0, 18.0), ppm)


def centroid(weight: torch.Tensor) -> tuple[float, float]:
    h, w = weight.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return float((weight * xx).sum() / weight.sum()), float((weight * yy).sum() / weight.sum())


def cover(point: tuple[float, float], size: tuple[int, int]) -> tuple[tuple[float, float], float]:
    """The oracle of the cover-fit from (W, H) to ``size``: scale s = max(W'/W, H'/H) about the
    centres (a centred crop). Returns (the point moved, s)."""
    s = max(size[0] / W, size[1] / H)
    return ((point[0] - W / 2) * s + size[0] / 2, (point[1] - H / 2) * s + size[1] / 2), s


def make(**kw) -> StaticTorso:
    return StaticTorso(StaticConfig(**kw))


# -- (a) the plate ------------------------------------------------------------------------------------


def test_plate_is_the_scenes_torso_over_its_background(scene: Path) -> None:
    comp = make(scene=str(scene))
    assert comp.info().size == (W, H)  # no size given: the scene's
    out = comp.composite([empty_head()])[0].image.double().numpy()
    oracle = plate_oracle(*scene_images())
    np.testing.assert_allclose(out, oracle, atol=QUANT, rtol=0)
    # the oracle's regions are what they claim to be
    np.testing.assert_allclose(out[30, 10], np.array(TORSO_RGB) / 255, atol=QUANT)
    np.testing.assert_allclose(out[44, 20], np.array([100, 176, 77]) / 255, atol=QUANT)  # the window
    np.testing.assert_allclose(out[2, 2], np.array([10, 8, 77]) / 255, atol=QUANT)  # hidden colour stays hidden


def test_plate_is_cover_fit_to_another_size(scene: Path) -> None:
    """48 x 64 -> 48 x 48 keeps the full width and the middle 48 rows (no resampling: exact)."""
    out = make(scene=str(scene), size=(48, 48)).composite([empty_head()])[0].image.double().numpy()
    np.testing.assert_allclose(out, plate_oracle(*scene_images())[8:56], atol=QUANT, rtol=0)


def test_background_color_shows_through_transparent_parts(scene: Path) -> None:
    colour = (0.1, 0.9, 0.3)
    out = make(scene=str(scene), background=None, background_color=colour).composite([empty_head()])[0].image
    torch.testing.assert_close(out[44, 20], torch.tensor(colour), atol=1e-6, rtol=0)  # the torso's window
    torch.testing.assert_close(out[2, 2], torch.tensor(colour), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[30, 10], torch.tensor(TORSO_RGB) / 255, atol=QUANT, rtol=0)  # the scene's torso


def test_the_photos_torso_is_not_recoloured(scene: Path) -> None:
    """A head with an off-colour neck ending at the anchor: outside the head's own pixels the output
    is the scene's plate (a procedural torso's skin would take the neck's colour below the anchor)."""
    comp = make(scene=str(scene), feather_px=0)
    head = torch.zeros(24, 20, 4)
    head[:18, 6:14] = torch.tensor([0.1, 0.8, 0.2, 1.0])  # a green neck, down to the anchor row
    out = comp.composite([frame(head, (10.0, 18.0), PPM)])[0].image
    plate = comp.composite([empty_head()])[0].image
    covered = torch.zeros(H, W, dtype=torch.bool)
    x0, y0 = math.floor(NECK[0] - 10.0), math.floor(NECK[1] - 18.0)  # where the head's image lands
    covered[y0 : y0 + 25, x0 : x0 + 21] = True
    assert torch.equal(out[~covered], plate[~covered])
    assert not torch.equal(out[covered], plate[covered])  # the head is there


# -- (b) where the head goes ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(96, 96), (64, 128), (48, 64)])
def test_the_anchor_lands_on_the_scenes_neck(dark_scene: Path, size: tuple[int, int]) -> None:
    (tx, ty), s = cover(NECK, size)
    comp = make(scene=str(dark_scene), size=size, feather_px=NO_FEATHER)
    out = comp.composite([dot_head(ppm=PPM * s)])[0].image  # at the output scale: not resampled
    assert out.shape == (size[1], size[0], 3)
    cx, cy = centroid(out[..., 0])
    assert abs(cx - tx) < 1e-4 and abs(cy - ty) < 1e-4, ((cx, cy), (tx, ty))
    assert abs(float(out[..., 0].sum()) - 1.0) < 1e-5  # all of it, nothing else


@pytest.mark.parametrize("size", [(96, 96), (64, 128)])
def test_the_head_is_scaled_by_the_scenes_scale(dark_scene: Path, size: tuple[int, int]) -> None:
    (tx, ty), s = cover(NECK, size)
    head = disc_head(ppm=PPM)  # rendered at the photo's own scale: magnified by s, like the photo
    a = make(scene=str(dark_scene), size=size, feather_px=NO_FEATHER).composite([head])[0].image[..., 0]
    radius = math.sqrt(float(a.sum()) / math.pi)
    cx, cy = centroid(a)
    assert abs(radius - 4.0 * s) < 0.15 * s, (radius, s)
    assert abs(cx - tx) < 0.05 and abs(cy - (ty - 10.0 * s)) < 0.05, ((cx, cy), (tx, ty - 10 * s))


# -- (c) explicit fields win ----------------------------------------------------------------------------


def test_explicit_fields_win_over_the_scene(scene: Path, dark_scene: Path, tmp_path: Path) -> None:
    # neck_xy: fractions of the output size, as without a scene
    out = make(scene=str(dark_scene), neck_xy=(0.25, 0.5), feather_px=NO_FEATHER).composite([dot_head()])[0].image
    cx, cy = centroid(out[..., 0])
    assert abs(cx - 0.25 * W) < 1e-4 and abs(cy - 0.5 * H) < 1e-4
    # head_px_per_metre: the head is resized to it, not to the scene's scale
    a = make(scene=str(dark_scene), head_px_per_metre=PPM * 1.5).composite([disc_head(PPM)])[0].image[..., 0]
    assert abs(math.sqrt(float(a.sum()) / math.pi) - 6.0) < 0.2
    # size: the output size; the scene is cover-fit to it
    comp = make(scene=str(scene), size=(32, 32))
    assert comp.info().size == (32, 32)
    assert comp.composite([empty_head()])[0].image.shape == (32, 32, 3)
    # background: another plate under the scene's torso
    plain = np.zeros((8, 8, 4), np.uint8)
    plain[...] = (0, 0, 255, 255)
    out = make(scene=str(scene), background=str(write_png(tmp_path / "blue.png", plain))).composite([empty_head()])[0].image
    torch.testing.assert_close(out[44, 20], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)  # the torso's window
    torch.testing.assert_close(out[30, 10], torch.tensor(TORSO_RGB) / 255, atol=QUANT, rtol=0)  # still the scene's torso
    # torso: another layer over the scene's background
    clear = write_png(tmp_path / "clear.png", np.zeros((8, 8, 4), np.uint8))
    out = make(scene=str(scene), torso=str(clear)).composite([empty_head()])[0].image.double().numpy()
    np.testing.assert_allclose(out, scene_images()[0] / 255, atol=1e-6)


def test_stream_equals_batch_in_a_scene(scene: Path) -> None:
    comp = make(scene=str(scene), size=(64, 80))
    heads = [frame(disc_head(PPM + 20 * i).image * 0.8, (10.0 + 0.3 * i, 18.0 - 0.2 * i), PPM + 20 * i, index=i)
             for i in range(7)]
    batch = comp.composite(heads)
    stream = comp.open_stream()
    assert isinstance(stream, FramewiseStream)
    got = stream.push(heads[:3]) + stream.push(heads[3:]) + stream.finish()
    assert len(got) == 7 and all(torch.equal(g.image, b.image) for g, b in zip(got, batch))


# -- (d) a bad scene ------------------------------------------------------------------------------------


def test_a_bad_scene_is_a_config_error_naming_scene(tmp_path: Path, scene: Path) -> None:
    with pytest.raises(ConfigError, match=r"^scene: .*nowhere.*no such scene directory") as err:
        make(scene=str(tmp_path / "nowhere"))
    assert err.value.hint
    (scene / "torso.png").unlink()
    with pytest.raises(ConfigError, match=r"^scene: .*torso image is missing"):
        make(scene=str(scene))
    assert StaticConfig().scene is None  # no scene unless one is given


def test_coverage_reports_the_heads_alpha_as_drawn_and_the_scenes_torso_alpha(scene: Path) -> None:
    """Channel 0 against what a white and a black copy of the same head change in the output (the
    plate cancels); channel 1 against the scene's torso alpha, read from the file."""
    comp = make(scene=str(scene), feather_px=NO_FEATHER)
    white = disc_head(PPM)
    black = frame(white.image * torch.tensor([0.0, 0, 0, 1]), white.placement.anchor_xy, PPM)
    frames, coverage = comp.composite_with_coverage([white, black])
    assert coverage.shape == (2, H, W, 2)
    for got, want in zip(frames, comp.composite([white, black])):
        assert torch.equal(got.image, want.image)
    torch.testing.assert_close(coverage[0, ..., 0], (frames[0].image - frames[1].image).mean(-1), atol=2e-6, rtol=0)
    assert float(coverage[0, ..., 0].sum()) > 20  # the disc was drawn
    torso_alpha = torch.from_numpy(scene_images()[1][..., 3].astype(np.float32) / 255)
    torch.testing.assert_close(coverage[1, ..., 1], torso_alpha, atol=1e-6, rtol=0)

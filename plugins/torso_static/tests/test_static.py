"""Tests of the static torso compositor against analytic oracles (fast, CPU)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pydantic
import pytest
import torch

from being_kernel import ConfigError
from being_kernel.api import Cameras, Frame, FramewiseStream, Motion, Placement, TorsoCompositor, head_poses
from being_torso_static import layers
from being_torso_static.compositor import StaticTorso
from being_torso_static.spec import SPEC, StaticConfig

BG = (0.2, 0.4, 0.6)


# -- media helpers -------------------------------------------------------------------------------


def write_png(path: Path, rgba: np.ndarray) -> Path:
    """Write uint8 RGBA [h, w, 4] as a PNG with PyAV's png encoder."""
    ctx = av.CodecContext.create("png", "w")
    ctx.height, ctx.width = rgba.shape[:2]
    ctx.pix_fmt = "rgba"
    packets = list(ctx.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgba), format="rgba")))
    packets += list(ctx.encode(None))
    path.write_bytes(b"".join(bytes(p) for p in packets))
    return path


def write_mp4(path: Path, colours: list[tuple[float, float, float]], size: int = 32) -> Path:
    """A tiny H.264 video whose frame k is a solid ``colours[k]``."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for c in colours:
            rgb = np.empty((size, size, 3), np.uint8)
            rgb[:] = np.round(np.array(c) * 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture
def clear_png(tmp_path: Path) -> str:
    """A fully transparent torso layer."""
    return str(write_png(tmp_path / "clear.png", np.zeros((16, 16, 4), np.uint8)))


@pytest.fixture
def rgb_mp4(tmp_path: Path) -> str:
    return str(write_mp4(tmp_path / "rgb.mp4", [(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)]))


def disc_head(
    size: tuple[int, int], centre: tuple[float, float], radius: float, rgb=(1.0, 1.0, 1.0), alpha: float = 1.0
) -> torch.Tensor:
    """Premultiplied RGBA [h, w, 4]: a hard-edged disc (pixel centres inside the circle)."""
    w, h = size
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    inside = (((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) <= radius**2).float() * alpha
    return torch.stack([inside * rgb[0], inside * rgb[1], inside * rgb[2], inside], dim=-1)


#: The head pose of a still, neutral motion frame, from a renderer without a 3-D camera.
STILL = head_poses(Motion.zeros(1, 0), None)[0]


def frame(image: torch.Tensor, anchor=(20.0, 30.0), ppm: float = 100.0, index: int = 0) -> Frame:
    """A head frame as a renderer gives it: premultiplied RGBA, a Placement and a HeadPose."""
    return Frame(image=image, index=index, pts=index / 25.0, placement=Placement(anchor, ppm), head=STILL)


def centroid(weight: torch.Tensor) -> tuple[float, float]:
    """Weighted centroid in continuous pixel coordinates (pixel centres at j + 0.5, i + 0.5)."""
    h, w = weight.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    total = weight.sum()
    return float((weight * xx).sum() / total), float((weight * yy).sum() / total)


def make(**kw) -> StaticTorso:
    return StaticTorso(StaticConfig(**kw))


# -- geometry and alpha --------------------------------------------------------------------------


@pytest.mark.parametrize("anchor", [(20.0, 30.0), (20.3, 30.6), (19.75, 31.2)])
def test_disc_lands_on_neck_xy(clear_png: str, anchor: tuple[float, float]) -> None:
    comp = make(size=(96, 80), neck_xy=(0.5, 0.5), torso=clear_png, background_color=BG)
    disc_rgb = (0.9, 0.1, 0.3)
    head = disc_head((40, 40), centre=(20.0, 14.0), radius=8.0, rgb=disc_rgb)
    out = comp.composite([frame(head, anchor=anchor)])[0].image
    assert out.shape == (80, 96, 3) and out.dtype == torch.float32
    # Where the anchor goes: neck_xy * size = (48, 40); the disc keeps its offset from the anchor.
    ex, ey = 48.0 + (20.0 - anchor[0]), 40.0 + (14.0 - anchor[1])
    # The head's coverage, from the red channel: out = a * disc + (1 - a) * bg.
    a = (out[..., 0] - BG[0]) / (disc_rgb[0] - BG[0])
    cx, cy = centroid(a)
    assert abs(cx - ex) < 0.05 and abs(cy - ey) < 0.05, (cx, cy, ex, ey)
    assert abs(float(a.sum()) - float(head[..., 3].sum())) < 1e-3  # all of the disc, none lost
    inside = out[int(ey), int(ex)]
    torch.testing.assert_close(inside, torch.tensor(disc_rgb), atol=1e-5, rtol=0)
    for y, x in [(2, 2), (77, 93), (2, 93), (77, 2), (70, 48)]:
        torch.testing.assert_close(out[y, x], torch.tensor(BG), atol=1e-6, rtol=0)


def test_half_alpha_over_background(clear_png: str) -> None:
    comp = make(size=(64, 64), neck_xy=(0.5, 0.75), torso=clear_png, background_color=BG)
    colour, alpha = torch.tensor([0.8, 0.2, 0.4]), 0.5
    head = torch.cat([(colour * alpha).expand(40, 40, 3), torch.full((40, 40, 1), alpha)], dim=-1)
    out = comp.composite([frame(head, anchor=(20.0, 40.0))])[0].image
    # The head covers x in [12, 52), y in [8, 48); check well inside and above the anchor (y = 48).
    expected = colour * alpha + (1 - alpha) * torch.tensor(BG)
    torch.testing.assert_close(out[20, 32], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[10, 14], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[4, 32], torch.tensor(BG), atol=1e-6, rtol=0)


@pytest.mark.parametrize("feather", [10.0, 4.5])
def test_feather_below_anchor(clear_png: str, feather: float) -> None:
    comp = make(size=(64, 64), neck_xy=(0.5, 0.5), torso=clear_png, background_color=(0, 0, 0), feather_px=feather)
    head = torch.ones(60, 40, 4)  # opaque white; with a black plate, out = the head's alpha
    out = comp.composite([frame(head, anchor=(20.0, 30.0))])[0].image
    col = out[:, 32, 0]
    ty = 32.0
    rows = np.arange(64) + 0.5
    above = rows < ty
    assert torch.all(col[torch.from_numpy(above)][2:] == 1.0)  # untouched above the anchor (rows 2..31)
    below = col[32:].numpy()
    assert np.all(np.diff(below) <= 0) and below[0] < 1.0
    # Oracle: 1 - smoothstep over [ty, ty + feather], 0 from there on.
    t = np.clip((rows - ty) / feather, 0, 1)
    oracle = np.where(rows < ty, 1.0, 1 - t * t * (3 - 2 * t))
    np.testing.assert_allclose(col[2:62].numpy(), oracle[2:62], atol=1e-6)
    assert np.all(below[rows[32:] - ty >= feather] == 0.0)


def test_head_px_per_metre_scales(clear_png: str) -> None:
    head = disc_head((40, 40), centre=(20.0, 14.0), radius=8.0)
    radii, centres = {}, {}
    for ppm in (None, 200.0):
        comp = make(size=(96, 96), neck_xy=(0.5, 0.75), torso=clear_png, background_color=(0, 0, 0), head_px_per_metre=ppm)
        a = comp.composite([frame(head, anchor=(20.0, 36.0), ppm=100.0)])[0].image[..., 0]
        radii[ppm] = math.sqrt(float(a.sum()) / math.pi)
        centres[ppm] = centroid(a)
    assert abs(radii[None] - 8.0) < 0.3
    assert abs(radii[200.0] - 16.0) < 0.5
    # Scaled about the anchor (48, 72): the disc centre 22 px above it moves to 44 px above.
    assert abs(centres[200.0][0] - 48.0) < 0.1 and abs(centres[200.0][1] - (72.0 - 44.0)) < 0.1


def test_head_partly_outside_is_cropped(clear_png: str) -> None:
    comp = make(size=(32, 32), neck_xy=(0.1, 0.5), torso=clear_png, background_color=(0, 0, 0))
    out = comp.composite([frame(torch.ones(40, 40, 4), anchor=(20.0, 39.0))])[0].image
    assert torch.all(out[:16, :23] == 1.0) and torch.all(out[:16, 24:] == 0.0)


# -- layers ----------------------------------------------------------------------------------------


def test_background_image_cover_fit(tmp_path: Path) -> None:
    stripes = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    img = np.zeros((16, 64, 4), np.uint8)
    for k, c in enumerate(stripes):
        img[:, 16 * k : 16 * (k + 1), :3] = c
    img[..., 3] = 255
    bg = write_png(tmp_path / "bg.png", img)
    clear = write_png(tmp_path / "clear.png", np.zeros((8, 8, 4), np.uint8))
    comp = make(size=(32, 32), background=str(bg), torso=str(clear))
    out = comp.composite([frame(torch.zeros(8, 8, 4))])[0].image
    # Cover-fit scales 64x16 by 2 and keeps the centre 32 columns: stripes 1 and 2, not all four.
    torch.testing.assert_close(out[16, 4], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[16, 27], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def test_background_video_loops(rgb_mp4: str, clear_png: str) -> None:
    comp = make(size=(32, 32), background=rgb_mp4, torso=clear_png)
    heads = [frame(torch.zeros(8, 8, 4), index=i) for i in range(7)]
    colours = torch.tensor([(0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)])
    for i, f in enumerate(comp.composite(heads)):
        mean = f.image[8:24, 8:24].reshape(-1, 3).mean(0)
        assert torch.all((mean - colours[i % 3]).abs() < 0.05), (i, mean)
        assert f.index == i and f.pts == i / 25.0


def test_torso_png_alpha(tmp_path: Path) -> None:
    torso = np.zeros((32, 32, 4), np.uint8)
    torso[:, :16] = (0, 255, 0, 255)  # left half opaque green
    torso[:, 16:] = (255, 0, 0, 0)  # right half transparent (its colour must not leak)
    comp = make(size=(32, 32), torso=str(write_png(tmp_path / "t.png", torso)), background_color=BG)
    out = comp.composite([frame(torch.zeros(8, 8, 4))])[0].image
    torch.testing.assert_close(out[5, 4], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[5, 28], torch.tensor(BG), atol=1e-6, rtol=0)


def test_procedural_torso() -> None:
    shirt, bg = (0.23, 0.32, 0.45), (0.86, 0.88, 0.9)
    s, nx, ny = 1.6 * 128, 64.0, 0.74 * 128  # neck at (64, 94.72); the heads' scale 204.8 px per metre
    comp = make(size=(128, 128))
    out = comp.composite([frame(torch.zeros(8, 8, 4), ppm=s)])[0].image
    px = lambda dx, dy: out[int(ny + dy * s), int(nx + dx * s)]  # noqa: E731 - offsets in metres
    torch.testing.assert_close(px(0.0, 0.02), torch.tensor(layers.SKIN_RGB), atol=1e-6, rtol=0)  # neck skin
    for side in (-1, 1):
        torch.testing.assert_close(px(side * 0.15, 0.12), torch.tensor(shirt), atol=1e-6, rtol=0)  # shoulders
    for y, x in [(1, 1), (1, 126), (40, 10)]:
        torch.testing.assert_close(out[y, x], torch.tensor(bg), atol=1e-6, rtol=0)  # background above
    # Anti-aliased edges: the arm's outline passes through pixels with partial coverage.
    row = out[int(ny + 0.12 * s), :, 0]
    partial = (row - bg[0]).abs().gt(0.02) & (row - shirt[0]).abs().gt(0.02)
    assert partial.any()


def neck_width_px(out: torch.Tensor, row: int) -> float:
    """Width in pixels of the skin in one row over the default background (coverage-weighted)."""
    bg, skin = torch.tensor((0.86, 0.88, 0.9)), torch.tensor(layers.SKIN_RGB)
    return float(((out[row] - bg) / (skin - bg))[:, 0].sum())


@pytest.mark.parametrize("dy", [0.02, -0.005])  # 2 cm below, 5 mm above the neck base
def test_procedural_torso_uses_head_scale(dy: float) -> None:
    half = layers.NECK_HALF_WIDTH
    tol = 1.0 / layers.SUPERSAMPLE  # each edge lands on the nearest of SUPERSAMPLE samples per pixel
    for ppm in (100.0, 300.0) if dy > 0 else (200.0, 300.0):  # above the base: a row inside its 12 mm
        out = make(size=(64, 64), head_px_per_metre=ppm).composite([frame(torch.zeros(8, 8, 4))])[0].image
        row = int(0.74 * 64 + dy * ppm)
        centre_dy = (row + 0.5 - 0.74 * 64) / ppm
        if dy < 0:
            expect = 2 * (half + layers.NECK_TAPER * centre_dy) * ppm
            assert abs(neck_width_px(out, row) - expect) <= tol
        else:  # below the base the neck flares into the shoulders: wider than at the base
            assert neck_width_px(out, row) > 2 * half * ppm


def test_procedural_torso_follows_the_frames_scale() -> None:
    """With head_px_per_metre None the torso is drawn at each frame's placement.px_per_metre."""
    comp = make(size=(96, 96), neck_xy=(0.5, 0.5))
    heads = [frame(torch.zeros(8, 8, 4), ppm=p, index=i) for i, p in enumerate((200.0, 400.0, 200.0))]
    out = comp.composite(heads)
    row = int(48 - 0.005 * 400)  # 5 mm above the base at the larger scale, 2.5 mm at 200 px/m
    for f, ppm in zip(out, (200.0, 400.0, 200.0)):
        centre_dy = (row + 0.5 - 48) / ppm
        expect = 2 * (layers.NECK_HALF_WIDTH + layers.NECK_TAPER * centre_dy) * ppm
        assert abs(neck_width_px(f.image, row) - expect) <= 1.0 / layers.SUPERSAMPLE, (ppm, expect)
    assert torch.equal(out[0].image, out[2].image)
    assert sorted(k for k in comp._torsos) == [200.0, 400.0]  # drawn once per scale
    # the same torso as a compositor told the scale up front
    fixed = make(size=(96, 96), neck_xy=(0.5, 0.5), head_px_per_metre=400.0).composite([heads[1]])[0]
    assert torch.equal(fixed.image, out[1].image)


def test_neck_matches_demo_head() -> None:
    """The drawn neck's width and colour are the kernel's demo head's, so the join does not show."""
    from being_kernel.head import build_demo_head
    from being_kernel.render import sample_texture

    d = build_demo_head()
    v = d.v_template
    ring = v[d.regions["neck_boundary"]]
    mesh_half = float(ring[:, 0].max() - ring[:, 0].min()) / 2
    # the rendered silhouette is the mesh's plus the Gaussians' extent beyond it (a millimetre or two)
    assert mesh_half < layers.NECK_HALF_WIDTH < mesh_half + 0.002
    low = d.regions["neck"][v[d.regions["neck"], 1] < ring[:, 1].max() + 0.03]
    uv_of_vertex = np.zeros((len(v), 2), np.float32)
    uv_of_vertex[d.faces.reshape(-1)] = d.uv_coords[d.uv_faces.reshape(-1)]
    uv = torch.from_numpy(uv_of_vertex[low])
    tex = sample_texture(torch.from_numpy(d.texture).float().permute(2, 0, 1), uv[:, 0], uv[:, 1]).mean(1)
    torch.testing.assert_close(tex, torch.tensor(layers.SKIN_RGB), atol=0.01, rtol=0)


def striped_neck(size: int, anchor: tuple[float, float], half: int, rgb=(0.3, 0.6, 0.3)) -> torch.Tensor:
    """Premultiplied RGBA [size, size, 4]: an opaque neck column of width 2 x ``half`` ending at the
    anchor's row, coloured ``rgb`` with a vertical stripe pattern (+-0.1) across its columns."""
    img = torch.zeros(size, size, 4)
    ax, ay = anchor
    cols = torch.arange(int(ax) - half, int(ax) + half)
    stripes = 0.1 * torch.sin(cols.float() * 0.9)[:, None]
    img[: int(ay), cols, :3] = (torch.tensor(rgb)[None] + stripes)[None]
    img[: int(ay), cols, 3] = 1.0
    return img


def test_drawn_neck_continues_the_heads_neck() -> None:
    """Oracle: a head whose neck is another colour than SKIN_RGB, with per-column stripes. Right
    below the anchor the drawn neck takes each column's colour (no step); further down the stripes
    fade out and the drawn neck is the head neck's mean colour; the shirt is left alone."""
    ppm, size = 400.0, 128
    comp = make(size=(size, size), neck_xy=(0.5, 0.5), feather_px=0)
    head = striped_neck(64, (32.0, 48.0), half=int(0.045 * ppm))
    out = comp.composite([frame(head, anchor=(32.0, 48.0), ppm=ppm)])[0].image
    cols = slice(64 - 12, 64 + 12)
    above, below = out[63, cols], out[64, cols]  # the anchor is at y = 64.0, between these rows
    torch.testing.assert_close(below, above, atol=0.02, rtol=0)  # each column goes on across the seam
    far = out[64 + int(0.035 * ppm), cols]  # beyond NECK_BLEND_M below: the stripes have faded
    assert float(far.std(0).max()) < 0.005
    torch.testing.assert_close(far.mean(0), torch.tensor((0.3, 0.6, 0.3)), atol=0.01, rtol=0)
    shirt = out[64 + int(0.12 * ppm), 64 + int(0.15 * ppm)]
    torch.testing.assert_close(shirt, torch.tensor((0.23, 0.32, 0.45)), atol=1e-6, rtol=0)


def test_drawn_neck_unchanged_without_a_head_neck() -> None:
    """A head with nothing above the anchor (e.g. cropped) leaves the drawn neck at SKIN_RGB."""
    out = make(size=(64, 64), head_px_per_metre=300.0).composite([frame(torch.zeros(8, 8, 4))])[0].image
    torch.testing.assert_close(out[int(0.74 * 64 + 0.02 * 300), 32], torch.tensor(layers.SKIN_RGB), atol=1e-6, rtol=0)


# -- contract ----------------------------------------------------------------------------------------


def test_info_and_output_frames(clear_png: str) -> None:
    comp = make(size=(48, 32), torso=clear_png)
    assert isinstance(comp, TorsoCompositor)
    info = comp.info()
    assert info.size == (48, 32) and info.needs_alpha and info.latency_frames == 0
    out = comp.composite([frame(torch.zeros(8, 8, 4), index=5)])
    assert len(out) == 1 and out[0].index == 5 and out[0].pts == 5 / 25.0
    assert out[0].depth is None and out[0].placement is None and out[0].image.shape == (32, 48, 3)
    assert comp.composite([]) == []
    comp.close()


def test_bad_head_frames(clear_png: str) -> None:
    comp = make(size=(32, 32), torso=clear_png)
    with pytest.raises(ValueError, match="RGBA"):
        comp.composite([frame(torch.zeros(8, 8, 3))])
    with pytest.raises(ValueError, match="Placement"):
        comp.composite([Frame(image=torch.zeros(8, 8, 4), index=0, pts=0.0, head=STILL)])


def test_head_pose_does_not_move_the_torso() -> None:
    """Static reads the placement, not the head pose: any pose, with a camera or without, or no
    pose at all (a renderer that does not attach one) gives the same picture."""
    comp = make(size=(64, 64))  # the procedural torso, which a warp compositor would move
    still = frame(disc_head((40, 40), (20.0, 14.0), 8.0, rgb=(0.9, 0.7, 0.6)))
    m = Motion.zeros(1, 0)
    m.global_rot[0] = torch.tensor([0.3, -0.4, 0.2])
    m.neck[0], m.jaw[0, 0], m.translation[0] = torch.tensor([0.1, 0.2, -0.1]), 0.3, torch.tensor([0.02, -0.01, 0.05])
    camera = Cameras.look_at(torch.tensor([0.0, 0.0, 0.6]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]), 25.0, 40, 40)
    turned = replace(still, head=head_poses(m, camera)[0])
    out = comp.composite([still, turned, replace(still, head=None)])
    assert torch.equal(out[0].image, out[1].image) and torch.equal(out[0].image, out[2].image)
    assert all(f.head is None for f in out)  # RGB frames: no head to describe


def test_stream_equals_batch(rgb_mp4: str) -> None:
    comp = make(size=(64, 48), background=rgb_mp4, neck_xy=(0.45, 0.7), head_px_per_metre=150.0)
    heads = [
        frame(disc_head((40, 40), (20.0 + i, 14.0), 6.0 + 0.3 * i, rgb=(0.9, 0.7, 0.6), alpha=0.9),
              anchor=(20.0 + 0.37 * i, 30.0 - 0.21 * i), ppm=100.0 + 7 * i, index=i)
        for i in range(11)
    ]
    batch = comp.composite(heads)
    stream = comp.open_stream()
    assert isinstance(stream, FramewiseStream)
    got: list[Frame] = []
    start = 0
    for n in (3, 0, 1, 6, 1):
        got += stream.push(heads[start : start + n])
        start += n
    got += stream.finish()
    assert len(got) == len(batch) == 11
    for g, b in zip(got, batch):
        assert g.index == b.index and g.pts == b.pts
        assert torch.equal(g.image, b.image)


# -- config ------------------------------------------------------------------------------------------


def test_spec() -> None:
    assert SPEC.contract == "torso" and SPEC.config is StaticConfig
    assert SPEC.load_class() is StaticTorso
    cfg = StaticConfig()
    assert cfg.size == (512, 512) and cfg.background is None and cfg.torso is None
    assert cfg.neck_xy == (0.5, 0.74) and cfg.head_px_per_metre is None and cfg.feather_px == 10.0
    assert cfg.device == "auto"
    assert all(f.description for f in StaticConfig.model_fields.values())


def test_spec_module_is_light() -> None:
    code = "import sys, being_torso_static.spec; bad = {'torch', 'being_kernel.types', 'av'} & set(sys.modules); assert not bad, bad"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_bad_config(tmp_path: Path, rgb_mp4: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(pydantic.ValidationError):
        StaticConfig(sizes=(64, 64))
    with pytest.raises(pydantic.ValidationError, match="even"):
        StaticConfig(size=(101, 100))
    with pytest.raises(pydantic.ValidationError, match="even"):
        StaticConfig(size=(8, 8))
    with pytest.raises(pydantic.ValidationError):
        StaticConfig(background_color=(1.5, 0, 0))
    with pytest.raises(pydantic.ValidationError):
        StaticConfig(device="tpu")
    with pytest.raises(ConfigError, match="background") as err:
        make(size=(32, 32), background=str(tmp_path / "missing.png"))
    assert "missing.png" in str(err.value)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image" * 10)
    with pytest.raises(ConfigError, match="torso"):
        make(size=(32, 32), torso=str(junk))
    monkeypatch.setattr(layers, "MAX_FRAMES", 2)
    with pytest.raises(ConfigError, match="background") as err:
        make(size=(32, 32), background=rgb_mp4)
    assert "trim" in err.value.one_line()

"""Tests of the splatting renderer and the avatar directory format (CPU, small images)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from being_avatar_splatting.avatar import Avatar, load_avatar, save_avatar
from being_avatar_splatting.demo import demo_avatar, export_demo_avatar
from being_kernel.render import PORTRAIT_ANCHOR_Y as DEMO_ANCHOR_Y, PORTRAIT_PX_PER_METRE_PER_PX as DEMO_PX_PER_METRE_PER_PX
from being_avatar_splatting.renderer import SplattingRenderer
from being_avatar_splatting.spec import SPEC, SplattingConfig
from being_kernel import InputError
from being_kernel.api import DEMO_HEAD, Motion
from being_kernel.head import FlameModel, build_demo_head

SIZE = (80, 96)


def small(**kw) -> SplattingRenderer:
    return SplattingRenderer(SplattingConfig(size=SIZE, device="cpu", **kw))


@pytest.fixture(scope="module")
def renderer() -> SplattingRenderer:
    return small()


@pytest.fixture(scope="module")
def small_avatar() -> Avatar:
    """Every tenth Gaussian of the demo avatar: a valid avatar that round-trips fast."""
    avatar = demo_avatar()
    avatar.gaussians = {k: v[::10].clone() for k, v in avatar.gaussians.items()}
    return avatar


def test_info(renderer: SplattingRenderer) -> None:
    info = renderer.info()
    assert info.motion_spaces == (DEMO_HEAD,) and info.n_expression == build_demo_head().n_expression
    assert info.accepts_pose_only and info.has_depth and info.size == SIZE and info.fps is None
    assert SPEC.load_class() is SplattingRenderer


def test_frames_premultiplied_with_depth(renderer: SplattingRenderer) -> None:
    f = renderer.render(Motion.zeros(1, 25, space=DEMO_HEAD), start_index=7)[0]
    assert f.index == 7 and f.image.shape == (SIZE[1], SIZE[0], 4)
    a = f.image[..., 3]
    assert float(a.max()) > 0.99 and bool((f.image[..., :3] <= a[..., None] + 1e-5).all())
    empty, full = a < 1e-6, a > 0.5
    assert bool(torch.isinf(f.depth[empty]).all()) and bool(torch.isfinite(f.depth[full]).all())
    # the head is about 0.62 m away
    assert 0.5 < float(f.depth[full].median()) < 0.75


def test_placement_is_projected_root_joint(renderer: SplattingRenderer) -> None:
    m = Motion.zeros(3, 25, space=DEMO_HEAD)
    m.translation[1] = torch.tensor([0.02, -0.01, 0.05])
    m.global_rot[2, 1] = 0.3
    frames = renderer.render(m)
    joints = FlameModel(build_demo_head())(m).joints[:, 0].double()
    R, t, K = (x.double() for x in (renderer.R, renderer.t, renderer.K))
    for f, j in zip(frames, joints):
        cam = R @ j + t
        u, v = float(K[0, 0] * cam[0] / cam[2] + K[0, 2]), float(K[1, 1] * cam[1] / cam[2] + K[1, 2])
        assert f.placement.anchor_xy == pytest.approx((u, v), abs=1e-3)
        assert f.placement.px_per_metre == pytest.approx(float(K[0, 0] / cam[2]), rel=1e-5)
    # demo framing: neutral neck base at the bottom centre, at the stated scale
    w, h = SIZE
    assert frames[0].placement.anchor_xy == pytest.approx((w / 2, DEMO_ANCHOR_Y * h), abs=1e-3)
    assert frames[0].placement.px_per_metre == pytest.approx(DEMO_PX_PER_METRE_PER_PX * h, rel=1e-5)
    assert frames[2].placement.anchor_xy == pytest.approx(frames[0].placement.anchor_xy, abs=1e-3)  # root rotation


def test_frames_carry_their_pose_and_camera(renderer: SplattingRenderer) -> None:
    """render: the avatar's camera, through which the placement is the projected neck base;
    render_views: camera i for frame i."""
    m = Motion.zeros(2, 25, space=DEMO_HEAD)
    m.neck[1, 0], m.translation[1] = 0.2, torch.tensor([0.01, 0.02, 0.0])
    frames = renderer.render(m)
    joints = FlameModel(build_demo_head())(m).joints[:, :1]
    for i, f in enumerate(frames):
        assert torch.equal(f.head.neck, m.neck[i]) and torch.equal(f.head.translation, m.translation[i])
        cam = f.head.camera
        assert (cam.width, cam.height) == SIZE
        for got, want in ((cam.R[0], renderer.R), (cam.t[0], renderer.t), (cam.K[0], renderer.K)):
            assert torch.equal(got, want)
        uv, _ = cam.project(joints[i : i + 1])
        assert f.placement.anchor_xy == pytest.approx(tuple(uv[0, 0].tolist()), abs=1e-3)
    views = renderer.render_views(m, renderer.cameras(2).resized(40, 48))
    for i, f in enumerate(views):
        assert f.size == (40, 48) and (f.head.camera.width, f.head.camera.height) == (40, 48)
        assert torch.equal(f.head.camera.K[0], renderer.K * torch.tensor([0.5, 0.5, 1.0])[:, None])
        assert torch.equal(f.head.jaw, m.jaw[i])


def test_pose_only_motion_renders(renderer: SplattingRenderer) -> None:
    m = Motion.zeros(2, 0, space="flame2020")
    m.global_rot[1, 1] = 0.4
    frames = renderer.render(m)
    assert len(frames) == 2 and float(frames[0].image[..., 3].max()) > 0.99
    assert not torch.equal(frames[0].image, frames[1].image)


def test_jaw_open_changes_the_mouth(renderer: SplattingRenderer) -> None:
    m = Motion.zeros(2, 25, space=DEMO_HEAD)
    m.jaw[1, 0] = 0.3
    closed, opened = (f.image for f in renderer.render(m))
    diff = (closed - opened).abs().sum(-1)
    ys, xs = torch.nonzero(diff > 0.1, as_tuple=True)
    assert len(ys) > 20
    anchor = renderer.render(m.slice(0, 1))[0].placement.anchor_xy
    # the change is in the lower face: below the eyes, above the neck base, near the centre line
    w, h = SIZE
    assert float(ys.float().mean()) > 0.45 * h and float(ys.float().mean()) < anchor[1]
    assert abs(float(xs.float().mean()) - w / 2) < 0.1 * w
    assert float(diff[: int(0.35 * h)].max()) < 0.05  # forehead and hair do not move


def test_batch_size_does_not_change_frames(small_avatar: Avatar, tmp_path: Path) -> None:
    save_avatar(tmp_path / "a", small_avatar)
    m = Motion.zeros(5, 25, space=DEMO_HEAD)
    m.jaw[:, 0] = torch.linspace(0, 0.3, 5)
    one = SplattingRenderer(SplattingConfig(path=str(tmp_path / "a"), size=SIZE, device="cpu", batch_frames=1)).render(m)
    many = SplattingRenderer(SplattingConfig(path=str(tmp_path / "a"), size=SIZE, device="cpu", batch_frames=4)).render(m)
    for a, b in zip(one, many):
        torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=0)


# -- the avatar directory ----------------------------------------------------------------------


def test_save_load_round_trip(small_avatar: Avatar, tmp_path: Path) -> None:
    small_avatar.gaussians["sh"] = torch.zeros(small_avatar.num_gaussians, 4, 3)
    small_avatar.shape = []
    d = save_avatar(tmp_path / "av", small_avatar)
    assert sorted(p.name for p in d.iterdir()) == ["avatar.json", "gaussians.safetensors"]
    back = load_avatar(d)
    assert back.head_model == "demo" and back.motion_space == DEMO_HEAD and back.num_gaussians == len(small_avatar.gaussians["face_ids"])
    for k, v in small_avatar.gaussians.items():
        assert torch.equal(back.gaussians[k], v), k
    assert back.camera["K"] == small_avatar.camera["K"] and back.camera["t"] == small_avatar.camera["t"]
    del small_avatar.gaussians["sh"]


def test_sh_colours(small_avatar: Avatar, tmp_path: Path) -> None:
    """Degree-0 SH equal to (color - 0.5) / SH_C0 renders like the plain colours."""
    from being_kernel.render import SH_C0

    plain = save_avatar(tmp_path / "plain", small_avatar)
    with_sh = Avatar(**{**small_avatar.__dict__, "gaussians": {**small_avatar.gaussians,
                     "sh": ((small_avatar.gaussians["color"] - 0.5) / SH_C0)[:, None, :]}})
    d = save_avatar(tmp_path / "sh", with_sh)
    m = Motion.zeros(1, 25, space=DEMO_HEAD)
    a = SplattingRenderer(SplattingConfig(path=str(plain), size=SIZE, device="cpu")).render(m)[0]
    b = SplattingRenderer(SplattingConfig(path=str(d), size=SIZE, device="cpu")).render(m)[0]
    torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=0)


def test_exported_demo_renders_identically(tmp_path: Path) -> None:
    d = export_demo_avatar(tmp_path / "demo")
    m = Motion.zeros(2, 25, space=DEMO_HEAD)
    m.jaw[1, 0] = 0.2
    m.global_rot[1] = torch.tensor([0.1, 0.2, 0.0])
    built_in = small().render(m)
    loaded = SplattingRenderer(SplattingConfig(path=str(d), size=SIZE, device="cpu")).render(m)
    for a, b in zip(built_in, loaded):
        assert torch.equal(a.image, b.image) and a.placement == b.placement


def test_camera_scales_with_size(small_avatar: Avatar, tmp_path: Path) -> None:
    """An avatar's camera (stored for 512 x 512) at another size: same framing, scaled."""
    d = save_avatar(tmp_path / "a", small_avatar)
    m = Motion.zeros(1, 25, space=DEMO_HEAD)
    for size in [(64, 64), (96, 64)]:
        f = SplattingRenderer(SplattingConfig(path=str(d), size=size, device="cpu")).render(m)[0]
        assert f.placement.anchor_xy == pytest.approx((size[0] / 2, DEMO_ANCHOR_Y * size[1]), abs=1e-3)
        assert f.placement.px_per_metre == pytest.approx(DEMO_PX_PER_METRE_PER_PX * size[1], rel=1e-5)


def test_load_errors(small_avatar: Avatar, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        load_avatar(tmp_path / "nowhere")
    d = save_avatar(tmp_path / "a", small_avatar)
    (d / "gaussians.safetensors").rename(d / "moved")
    with pytest.raises(InputError, match="gaussians.safetensors is missing"):
        load_avatar(d)
    (d / "moved").rename(d / "gaussians.safetensors")
    meta = json.loads((d / "avatar.json").read_text())
    (d / "avatar.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(InputError, match="format_version 99") as err:
        load_avatar(d)
    assert "upgrade" in err.value.one_line()
    (d / "avatar.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        load_avatar(d)
    (d / "avatar.json").write_text(json.dumps(meta))
    (d / "gaussians.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(InputError, match="unreadable"):
        load_avatar(d)


def test_shape_mismatch_names_the_tensor(small_avatar: Avatar, tmp_path: Path) -> None:
    bad = Avatar(**{**small_avatar.__dict__, "gaussians": {**small_avatar.gaussians,
                    "scale": small_avatar.gaussians["scale"][:, :2]}})
    with pytest.raises(InputError, match="'scale' has shape"):
        save_avatar(tmp_path / "x", bad)
    from safetensors.torch import save_file

    d = save_avatar(tmp_path / "y", small_avatar)
    tensors = {**small_avatar.gaussians, "opacity": small_avatar.gaussians["opacity"][:10]}
    save_file(tensors, str(d / "gaussians.safetensors"))
    with pytest.raises(InputError, match="'opacity' has shape"):
        load_avatar(d)
    del tensors["bary"]
    save_file(tensors, str(d / "gaussians.safetensors"))
    with pytest.raises(InputError, match="'bary' is missing"):
        load_avatar(d)
    tensors = {**small_avatar.gaussians, "face_ids": small_avatar.gaussians["face_ids"] + 10**6}
    save_file(tensors, str(d / "gaussians.safetensors"))
    with pytest.raises(InputError, match="face_ids.*triangles"):
        SplattingRenderer(SplattingConfig(path=str(d), size=SIZE, device="cpu"))


def test_head_model_not_found(small_avatar: Avatar, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for ref, expect in [("no/such/model", "not found"), ("flame2020", "FLAME 2020")]:
        monkeypatch.setenv("BEING_FLAME_DIR", str(tmp_path / "empty"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        d = save_avatar(tmp_path / ref.replace("/", "_"), Avatar(**{**small_avatar.__dict__, "head_model": ref}))
        with pytest.raises(InputError, match=expect) as err:
            SplattingRenderer(SplattingConfig(path=str(d), size=SIZE, device="cpu"))
        assert err.value.hint  # says what to do


def test_head_model_directory_reference(small_avatar: Avatar, tmp_path: Path) -> None:
    """A relative path to an own-format head model, next to the avatar."""
    from being_kernel.head import save_head_model

    save_head_model(build_demo_head(), tmp_path / "head")
    d = save_avatar(tmp_path / "av", Avatar(**{**small_avatar.__dict__, "head_model": "../head"}))
    m = Motion.zeros(1, 25, space=DEMO_HEAD)
    via_dir = SplattingRenderer(SplattingConfig(path=str(d), size=SIZE, device="cpu")).render(m)[0]
    demo = save_avatar(tmp_path / "demo", small_avatar)
    via_demo = SplattingRenderer(SplattingConfig(path=str(demo), size=SIZE, device="cpu")).render(m)[0]
    torch.testing.assert_close(via_dir.image, via_demo.image, atol=1e-5, rtol=0)


def test_config_errors() -> None:
    import pydantic

    from being_kernel import ConfigError

    with pytest.raises(pydantic.ValidationError):
        SplattingConfig(backend="vulkan")
    with pytest.raises(pydantic.ValidationError):
        SplattingConfig(device="tpu")
    with pytest.raises(pydantic.ValidationError):
        SplattingConfig(batch_frames=0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="gsplat"):
            SplattingRenderer(SplattingConfig(backend="gsplat", device="cpu"))


def test_seam_with_static_torso() -> None:
    """Through the static compositor at its defaults, the head's neck meets the drawn neck with the
    same width and colour (rows just above / below the neck base)."""
    comp_mod = pytest.importorskip("being_torso_static.compositor")
    from being_torso_static.spec import StaticConfig

    r = SplattingRenderer(SplattingConfig(size=(256, 256), device="cpu"))
    head = r.render(Motion.zeros(1, 25, space=DEMO_HEAD))[0]
    out = comp_mod.StaticTorso(StaticConfig(size=(256, 256))).composite([head])[0].image
    bg = torch.tensor((0.86, 0.88, 0.9))
    y = int(0.74 * 256)
    widths = []
    for row in (y - 4, y + 1):  # head's neck above the base, drawn neck below it
        skin = (out[row] - bg).abs().sum(-1) > 0.3
        widths.append(int(skin.sum()))
    assert abs(widths[0] - widths[1]) <= 2, widths
    above, below = out[y - 3, 120:136].mean(0), out[y + 12, 120:136].mean(0)
    assert float((above - below).abs().max()) < 0.03, (above, below)
    # the head's neck texture goes on below the join instead of stopping at a line
    dev_above, dev_below = (out[r, 112:144].mean(-1) - out[r, 112:144].mean() for r in (y - 3, y + 12))
    assert float(dev_below.std()) > 0.2 * float(dev_above.std())
    assert float(torch.corrcoef(torch.stack([dev_above, dev_below]))[0, 1]) > 0.8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_and_gsplat_agree() -> None:
    pytest.importorskip("gsplat")
    m = Motion.zeros(2, 25, space=DEMO_HEAD)
    m.jaw[1, 0] = 0.2
    cpu = SplattingRenderer(SplattingConfig(size=(128, 128), device="cuda", backend="cpu")).render(m)
    gs = SplattingRenderer(SplattingConfig(size=(128, 128), device="cuda", backend="gsplat")).render(m)
    for a, b in zip(cpu, gs):
        assert float((a.image - b.image).abs().mean()) < 2e-3
        assert float((a.image - b.image).abs().max()) < 0.1


def test_baked_demo_avatar_matches_the_mesh_better_than_placed_gaussians() -> None:
    """On a pose the bake never saw, the baked demo avatar is closer to the textured-mesh
    reference render than the same Gaussians as placed (texture colour at the centre, one size)."""
    from being_kernel.api import Cameras, Motion
    from being_kernel.head import FlameModel, build_demo_head, expression_vector
    from being_kernel.render import rasterize, render_mesh

    from being_avatar_splatting.demo import _demo_gaussians, _placed_gaussians, demo_camera
    from being_kernel.render import camera_for_size

    data = build_demo_head()
    m = Motion.zeros(1, data.n_expression, space=data.motion_space)
    m.global_rot[0, 1], m.global_rot[0, 0], m.jaw[0, 0] = math.radians(25), math.radians(-6), 0.15
    m.expression[0] = torch.from_numpy(expression_vector(lip_corner_up_L=0.6, lip_corner_up_R=0.6))
    size = 192
    R, t, K = camera_for_size(demo_camera(size, size), size, size)
    cams = Cameras(R[None], t[None], K[None], size, size)
    with torch.no_grad():
        v = FlameModel(data)(m).vertices
        ref = render_mesh(v, torch.from_numpy(data.faces), cams, uv_coords=torch.from_numpy(data.uv_coords).float(),
                          uv_faces=torch.from_numpy(data.uv_faces), texture=torch.from_numpy(data.texture).float()).rgb
        placed = _placed_gaussians()
        means, quats, scales = placed.pose(v)
        baked = _demo_gaussians()
        before = rasterize(means[0], quats[0], scales[0], placed.opacity, placed.color, cams, backend="cpu").rgb
        n = len(placed)  # the baked placed Gaussians, without the eyelid ones appended after the bake
        after = rasterize(means[0], quats[0], scales[0] / placed.scale * baked["scale"][:n], baked["opacity"][:n],
                          baked["color"][:n], cams, backend="cpu").rgb
    psnr = lambda x: float(-10 * torch.log10(((x - ref) ** 2).mean()))  # noqa: E731
    assert psnr(after) > psnr(before) + 1.5, (psnr(before), psnr(after))


def test_closed_eyelids_hide_the_eyes() -> None:
    """With the lids closed, the eyeballs' Gaussians change no pixel visibly (as in the mesh, where
    the closed lids cover them); with the lids open they do (the check can fail)."""
    data = build_demo_head()
    r = SplattingRenderer(SplattingConfig(size=(256, 256), device="cpu"))
    eye_vertices = torch.from_numpy(np.concatenate([data.regions["left_eyeball"], data.regions["right_eyeball"]]))
    on_eye = torch.zeros(data.num_vertices, dtype=torch.bool)
    on_eye[eye_vertices] = True
    eyeball = on_eye[r.gaussians.faces[r.gaussians.face_ids]].all(1)
    m = Motion.zeros(2, 25, space=DEMO_HEAD)
    m.eyelids[0] = 1.0
    with_eyes = [f.image for f in r.render(m)]
    r.gaussians.opacity[eyeball] = 0.0
    without = [f.image for f in r.render(m)]
    closed, open_ = ((a - b).abs().amax(-1) for a, b in zip(with_eyes, without))
    assert float(open_.max()) > 0.5  # open eyes: the iris and white are there to be hidden
    assert float(closed.max()) < 0.12, float(closed.max())


def test_cpu_render_spreads_chunks_over_worker_threads_with_the_same_frames(monkeypatch) -> None:  # noqa: ANN001
    """On the CPU a call's chunks are drawn on the renderer's worker threads at once, one torch
    thread each; the frames are those of the one-thread path, in order, and close() ends the pool."""
    import threading

    m = Motion.zeros(5, 25, space=DEMO_HEAD)
    m.jaw[:, 0] = torch.linspace(0, 0.25, 5)
    r = small(batch_frames=1)
    monkeypatch.setattr(SplattingRenderer, "workers", property(lambda self: 1))
    one = r.render(m, start_index=2)
    monkeypatch.setattr(SplattingRenderer, "workers", property(lambda self: 2))
    assert r.info().batch_frames == 2  # what one call keeps busy: a frame per worker
    seen: set[str] = set()
    chunk = r.render_chunk

    def spy(motion, first, cams=None):  # noqa: ANN001, ANN202
        seen.add(threading.current_thread().name)
        return chunk(motion, first, cams)

    r.render_chunk = spy
    many = r.render(m, start_index=2)
    assert all(name.startswith("being-render") for name in seen) and len(seen) >= 1
    assert [f.index for f in many] == [2, 3, 4, 5, 6]
    for a, b in zip(one, many):
        assert torch.allclose(a.image, b.image, atol=1e-5)
    pool = r._pool
    r.close()
    assert r._pool is None and pool._shutdown

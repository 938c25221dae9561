"""The flash plugin against independent oracles: UV texel placement (analytic triangle areas and
coordinates), the network's split first layer (a plain concatenated MLP), the condition's 6-D
rotations (the analytic rotation matrix), posing (offsets in the head's frame, rotations composed
with the head's), the mouth masks (projected lip vertices), the avatar format's errors and round
trip, and the missing-avatar message."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from flash_helpers import random_avatar

from being_avatar_flash.avatar import DEFORM_FILE, GAUSSIANS_FILE, META_FILE, load_avatar
from being_avatar_flash.network import DeformNet, condition, encode_positions
from being_avatar_flash.posing import HEAD_JOINT, SurfacePoints, pose_gaussians
from being_avatar_flash.renderer import FlashRenderer
from being_avatar_flash.spec import FlashConfig
from being_avatar_flash.train.data import mouth_masks, mouth_triangles
from being_avatar_flash.uv import CUT_REGION, head_texels, uv_texels
from being_kernel import ConfigError, InputError
from being_kernel.api import Cameras, Motion
from being_kernel.head import FlameModel, axis_angle_to_matrix, build_demo_head
from being_kernel.render import quat_to_rotmat


@pytest.fixture(scope="module")
def avatar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_avatar(tmp_path_factory.mktemp("flash") / "avatar")


# ---- UV texels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [8, 33, 128])
def test_texels_of_half_the_square_are_the_centres_on_and_below_its_diagonal(size: int) -> None:
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    faces, bary = uv_texels(uv, np.array([[0, 1, 2]]), size)
    # texel (row r, col c) has centre u = (c + .5) / S, v = 1 - (r + .5) / S; u + v <= 1 <=> c <= r
    # (centres on the diagonal lie on the edge, which counts as inside)
    assert len(faces) == size * (size + 1) // 2
    centres = bary @ uv[[0, 1, 2]]
    assert bool((centres.sum(1) <= 1 + 1e-6).all())  # bary is float32
    cols, rows = centres[:, 0] * size - 0.5, (1 - centres[:, 1]) * size - 0.5
    assert np.allclose(cols, np.round(cols), atol=1e-4) and np.allclose(rows, np.round(rows), atol=1e-4)
    assert len({(round(c), round(r)) for c, r in zip(cols, rows)}) == len(faces)  # each texel once


def test_a_texel_two_triangles_cover_goes_to_one_of_them() -> None:
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    faces, _ = uv_texels(uv, np.array([[0, 1, 2], [1, 3, 2], [0, 1, 3]]), 16)  # the third overlaps both
    assert len(faces) == 16 * 16


def test_head_texels_skip_the_neck_cut() -> None:
    head = build_demo_head()
    faces, bary = head_texels(head, 64)
    cut = np.zeros(head.num_vertices, bool)
    cut[head.regions[CUT_REGION]] = True
    all_faces, _ = uv_texels(head.uv_coords, head.uv_faces, 64)
    assert not cut[head.faces[faces]].any()
    assert len(faces) == int((~cut[head.faces[all_faces]].any(1)).sum())
    assert np.allclose(bary.sum(1), 1, atol=1e-6) and bary.min() >= 0


def test_head_without_uvs_is_refused() -> None:
    head = dataclasses.replace(build_demo_head(), uv_coords=None, uv_faces=None)  # a copy: the demo head is cached
    with pytest.raises(InputError, match="no texture coordinates"):
        head_texels(head, 32)


# ---- the network ---------------------------------------------------------------------------------

def test_positional_encoding_is_x_then_sin_cos_octaves() -> None:
    x = torch.tensor([[0.3, -0.2, 0.05]])
    e = encode_positions(x, 3)
    expect = [0.3, -0.2, 0.05] + [f(v * 2**k) for k in range(3) for f in (math.sin, math.cos) for v in (0.3, -0.2, 0.05)]
    assert e.shape == (1, 21) and torch.allclose(e[0], torch.tensor(expect), atol=1e-6)


def test_split_first_layer_equals_the_concatenated_mlp() -> None:
    g = torch.Generator().manual_seed(1)
    net = DeformNet(condition_size=7, frequencies=4, hidden=32, layers=3, generator=g)
    torch.nn.init.normal_(net.out.weight, generator=g)  # a non-zero output
    x, c = torch.randn(5, 3, generator=g), torch.randn(2, 7, generator=g)
    got = net(net.position_features(x), c)
    inp = torch.cat([encode_positions(x, 4)[None].expand(2, -1, -1), c[:, None].expand(-1, 5, -1)], -1)
    h = torch.relu(inp @ torch.cat([net.first_position, net.first_condition], 1).T + net.first_bias)
    for layer in net.hidden:
        h = torch.relu(layer(h))
    assert torch.allclose(got, torch.tanh(net.out(h)), atol=1e-6)


def test_the_network_starts_at_zero() -> None:
    net = DeformNet(condition_size=5)
    with torch.no_grad():
        assert float(net(net.position_features(torch.randn(4, 3)), torch.randn(3, 5)).abs().max()) == 0.0


def test_condition_holds_expression_6d_rotations_and_eyelids() -> None:
    m = Motion.zeros(1, 4, space="x")
    m.expression[0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    m.jaw[0, 0] = 0.3  # about x
    m.eyelids[0] = torch.tensor([0.25, 0.75])
    c = condition(m, 6)
    assert c.shape == (1, 6 + 20)
    assert torch.allclose(c[0, :6], torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0, 0.0]))
    cs, sn = math.cos(0.3), math.sin(0.3)
    assert torch.allclose(c[0, 6:12], torch.tensor([1.0, 0.0, 0.0, 0.0, cs, -sn]), atol=1e-6)  # rows 0, 1 of R_x
    assert torch.allclose(c[0, 12:24], torch.tensor([1.0, 0, 0, 0, 1.0, 0] * 2), atol=1e-6)  # eyes at rest
    assert torch.allclose(c[0, 24:], torch.tensor([0.25, 0.75]))


# ---- posing --------------------------------------------------------------------------------------

def test_offsets_and_rotations_turn_with_the_head() -> None:
    head = build_demo_head()
    model = FlameModel(head)
    m = Motion.zeros(2, 0, space=head.motion_space)
    m.global_rot[1, 1] = math.pi / 2  # the second frame's head turned 90 degrees about y
    posed = model(m)
    face_ids, bary = head_texels(head, 16)
    pts = SurfacePoints(torch.from_numpy(face_ids), torch.from_numpy(bary), model.faces)
    n = len(face_ids)
    raw = torch.zeros(2, n, 10)
    raw[..., 0] = 0.5  # offset along the head's x: 0.5 m
    raw[..., 4] = math.tanh(1.0)  # rotation delta (1, tanh 1, 0, 0) composed after the base
    raw[..., 7:10] = math.log(2.0)  # scale factor 2
    base_q = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1)
    head_rot = posed.transforms[:, HEAD_JOINT, :3, :3]
    means, quats, scales = pose_gaussians(pts, posed.vertices, head_rot, raw, base_q, torch.ones(n, 3))
    foot = pts.on(posed.vertices)
    assert torch.allclose(means[0] - foot[0], torch.tensor([0.5, 0.0, 0.0]).expand(n, 3), atol=1e-6)
    assert torch.allclose(means[1] - foot[1], torch.tensor([0.0, 0.0, -0.5]).expand(n, 3), atol=1e-5)  # x -> -z
    delta = quat_to_rotmat(torch.nn.functional.normalize(torch.tensor([1.0, math.tanh(1.0), 0, 0]), dim=0))
    turned = axis_angle_to_matrix(torch.tensor([0.0, math.pi / 2, 0.0])) @ delta
    assert torch.allclose(quat_to_rotmat(quats[1, 0]), turned, atol=1e-5)
    assert torch.allclose(scales, torch.full_like(scales, 2.0), atol=1e-6)


# ---- mouth masks ---------------------------------------------------------------------------------

def test_mouth_mask_covers_the_projected_lips_and_nothing_far_from_them() -> None:
    head = build_demo_head()
    model = FlameModel(head)
    m = Motion.zeros(1, head.n_expression, space=head.motion_space)
    m.jaw[0, 0] = 0.2  # mouth open: the interior shows
    verts = model(m).vertices
    cam = Cameras.look_at(torch.tensor([0.0, -0.02, 0.7]), torch.tensor([0.0, -0.02, 0.0]), torch.tensor([0.0, 1.0, 0.0]),
                          30.0, 96, 96)
    mask = mouth_masks(verts, model.faces, mouth_triangles(head), cam)[0, ..., 0]
    lips = torch.from_numpy(head.regions["lips"])
    px, z = cam.project(verts[:, lips])
    px = px[0][z[0] > 0].round().long()
    inside = mask[px[:, 1].clamp(0, 95), px[:, 0].clamp(0, 95)] > 0
    assert float(inside.float().mean()) > 0.6  # most lip vertices land on the mask (the rest: silhouette edges)
    ys, xs = torch.nonzero(mask, as_tuple=True)
    lo, hi = px.min(0).values, px.max(0).values
    assert int(xs.min()) >= int(lo[0]) - 2 and int(xs.max()) <= int(hi[0]) + 2  # within the lips' extent
    assert int(ys.min()) >= int(lo[1]) - 2 and int(ys.max()) <= int(hi[1]) + 2


# ---- the avatar directory and the renderer --------------------------------------------------------

def test_saved_avatar_renders_what_the_network_says(avatar_dir: Path) -> None:
    r = FlashRenderer(FlashConfig(path=str(avatar_dir), size=(48, 48), device="cpu"))
    m = Motion.zeros(2, r.info().n_expression, space=r.info().motion_spaces[0])
    m.jaw[1, 0] = 0.3
    frames = r.render(m)
    assert r.avatar.num_gaussians == len(r.points.face_ids) and r.deform(m).abs().max() > 0
    assert not torch.equal(frames[0].image, frames[1].image)  # the jaw moves the mouth's Gaussians


def _rewrite(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001
    import shutil

    shutil.copytree(src, dst)
    edit(dst)
    return dst


def test_broken_avatars_get_one_clear_line(avatar_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    with pytest.raises(InputError, match="no such directory"):
        load_avatar(tmp_path / "nothing")
    gone = _rewrite(avatar_dir, tmp_path / "gone", lambda d: (d / DEFORM_FILE).unlink())
    with pytest.raises(InputError, match="deform.safetensors is missing"):
        load_avatar(gone)

    def bad_shape(d: Path) -> None:
        t = load_file(str(d / GAUSSIANS_FILE))
        t["bary"] = t["bary"][:, :2].contiguous()
        save_file(t, str(d / GAUSSIANS_FILE))
    with pytest.raises(InputError, match="'bary' has shape"):
        load_avatar(_rewrite(avatar_dir, tmp_path / "shape", bad_shape))

    def wider(d: Path) -> None:
        meta = json.loads((d / META_FILE).read_text())
        meta["network"]["hidden"] = 128
        (d / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="does not fit the network"):
        FlashRenderer(FlashConfig(path=str(_rewrite(avatar_dir, tmp_path / "wider", wider)), device="cpu"))

    def newer(d: Path) -> None:
        meta = json.loads((d / META_FILE).read_text())
        meta["format_version"] = 99
        (d / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(InputError, match="newer than this software"):
        load_avatar(_rewrite(avatar_dir, tmp_path / "newer", newer))


def test_the_wrong_plugin_names_the_format_it_found(avatar_dir: Path) -> None:
    from being_kernel.api import read_format_json

    with pytest.raises(InputError, match="it is a 'being-flash-avatar' file") as err:
        read_format_json(avatar_dir / META_FILE, "being-splatting-avatar", 1, "upgrade")
    assert "--avatar flash" in err.value.hint


def test_half_precision_needs_cuda(avatar_dir: Path) -> None:
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        FlashRenderer(FlashConfig(path=str(avatar_dir), device="cpu", precision="fp16"))


def test_being_run_without_an_avatar_says_how_to_train_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEING_")}
    proc = subprocess.run([sys.executable, "-m", "being_kernel.cli", "run", "--audio", "fake", "--avatar", "flash",
                           "--out", str(tmp_path / "t.mp4")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "being fit --avatar flash" in errors[0], proc.stderr
    assert not (tmp_path / "t.mp4").exists()


@pytest.mark.gpu
def test_half_precision_network_matches_fp32_on_cuda(avatar_dir: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    m = Motion.zeros(6, 25, space="being-demo-head")
    m.jaw[:, 0] = torch.linspace(0, 0.3, 6)
    images = {}
    for p in ("fp32", "fp16", "bf16"):
        r = FlashRenderer(FlashConfig(path=str(avatar_dir), size=(128, 128), device="cuda", precision=p))
        images[p] = torch.stack([f.image for f in r.render(m)])
    psnr = {p: 10 * math.log10(1 / max(float(((images[p] - images["fp32"]) ** 2).mean()), 1e-12)) for p in ("fp16", "bf16")}
    # fp16 keeps 11 significant bits, bf16 8: bf16's offsets are ~8x coarser
    assert psnr["fp16"] > 45 and psnr["bf16"] > 35, psnr

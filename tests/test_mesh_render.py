"""The CPU reference mesh renderer against independent oracles (analytic geometry, grid_sample)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from being_kernel.cameras import Cameras
from being_kernel.render.mesh import render_mesh

W, H, FOCAL = 40, 30, 50.0


def camera(width: int = W, height: int = H, f: float = FOCAL) -> Cameras:
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Cameras(torch.eye(3, dtype=torch.float64)[None], torch.zeros(1, 3, dtype=torch.float64), K[None],
                   width, height)


def unproject(px: float, py: float, z: float, width: int = W, height: int = H, f: float = FOCAL) -> list[float]:
    """The point at camera depth z seen at pixel position (px, py) of ``camera()``."""
    return [(px - width / 2) / f * z, (py - height / 2) / f * z, z]


def pixel_rays(width: int = W, height: int = H, f: float = FOCAL, sub: int = 1) -> torch.Tensor:
    """[height * sub, width * sub, 3] ray directions (z = 1) through the (sub)sample centres."""
    ys = (torch.arange(height * sub, dtype=torch.float64) + 0.5) / sub
    xs = (torch.arange(width * sub, dtype=torch.float64) + 0.5) / sub
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([(x - width / 2) / f, (y - height / 2) / f, torch.ones_like(x)], -1)


def hit_plane(rays: torch.Tensor, p0: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Points where rays from the origin meet the plane through p0 with normal n."""
    s = (n @ p0) / (rays @ n)
    return rays * s[..., None]


def screen_area(v: torch.Tensor, face: list[int]) -> float:
    a, b, c = (v[i, :2] / v[i, 2] for i in face)
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


# (a) texture lookup ---------------------------------------------------------------------------

def checker_texture(ht: int = 6, wt: int = 8) -> torch.Tensor:
    r, c = torch.meshgrid(torch.arange(ht), torch.arange(wt), indexing="ij")
    return torch.stack([((r + c) % 2).float(), c / (wt - 1), r / (ht - 1)], -1)  # asymmetric: catches flips


def fullscreen_quad(z: float = 2.0, width: int = W, height: int = H):
    corners = [(0, 0), (width, 0), (width, height), (0, height)]
    v = torch.tensor([unproject(x, y, z, width, height) for x, y in corners], dtype=torch.float64)
    uv = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # top-left of the image has v = 1
    faces = torch.tensor([[0, 3, 2], [0, 2, 1]])  # counter-clockwise as displayed: front faces
    return v, faces, uv


@pytest.mark.parametrize("ss", [1, 3, 4])
def test_fullscreen_quad_matches_analytic_texture_lookup(ss):
    v, faces, uv = fullscreen_quad()
    tex = checker_texture()
    out = render_mesh(v, faces, camera(), uv_coords=uv, texture=tex, supersample=ss)
    # Oracle: bilinear lookup (grid_sample, texel centres, border clamp) at every subsample centre
    # (u = x / W, v = 1 - y / H on this quad), averaged per pixel.
    ys = (torch.arange(H * ss) + 0.5) / ss
    xs = (torch.arange(W * ss) + 0.5) / ss
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    u, vv = x / W, 1 - y / H
    grid = torch.stack([2 * u - 1, 1 - 2 * vv], -1)[None].float()
    look = F.grid_sample(tex.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border",
                         align_corners=False)[0].permute(1, 2, 0)
    want = look.view(H, ss, W, ss, 3).mean((1, 3))
    assert out.rgb.shape == (1, H, W, 3)
    assert torch.allclose(out.rgb[0], want, atol=1e-5)
    assert torch.all(out.alpha == 1.0)
    assert torch.allclose(out.depth, torch.full_like(out.depth, 2.0))
    assert set(out.face_ids.unique().tolist()) == {0, 1}


@pytest.mark.parametrize("ss", [1, 4])
def test_shared_edge_samples_are_covered_exactly_once(ss):
    n = 24  # square: the shared diagonal runs through n * ss subsample centres
    v, faces, uv = fullscreen_quad(width=n, height=n)
    whole = render_mesh(v, faces, camera(n, n), supersample=ss)
    assert torch.all(whole.alpha == 1.0)  # no cracks
    counts = [int(render_mesh(v, faces[i:i + 1], camera(n, n), supersample=ss).alpha.sum() * ss * ss) for i in range(2)]
    assert sum(counts) == n * n * ss * ss  # no sample twice
    assert abs(counts[0] - counts[1]) == n * ss  # the diagonal's samples all went to one side


def test_texture_wrap_modes():
    v, faces, uv = fullscreen_quad()
    tex = checker_texture()
    clamp = render_mesh(v, faces, camera(), uv_coords=uv * 2 - 0.5, texture=tex, supersample=1)
    wrap = render_mesh(v, faces, camera(), uv_coords=uv * 2 - 0.5, texture=tex, supersample=1,
                       texture_wrap="repeat")
    # The green channel is column / 7 and u = 2 x / W - 0.5 spans [-0.5, 1.5]: texel position
    # u * 8 - 0.5 is clamped to [0, 7] or taken modulo 8 between the two taps.
    xt = (2 * (torch.arange(W) + 0.5) / W - 0.5) * 8 - 0.5
    x0, frac = torch.floor(xt), xt - torch.floor(xt)
    want_clamp = xt.clamp(0, 7) / 7
    want_wrap = (x0 % 8) / 7 * (1 - frac) + ((x0 + 1) % 8) / 7 * frac
    assert torch.allclose(clamp.rgb[0, 7, :, 1], want_clamp, atol=1e-5)
    assert torch.allclose(wrap.rgb[0, 7, :, 1], want_wrap, atol=1e-5)
    assert not torch.allclose(want_clamp, want_wrap, atol=0.1)


# (b) perspective-correct interpolation ---------------------------------------------------------

def test_tilted_plane_uv_is_perspective_correct():
    ang = math.radians(60.0)
    p0 = torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64)
    eu = torch.tensor([math.cos(ang), 0.0, math.sin(ang)], dtype=torch.float64)  # u grows away from the camera
    ev = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    a, b = 1.8, 0.8
    v = torch.stack([p0 - a * eu - b * ev, p0 + a * eu - b * ev, p0 + a * eu + b * ev, p0 - a * eu + b * ev])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    wt = 512
    ramp = ((torch.arange(wt) + 0.5) / wt)[None, :, None].expand(2, wt, 3).contiguous()  # bilinear ramp == u
    out = render_mesh(v, faces, camera(), uv_coords=uv, texture=ramp, supersample=1, cull_backfaces=False)

    n = torch.linalg.cross(eu, ev)
    hit = hit_plane(pixel_rays(), p0, n)
    u_true = ((hit - p0) @ eu + a) / (2 * a)
    ok = (out.alpha[0, ..., 0] == 1) & (u_true > 2 / wt) & (u_true < 1 - 2 / wt)
    assert ok.sum() > 300
    u_got = out.rgb[0, ..., 0].double()
    assert (u_got - u_true)[ok].abs().max() < 2e-5
    assert torch.allclose(out.depth[0, ..., 0].double()[ok], hit[..., 2][ok], rtol=1e-5)

    # Affine (screen-space) interpolation of the same u is measurably wrong.
    cam_v = v  # camera at the origin, identity pose
    proj = torch.stack([cam_v[:, 0] / cam_v[:, 2] * FOCAL + W / 2, cam_v[:, 1] / cam_v[:, 2] * FOCAL + H / 2], 1)
    rays = pixel_rays()
    pix = torch.stack([rays[..., 0] * FOCAL + W / 2, rays[..., 1] * FOCAL + H / 2], -1)
    fid = out.face_ids[0].clamp(min=0)
    tri = proj[faces[fid]]  # [H, W, 3, 2]
    def cross(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
    lam = torch.stack([cross(pix, tri[..., 1, :], tri[..., 2, :]), cross(tri[..., 0, :], pix, tri[..., 2, :]),
                       cross(tri[..., 0, :], tri[..., 1, :], pix)], -1)
    lam = lam / lam.sum(-1, keepdim=True)
    u_affine = (lam * uv[faces[fid]][..., 0].double()).sum(-1)
    assert (u_affine - u_true)[ok].abs().max() > 0.02


# (c) z-buffer ----------------------------------------------------------------------------------

def test_nearer_triangle_wins_regardless_of_order():
    near = [unproject(5, 5, 2.0), unproject(5, 25, 2.0), unproject(30, 25, 2.0)]
    far = [unproject(10, 3, 3.0), unproject(10, 28, 3.0), unproject(36, 15, 3.0)]
    v = torch.tensor(near + far, dtype=torch.float64)
    colors = torch.tensor([[1.0, 0, 0]] * 3 + [[0, 1.0, 0]] * 3)
    for order in ([0, 1], [1, 0]):
        faces = torch.tensor([[0, 1, 2], [3, 4, 5]])[order]
        out = render_mesh(v, faces, camera(), vertex_colors=colors, supersample=2)
        near_id = order.index(0)
        # pixel (row 20, col 15) is inside both triangles
        assert out.face_ids[0, 20, 15] == near_id
        assert torch.allclose(out.rgb[0, 20, 15], torch.tensor([1.0, 0, 0]))
        assert out.depth[0, 20, 15, 0] == pytest.approx(2.0, rel=1e-6)
        only_far = out.face_ids[0] == 1 - near_id
        assert only_far.any() and torch.allclose(out.depth[0][only_far], torch.tensor(3.0), rtol=1e-6)


def test_interpenetrating_triangles_resolve_per_pixel_with_analytic_depth():
    flat = [unproject(-5, -5, 2.5), unproject(-5, 40, 2.5), unproject(50, 40, 2.5), unproject(50, -5, 2.5)]
    # a plane through x = 0 at depth 2 and x = W at depth 3: crosses the flat one in the middle
    tilt = [unproject(-2, -3, 2.0 - 0.05 * 2), unproject(-2, 35, 2.0 - 0.05 * 2), unproject(45, 12, 3.0 + 0.05 * 5)]
    v = torch.tensor(flat + tilt, dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    out = render_mesh(v, faces, camera(), supersample=1, cull_backfaces=False)
    rays = pixel_rays()
    z_flat = torch.full((H, W), 2.5, dtype=torch.float64)
    n = torch.linalg.cross(v[5] - v[4], v[6] - v[4])
    z_tilt = hit_plane(rays, v[4], n)[..., 2]
    on_tilt = out.face_ids[0] == 2
    both = (out.alpha[0, ..., 0] == 1) & ((z_flat - z_tilt).abs() > 1e-3)
    want_tilt = z_tilt < z_flat
    assert (on_tilt & both).any() and (~on_tilt & both).any()
    # wherever the tilted triangle covers the pixel centre and is nearer, it wins
    assert torch.all(~on_tilt[both & ~want_tilt])
    got = out.depth[0, ..., 0].double()
    want = torch.where(on_tilt, z_tilt, z_flat)
    assert torch.allclose(got[both], want[both], rtol=1e-5)


# (d) anti-aliasing -----------------------------------------------------------------------------

@pytest.mark.parametrize("ss", [2, 4])
def test_vertical_edge_through_pixel_middle_gives_half_coverage(ss):
    col = 17
    edge = col + 0.5
    z = 2.0
    v = torch.tensor([unproject(-3, -3, z), unproject(-3, H + 3, z), unproject(edge, H + 3, z), unproject(edge, -3, z)],
                     dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    colors = torch.tensor([[1.0, 1.0, 1.0]] * 4)
    bg = torch.tensor([0.0, 0.0, 1.0])
    out = render_mesh(v, faces, camera(), vertex_colors=colors, background=bg, supersample=ss)
    alpha = out.alpha[0, ..., 0]
    assert torch.all((alpha[:, col] - 0.5).abs() <= 1.0 / ss ** 2)
    assert torch.all(alpha[:, :col] == 1) and torch.all(alpha[:, col + 1:] == 0)
    a = alpha[:, col, None]
    assert torch.allclose(out.rgb[0, :, col], a * 1.0 + (1 - a) * bg)
    assert torch.all(out.face_ids[0, :, col + 1:] == -1) and torch.all(torch.isinf(out.depth[0, :, col + 1:]))


# (e) back-face culling -------------------------------------------------------------------------

def test_backface_culling_follows_winding():
    tri = torch.tensor([unproject(5, 5, 2.0), unproject(8, 25, 2.0), unproject(30, 20, 2.0)], dtype=torch.float64)
    front = torch.tensor([[0, 1, 2]])
    assert screen_area(tri, [0, 1, 2]) < 0  # counter-clockwise on the displayed (y-down) image
    back = front[:, [0, 2, 1]]
    seen = render_mesh(tri, front, camera()).alpha.sum()
    assert seen > 100
    assert render_mesh(tri, back, camera()).alpha.sum() == 0
    assert render_mesh(tri, back, camera(), cull_backfaces=False).alpha.sum() == seen
    # the same winding is a front face in the model frame: its normal points at the camera
    n = torch.linalg.cross(tri[1] - tri[0], tri[2] - tri[0])
    assert float(n @ (torch.zeros(3, dtype=torch.float64) - tri[0])) > 0


def uv_sphere(nu: int = 24, nv: int = 12, radius: float = 0.5):
    th = torch.linspace(0, math.pi, nv + 1, dtype=torch.float64)
    ph = torch.linspace(0, 2 * math.pi, nu + 1, dtype=torch.float64)
    t, p = torch.meshgrid(th, ph, indexing="ij")
    v = radius * torch.stack([torch.sin(t) * torch.cos(p), torch.cos(t), -torch.sin(t) * torch.sin(p)], -1)
    v = v.reshape(-1, 3)
    uv = torch.stack([p / (2 * math.pi), 1 - t / math.pi], -1).reshape(-1, 2).float()
    idx = torch.arange((nv + 1) * (nu + 1)).reshape(nv + 1, nu + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, :-1], idx[1:, 1:]
    faces = torch.cat([torch.stack([a, c, d], -1).reshape(-1, 3), torch.stack([a, d, b], -1).reshape(-1, 3)])
    n = torch.linalg.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    outward = (n * v[faces].mean(1)).sum(1)
    assert (outward >= 0).all()  # counter-clockwise seen from outside (pole faces are degenerate)
    return v, faces, uv


def test_closed_mesh_culling_keeps_the_visible_side():
    v, faces, _ = uv_sphere()
    cam = Cameras.look_at(torch.tensor([0.3, 0.2, 2.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                          torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), 40.0, 48, 40)
    culled = render_mesh(v, faces, cam, supersample=2)
    full = render_mesh(v, faces, cam, supersample=2, cull_backfaces=False)
    assert torch.equal(culled.face_ids, full.face_ids) and torch.equal(culled.alpha, full.alpha)
    inside_out = render_mesh(v, faces[:, [0, 2, 1]], cam, supersample=2)
    assert not torch.equal(inside_out.face_ids, culled.face_ids)  # shows the far half instead
    assert inside_out.depth[torch.isfinite(inside_out.depth)].mean() > culled.depth[torch.isfinite(culled.depth)].mean()


def test_near_plane_skips_triangles_reaching_behind_the_camera():
    v = torch.tensor([unproject(5, 5, 2.0), unproject(8, 25, 2.0), [0.1, 0.1, -1.0]], dtype=torch.float64)
    out = render_mesh(v, torch.tensor([[0, 1, 2]]), camera(), cull_backfaces=False)
    assert out.alpha.sum() == 0


# (f) batches -----------------------------------------------------------------------------------

def test_batch_equals_separate_calls():
    v, faces, uv = uv_sphere()
    tex = checker_texture()
    poses = []
    for k in range(3):
        a = 0.4 * k
        rot = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]],
                           dtype=torch.float64)
        poses.append(v @ rot.T + torch.tensor([0.05 * k, 0.0, 0.0], dtype=torch.float64))
    cams = [Cameras.look_at(torch.tensor([0.2 * k, 0.1, 2.0 + 0.3 * k], dtype=torch.float64),
                            torch.zeros(3, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
                            35.0, 32, 24) for k in range(3)]
    batch = Cameras(*(torch.cat([getattr(c, k) for c in cams]) for k in "RtK"), 32, 24)
    kw = dict(uv_coords=uv, texture=tex, supersample=3, background=[0.2, 0.3, 0.4])
    together = render_mesh(torch.stack(poses), faces, batch, **kw)
    one_mesh = render_mesh(v, faces, batch, **kw)
    for k in range(3):
        alone = render_mesh(poses[k], faces, cams[k], **kw)
        for name in ("rgb", "alpha", "depth", "face_ids"):
            assert torch.equal(getattr(together, name)[k], getattr(alone, name)[0]), name
        assert torch.equal(one_mesh.rgb[k], render_mesh(v, faces, cams[k], **kw).rgb[0])
    assert together.alpha.sum() > 0


# (g) vertex colours ----------------------------------------------------------------------------

def test_vertex_colors_are_perspective_correct_barycentric():
    a = torch.tensor(unproject(4, 3, 1.5), dtype=torch.float64)
    b = torch.tensor(unproject(6, 27, 4.0), dtype=torch.float64)
    c = torch.tensor(unproject(36, 14, 2.5), dtype=torch.float64)
    v = torch.stack([a, b, c])
    colors = torch.eye(3)
    bg = torch.tensor([0.5, 0.5, 0.5])
    out = render_mesh(v, torch.tensor([[0, 1, 2]]), camera(), vertex_colors=colors, background=bg, supersample=1,
                      cull_backfaces=False)
    # Oracle: barycentric coordinates of the 3D point where each pixel ray meets the triangle.
    x = hit_plane(pixel_rays(), a, torch.linalg.cross(b - a, c - a))
    tot = torch.linalg.cross(b - a, c - a).norm()
    lam = torch.stack([torch.linalg.cross(b - x, c - x).norm(dim=-1), torch.linalg.cross(c - x, a - x).norm(dim=-1),
                       torch.linalg.cross(a - x, b - x).norm(dim=-1)], -1) / tot
    covered = out.alpha[0, ..., 0] == 1
    assert covered.sum() > 150
    assert (out.rgb[0].double() - lam)[covered].abs().max() < 1e-5
    empty = out.alpha[0, ..., 0] == 0
    assert torch.allclose(out.rgb[0][empty], bg.expand(int(empty.sum()), 3))
    assert torch.all(out.face_ids[0][empty] == -1)


def test_vertex_colors_modulate_texture():
    v, faces, uv = fullscreen_quad()
    tex = checker_texture()
    plain = render_mesh(v, faces, camera(), uv_coords=uv, texture=tex, supersample=1)
    tinted = render_mesh(v, faces, camera(), uv_coords=uv, texture=tex, supersample=1,
                         vertex_colors=torch.tensor([[0.5, 1.0, 0.25]] * 4))
    assert torch.allclose(tinted.rgb, plain.rgb * torch.tensor([0.5, 1.0, 0.25]), atol=1e-6)
    white = render_mesh(v, faces, camera(), supersample=1)
    assert torch.all(white.rgb == 1.0)


def test_bad_inputs_raise():
    v, faces, uv = fullscreen_quad()
    with pytest.raises(ValueError, match="faces"):
        render_mesh(v, faces + 10, camera())
    with pytest.raises(ValueError, match="texture and uv_coords"):
        render_mesh(v, faces, camera(), uv_coords=uv)
    with pytest.raises(ValueError, match="vertex_colors"):
        render_mesh(v, faces, camera(), vertex_colors=torch.ones(3, 3))
    with pytest.raises(ValueError, match="supersample"):
        render_mesh(v, faces, camera(), supersample=0)
    three = Cameras(*(torch.cat([getattr(camera(), k)] * 3) for k in "RtK"), W, H)
    with pytest.raises(ValueError, match="meshes for"):
        render_mesh(torch.stack([v, v]), faces, three)

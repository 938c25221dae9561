"""Triangle walking and densification bookkeeping of SplattingAvatar training."""

from __future__ import annotations

import torch

from being_avatar_splatting.train.densify import GradientStats, densify_and_prune
from being_avatar_splatting.train.method import SplattingFit
from being_avatar_splatting.train.params import GaussianParams
from being_avatar_splatting.train.walking import barycentric, edge_neighbours, walk
from being_kernel.train import adam


def _grid(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat n x n grid of unit squares in the z = 0 plane, two triangles per square."""
    xs, ys = torch.meshgrid(torch.arange(n + 1.0), torch.arange(n + 1.0), indexing="xy")
    verts = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.zeros((n + 1) ** 2)], -1)
    faces = []
    for r in range(n):
        for c in range(n):
            a, b, d = r * (n + 1) + c, r * (n + 1) + c + 1, (r + 1) * (n + 1) + c
            e = d + 1
            faces += [[a, b, e], [a, e, d]]
    return verts, torch.tensor(faces)


def _point(verts, faces, face_ids, bary):  # noqa: ANN001, ANN202
    return (bary[:, :, None] * verts[faces[face_ids]]).sum(1)


def test_edge_neighbours_are_mutual_and_share_the_edge() -> None:
    verts, faces = _grid()
    nb = edge_neighbours(faces)
    borders = 0
    for f in range(len(faces)):
        for k in range(3):
            g = int(nb[f, k])
            if g < 0:
                borders += 1
                continue
            edge = {int(faces[f, (k + 1) % 3]), int(faces[f, (k + 2) % 3])}
            assert edge <= set(faces[g].tolist())
            assert f in nb[g].tolist()
    assert borders == 4 * 4  # a 4 x 4 grid has 16 border edges


def test_barycentric_recovers_known_coordinates_and_projects_onto_the_plane() -> None:
    tri = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [0, 3, 0]]])
    b = torch.tensor([[0.2, 0.5, 0.3]])
    p = _point(tri[0], torch.tensor([[0, 1, 2]]), torch.tensor([0]), b) + torch.tensor([0.0, 0, 0.7])
    torch.testing.assert_close(barycentric(p, tri), b)


def test_walk_keeps_the_surface_point_on_a_flat_mesh() -> None:
    verts, faces = _grid()
    g = torch.Generator().manual_seed(0)
    n = 200
    face_ids = torch.randint(len(faces), (n,), generator=g)
    inside = torch.distributions.Dirichlet(torch.ones(3)).sample((n,))
    start = _point(verts, faces, face_ids, inside)
    target = start + 0.8 * (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([1.0, 1.0, 0.0])
    on_grid = ((target[:, :2] > 0.01) & (target[:, :2] < 3.99)).all(-1)
    # express the moved point in the start triangle (coordinates outside [0, 1] where it left)
    bary = barycentric(target, verts[faces[face_ids]])
    new_faces, new_bary, moved = walk(face_ids, bary, verts, faces, edge_neighbours(faces), max_steps=8)
    assert (new_bary >= 0).all() and torch.allclose(new_bary.sum(-1), torch.ones(n))
    landed = _point(verts, faces, new_faces, new_bary)
    torch.testing.assert_close(landed[on_grid], target[on_grid], atol=1e-5, rtol=0)
    assert moved[on_grid].sum() > n // 4  # most steps of this size leave a unit triangle
    assert not moved[(bary >= 0).all(-1)].any()  # points that stayed inside are untouched


def test_walk_clamps_at_the_border() -> None:
    verts, faces = _grid(1)
    bary = torch.tensor([[1.5, -0.7, 0.2]])  # leaves face 0 across its border edge
    face_ids, out, _ = walk(torch.tensor([0]), bary, verts, faces, edge_neighbours(faces))
    assert (out >= 0).all() and torch.allclose(out.sum(-1), torch.ones(1))


def _adam(g: GaussianParams) -> torch.optim.Adam:
    """The optimizer the training harness builds from the method's groups."""
    return adam(g.groups(), SplattingFit.adam_eps)


def test_densify_grows_the_high_gradient_gaussians_and_keeps_adam_state_aligned() -> None:
    verts, faces = _grid()
    g = GaussianParams.place(verts, faces, 50, sh_degree=1, generator=torch.Generator().manual_seed(0))
    optimizer = _adam(g)
    for name, p in g.params.items():
        p.grad = torch.ones_like(p)
    optimizer.step()
    marker = g.params["offset"].data.clone()
    marker[:] = torch.arange(50.0)
    g.params["offset"].data.copy_(marker)
    g.params["opacity_logit"].data[:5] = -20.0  # nearly transparent: pruned
    stats = GradientStats(50, torch.device("cpu"))
    grad = torch.zeros(1, 50, 3)
    grad[0, 10:20, 0] = 1.0  # only these ten saw a large gradient
    stats.add(grad, torch.ones(1, 50), torch.ones(1), 64)
    counts = densify_and_prune(g, stats, optimizer, grad_threshold=1e-3, prune_opacity=0.005, max_gaussians=1000,
                               generator=torch.Generator().manual_seed(1))
    assert counts["cloned"] + counts["split"] == 10 and counts["pruned"] == 5 and len(g) == 55
    offsets = g.params["offset"].data
    assert offsets[:45].tolist() == list(range(5, 50))  # survivors keep their order
    assert sorted(offsets[45:].tolist()) == list(range(10, 20))  # copies of the high-gradient ones
    state = optimizer.state[g.params["offset"]]
    assert all(group["params"][0] is g.params[group["name"]] for group in optimizer.param_groups)  # the optimizer follows
    assert state["exp_avg"].shape == (55,) and (state["exp_avg"][45:] == 0).all() and (state["exp_avg"][:45] != 0).all()
    assert g.face_ids.shape == (55,)


def test_densify_respects_the_budget() -> None:
    verts, faces = _grid()
    g = GaussianParams.place(verts, faces, 40, sh_degree=0, generator=torch.Generator().manual_seed(0))
    stats = GradientStats(40, torch.device("cpu"))
    stats.add(torch.ones(1, 40, 3), torch.ones(1, 40), torch.ones(1), 64)
    densify_and_prune(g, stats, _adam(g), grad_threshold=1e-6, prune_opacity=0.0, max_gaussians=46,
                      generator=torch.Generator())
    assert len(g) == 46

"""FLAME skinning: agreement with smplx's independent implementation on the same file,
gradients, analytic poses, eyelids, translation; and the mesh geometry helpers."""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from being_kernel.head.data import HeadModelData
from being_kernel.head.flame import FlameModel, FlameOutput, axis_angle_to_matrix
from being_kernel.head.geometry import region, triangle_frames, vertex_normals
from being_kernel.head.loaders import load_flame_pkl
from being_kernel.types import Motion
from test_loaders import fake_chumpy, random_flame_arrays, write_flame_pkl

T = 4


@pytest.fixture(scope="module")
def flame_dir(tmp_path_factory) -> Path:
    """generic_model.pkl (official layout) plus what smplx's FLAME wants in the same folder."""
    root = tmp_path_factory.mktemp("flame")
    path = write_flame_pkl(root / "generic_model.pkl")
    (root / "FLAME_NEUTRAL.pkl").symlink_to(path.name)  # smplx's name for it: the very same file
    rng = np.random.default_rng(0)
    bary = rng.random((51, 3))
    (root / "flame_static_embedding.pkl").write_bytes(pickle.dumps(
        {"lmk_face_idx": np.arange(51, dtype=np.uint32), "lmk_b_coords": bary / bary.sum(1, keepdims=True)}))
    return root


@pytest.fixture(scope="module")
def data(flame_dir: Path) -> HeadModelData:
    return load_flame_pkl(flame_dir / "generic_model.pkl")


@pytest.fixture(scope="module")
def model(data: HeadModelData) -> FlameModel:
    return FlameModel(data)


def random_motion(seed: int, t: int = T, n_expression: int = 100, scale: float = 0.3) -> Motion:
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return Motion(expression=r(t, n_expression), global_rot=r(t, 3) * scale, neck=r(t, 3) * scale,
                  jaw=r(t, 3) * scale, eyes=r(t, 6) * scale, eyelids=torch.rand(t, 2, generator=g),
                  translation=r(t, 3) * 0.1)


# --------------------------------------------------------------------------------------------
# Agreement with smplx
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_smplx(flame_dir: Path, model: FlameModel, seed: int) -> None:
    smplx = pytest.importorskip("smplx", reason="smplx is the reference implementation (pip install smplx)")
    with fake_chumpy(flame_dir), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy.sparse.csc / numpy.core paths
        ref = smplx.FLAME(model_path=str(flame_dir), num_betas=300, num_expression_coeffs=100, batch_size=T)
    motion = random_motion(seed)
    shape = torch.randn(T, 300, generator=torch.Generator().manual_seed(100 + seed))
    with torch.no_grad():
        want = ref(betas=shape, expression=motion.expression, global_orient=motion.global_rot,
                   neck_pose=motion.neck, jaw_pose=motion.jaw, leye_pose=motion.eyes[:, :3],
                   reye_pose=motion.eyes[:, 3:], transl=motion.translation)
        got = model(motion, shape)
    assert isinstance(got, FlameOutput) and got.vertices.shape == (T, 300, 3)
    assert (got.vertices - want.vertices).abs().max().item() < 1e-5
    assert (got.joints - want.joints[:, :5]).abs().max().item() < 1e-5


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def test_partial_coefficients_are_zero_padded(model: FlameModel) -> None:
    motion = random_motion(3, n_expression=10)
    padded = Motion(**{**motion.tensors(), "expression": torch.cat([motion.expression, torch.zeros(T, 90)], 1)})
    shape = torch.randn(20)
    a = model(motion, shape)
    b = model(padded, torch.cat([shape, torch.zeros(280)])[None].expand(T, -1))
    torch.testing.assert_close(a.vertices, b.vertices)


def test_too_many_coefficients(model: FlameModel) -> None:
    with pytest.raises(ValueError, match="101 coefficients"):
        model(random_motion(0, n_expression=101))
    with pytest.raises(ValueError, match="shape has 301"):
        model(random_motion(0), torch.zeros(301))
    with pytest.raises(ValueError, match="shape must be"):
        model(random_motion(0), torch.zeros(T + 1, 10))


def test_pose_only_motion(model: FlameModel) -> None:
    motion = random_motion(4, n_expression=0)
    zeros = Motion(**{**motion.tensors(), "expression": torch.zeros(T, 100)})
    torch.testing.assert_close(model(motion).vertices, model(zeros).vertices)


def test_translation(model: FlameModel) -> None:
    motion = random_motion(5)
    moved = Motion(**{**motion.tensors(), "translation": motion.translation + torch.tensor([0.1, -0.2, 0.3])})
    a, b = model(motion), model(moved)
    torch.testing.assert_close(b.vertices - a.vertices, torch.tensor([0.1, -0.2, 0.3]).expand(T, 300, 3))
    torch.testing.assert_close(b.joints - a.joints, torch.tensor([0.1, -0.2, 0.3]).expand(T, 5, 3))


def test_double_precision_motion_is_accepted(model: FlameModel) -> None:
    motion = random_motion(6)
    as64 = Motion(**{k: v.double() for k, v in motion.tensors().items()})
    out = model(as64)
    assert out.vertices.dtype == torch.float32
    torch.testing.assert_close(out.vertices, model(motion).vertices)


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------


def test_gradients_flow(model: FlameModel) -> None:
    motion = random_motion(7)
    leaves = {k: v.clone().requires_grad_(True) for k, v in motion.tensors().items()}
    shape = torch.randn(T, 50, requires_grad=True)
    out = model(Motion(**leaves), shape)
    (out.vertices.square().sum() + out.joints.sum()).backward()
    for name, leaf in [*leaves.items(), ("shape", shape)]:
        if name == "eyelids":  # this model has no eyelid blendshapes
            continue
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0, name


def test_zero_pose_has_finite_exact_gradients(model: FlameModel) -> None:
    motion = Motion.zeros(2, 100)
    leaves = {k: v.clone().requires_grad_(True) for k, v in motion.tensors().items()}
    model(Motion(**leaves)).vertices.sum().backward()
    for name in ("global_rot", "neck", "jaw", "eyes"):
        g = leaves[name].grad
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name
    # dR/dr at r = 0 is the skew basis, exactly.
    jac = torch.autograd.functional.jacobian(axis_angle_to_matrix, torch.zeros(3))
    basis = torch.stack([axis_angle_to_matrix(torch.zeros(3)) * 0] * 3, -1)
    basis[2, 1, 0], basis[1, 2, 0] = 1, -1
    basis[0, 2, 1], basis[2, 0, 1] = 1, -1
    basis[1, 0, 2], basis[0, 1, 2] = 1, -1
    torch.testing.assert_close(jac, basis)


def test_rodrigues_matches_matrix_exponential() -> None:
    r = torch.cat([torch.randn(64, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64) * 1e-5,
                   torch.zeros(1, 3, dtype=torch.float64)])
    k = torch.zeros(len(r), 3, 3, dtype=torch.float64)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -r[:, 2], r[:, 1], -r[:, 0]
    k = k - k.transpose(1, 2)
    torch.testing.assert_close(axis_angle_to_matrix(r), torch.linalg.matrix_exp(k))


# --------------------------------------------------------------------------------------------
# Analytic poses
# --------------------------------------------------------------------------------------------


def test_global_rotation_turns_everything_about_the_root(model: FlameModel, data: HeadModelData) -> None:
    motion = Motion.zeros(1, 0)
    motion.global_rot[0, 1] = math.pi / 2
    out = model(motion)
    root = torch.as_tensor(data.j_regressor[0] @ data.v_template)
    ry = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90° about +y: x -> -z
    want = (torch.as_tensor(data.v_template) - root) @ ry.T + root
    torch.testing.assert_close(out.vertices[0], want, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.transforms[0, :, :3, :3], ry.expand(5, 3, 3), atol=1e-6, rtol=1e-6)


def test_jaw_moves_only_jaw_weighted_vertices(data: HeadModelData) -> None:
    plain = FlameModel(HeadModelData(**{**data.__dict__, "posedirs": np.zeros_like(data.posedirs)}))
    motion = Motion.zeros(1, 0)
    motion.jaw[0, 0] = 0.3
    moved = (plain(motion).vertices[0] - torch.as_tensor(data.v_template)).norm(dim=-1)
    jaw_w = torch.as_tensor(data.lbs_weights[:, 2])
    assert moved[jaw_w == 0].max() < 1e-7
    assert (moved[jaw_w > 0.2] > 1e-4).all()


def test_transforms_at_rest_and_skinning_identity(data: HeadModelData) -> None:
    plain = FlameModel(HeadModelData(**{**data.__dict__, "posedirs": np.zeros_like(data.posedirs)}))
    rest = plain(Motion.zeros(1, 0))
    torch.testing.assert_close(rest.transforms[0], torch.eye(4).expand(5, 4, 4))
    torch.testing.assert_close(rest.vertices[0], torch.as_tensor(data.v_template))
    # Posed: vertices = Σ_j w_vj A_j [v_rest; 1], joints = posed joint locations.
    motion = random_motion(8, t=2, n_expression=0)
    out = plain(motion)
    v = torch.cat([torch.as_tensor(data.v_template), torch.ones(300, 1)], 1)
    per_joint = torch.einsum("tjab,vb->tvja", out.transforms, v)[..., :3]
    want = (per_joint * torch.as_tensor(data.lbs_weights)[None, :, :, None]).sum(2)
    torch.testing.assert_close(out.vertices, want, atol=1e-6, rtol=1e-5)
    rest_joints = torch.as_tensor(data.j_regressor @ data.v_template, dtype=torch.float32)
    joints_from_a = (out.transforms[..., :3, :3] @ rest_joints[..., None])[..., 0] + out.transforms[..., :3, 3]
    torch.testing.assert_close(out.joints, joints_from_a, atol=1e-6, rtol=1e-5)


def test_eyelids(data: HeadModelData) -> None:
    lids = np.random.default_rng(0).normal(size=(300, 3, 2)).astype(np.float32)
    with_lids = FlameModel(HeadModelData(**{**data.__dict__, "eyelid_dirs": lids}))
    motion = Motion.zeros(1, 0)
    motion.eyelids[0] = torch.tensor([1.0, 0.5])
    out = with_lids(motion).vertices[0]
    torch.testing.assert_close(out, torch.as_tensor(data.v_template + lids[..., 0] + 0.5 * lids[..., 1]))
    torch.testing.assert_close(FlameModel(data)(motion).vertices[0], torch.as_tensor(data.v_template))


def test_from_file(flame_dir: Path, model: FlameModel, tmp_path: Path) -> None:
    from being_kernel.head.loaders import save_head_model

    motion = random_motion(9)
    torch.testing.assert_close(FlameModel.from_file(flame_dir / "generic_model.pkl")(motion).vertices,
                               model(motion).vertices)
    own = save_head_model(load_flame_pkl(flame_dir / "generic_model.pkl"), tmp_path / "own")
    torch.testing.assert_close(FlameModel.from_file(own)(motion).vertices, model(motion).vertices)


def test_rejects_non_flame_joint_count() -> None:
    a = random_flame_arrays(num_v=10, num_f=5)
    d = HeadModelData(v_template=a["v_template"], faces=a["f"].astype(np.int64), shapedirs=a["shapedirs"][:, :, :3],
                      exprdirs=a["shapedirs"][:, :, 3:5], posedirs=np.zeros((10, 3, 9)), j_regressor=np.ones((2, 10)) / 10,
                      lbs_weights=np.full((10, 2), 0.5), parents=np.array([-1, 0]), motion_space="x")
    with pytest.raises(ValueError, match="2 joints"):
        FlameModel(d)


def test_buffers_follow_to(model: FlameModel) -> None:
    assert all(b.dtype in (torch.float32, torch.int64) for b in model.buffers())
    assert {n for n, _ in model.named_buffers()} >= {"v_template", "faces", "shapedirs", "exprdirs", "posedirs",
                                                     "j_regressor", "lbs_weights", "parents"}


@pytest.mark.gpu
def test_cuda_matches_cpu(data: HeadModelData) -> None:
    cpu = FlameModel(data)
    gpu = FlameModel(data).to("cuda")
    motion = random_motion(10)
    out = gpu(motion.to("cuda"), torch.full((300,), 0.1, device="cuda"))
    assert out.vertices.device.type == "cuda"
    torch.testing.assert_close(out.vertices.cpu(), cpu(motion, torch.full((300,), 0.1)).vertices, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def test_triangle_frame_of_a_known_triangle() -> None:
    verts = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]])
    n, t, b, area = triangle_frames(verts, torch.tensor([[0, 1, 2]]))
    torch.testing.assert_close(n[0, 0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(t[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(b[0, 0], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(area, torch.tensor([[3.0]]))
    n_flip, *_ = triangle_frames(verts, torch.tensor([[0, 2, 1]]))  # clockwise: normal flips
    torch.testing.assert_close(n_flip[0, 0], torch.tensor([0.0, 0.0, -1.0]))


def test_triangle_frames_are_orthonormal(model: FlameModel) -> None:
    verts = model(random_motion(11)).vertices
    n, t, b, area = triangle_frames(verts, model.faces)
    frames = torch.stack([t, b, n], dim=-1)  # [T, F, 3, 3], columns t, b, n
    eye = torch.eye(3).expand_as(frames)
    torch.testing.assert_close(frames.transpose(-1, -2) @ frames, eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(frames), torch.ones(frames.shape[:2]), atol=1e-5, rtol=0)
    assert area.shape == (T, model.faces.shape[0]) and (area > 0).all()


def test_vertex_normals_are_area_weighted() -> None:
    # A unit quad in z=0 and a tiny triangle tilted up: the shared vertex leans to the big one.
    verts = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [-0.01, 0, 0.01]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4]])
    normals = vertex_normals(verts, faces)
    torch.testing.assert_close(normals[0, 1], torch.tensor([0.0, 0.0, 1.0]))
    assert normals[0, 0, 2] > 0.99
    torch.testing.assert_close(normals.norm(dim=-1), torch.ones(1, 5))


def test_region(data: HeadModelData) -> None:
    d = HeadModelData(**{**data.__dict__, "regions": {"lips": np.array([1, 2]), "face": np.array([3])}})
    np.testing.assert_array_equal(region(d, "lips"), [1, 2])
    with pytest.raises(KeyError, match="no region 'teeth'; available: face, lips"):
        region(d, "teeth")


@pytest.mark.parametrize("width", [None, 20, 300])
def test_a_vertex_subset_poses_exactly_those_vertices(data: HeadModelData, model: FlameModel, width: int | None) -> None:
    """FlameModel(vertex_ids=...) regresses the joints from the whole mesh (precomputed bases), so
    its vertices equal the full model's at those indices, with any shape and expression width."""
    ids = np.random.default_rng(3).choice(data.num_vertices, 57, replace=False)
    subset = FlameModel(data, vertex_ids=ids)
    motion = random_motion(7)
    motion = Motion(motion.expression[:, :40], motion.global_rot, motion.neck, motion.jaw, motion.eyes,
                    motion.eyelids, motion.translation)
    shape = None if width is None else torch.randn(width, generator=torch.Generator().manual_seed(1))
    full = model(motion, shape).vertices[:, ids]
    assert subset.num_vertices == 57
    torch.testing.assert_close(subset(motion, shape).vertices, full, atol=2e-6, rtol=1e-5)

"""The conformance suite every method plugin runs against itself, in one line:

    from being_kernel.testing import conformance_suite
    TestConformance = conformance_suite("torso", "static")

``conformance_suite(contract, name, config)`` finds the installed plugin by its entry point (so
the registration is tested too) and returns a pytest class whose tests check the contract: the
static description, config strictness, shapes, frame counts and numbering, the head pose every
head frame carries (renderers) and accepts (compositors), rendering through given cameras (when
a renderer implements it), streaming equal to batch, and teardown. Pass ``spec=`` instead of a
name to test a plugin that is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ..cameras import Cameras
from ..contracts import CONTRACTS
from ..datasets.common import stack_cameras
from ..discovery import Registry
from ..spec import KERNEL_API_VERSION, PluginSpec
from ..types import HEAD_POSE_FIELDS, Audio, Frame, HeadPose, Motion
from .fakes import FakeRenderer
from .specs import FakeRendererConfig


def _audio(seconds: float, rate: int, seed: int = 0) -> Audio:
    """Noise-modulated tones: enough structure for a model to react to."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    x = env * (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(len(t)))
    return Audio(x.astype(np.float32), rate)


def _chunks(n: int, sizes=(1, 7, 160, 333, 4000)) -> list[slice]:
    out, start, k = [], 0, 0
    while start < n:
        out.append(slice(start, min(n, start + sizes[k % len(sizes)])))
        start, k = start + sizes[k % len(sizes)], k + 1
    return out


def _assert_frames_equal(a: list[Frame], b: list[Frame], atol: float) -> None:
    assert [f.index for f in a] == [f.index for f in b]
    for fa, fb in zip(a, b):
        assert fa.pts == pytest.approx(fb.pts)
        torch.testing.assert_close(fa.image, fb.image, atol=atol, rtol=0)


def _assert_camera(cam: Cameras, size: tuple[int, int]) -> None:
    """One OpenCV camera whose image is ``size`` (width, height): rotation, positive focal lengths."""
    assert len(cam) == 1, f"a head frame's camera must be one camera, got {len(cam)}"
    assert (cam.width, cam.height) == size, f"camera image {cam.width}x{cam.height} for a {size[0]}x{size[1]} frame"
    R, K = cam.R[0].double().cpu(), cam.K[0].double().cpu()
    assert bool(torch.isfinite(R).all() and torch.isfinite(cam.t).all() and torch.isfinite(K).all())
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=R.dtype), atol=1e-4, rtol=0, msg="camera R is not a rotation")
    assert abs(float(torch.linalg.det(R)) - 1.0) < 1e-4, "camera R is a reflection"
    assert float(K[0, 0]) > 0 and float(K[1, 1]) > 0, "camera focal lengths must be positive"
    torch.testing.assert_close(K[2], torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype), msg="camera K's last row must be 0 0 1")


def _assert_heads(frames: list[Frame], motion: Motion) -> None:
    """Frame i carries motion frame i's pose and at most one camera, whose image is the frame."""
    assert len(frames) == motion.num_frames
    for i, f in enumerate(frames):
        assert isinstance(f.head, HeadPose), (
            f"frame {f.index} has no head pose: attach a HeadPose to every frame (Frame.head, kernel API 2; "
            "being_kernel.api.head_poses builds them)")
        for name in HEAD_POSE_FIELDS:
            torch.testing.assert_close(getattr(f.head, name).cpu(), getattr(motion, name)[i], atol=1e-6, rtol=0,
                                       check_dtype=False, msg=f"frame {f.index}: head.{name} is not the motion's")
        if f.head.camera is not None:
            _assert_camera(f.head.camera, f.size)


def _views_or_skip(plugin: Any, motion: Motion, cameras: Cameras) -> list[Frame]:
    try:
        return plugin.render_views(motion, cameras)
    except NotImplementedError:
        pytest.skip("does not render through given cameras (render_views)")


def _own_cameras(plugin: Any, motion: Motion) -> tuple[list[Frame], Cameras]:
    """``render``'s frames of ``motion`` and the cameras they report; skips a renderer without
    render_views, fails one that has it but reports no camera."""
    frames = plugin.render(motion)
    _assert_heads(frames, motion)
    cams = [f.head.camera for f in frames]
    if any(c is None for c in cams):
        w, h = plugin.info().size
        probe = Cameras.look_at(torch.tensor([0.0, 0.0, 1.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]), 20.0, w, h)
        _views_or_skip(plugin, motion, stack_cameras([probe] * motion.num_frames))
        pytest.fail("render_views works, so the renderer has a 3-D camera: report it in Frame.head.camera")
    return frames, stack_cameras(cams)


def _motion_for(plugin: Any, frames: int, seed: int = 0) -> Motion:
    """Small random motion in the renderer's first motion space."""
    info = plugin.info()
    g = torch.Generator().manual_seed(seed)
    m = Motion.zeros(frames, info.n_expression, fps=info.fps or 25.0, space=info.motion_spaces[0])
    for name, value in m.tensors().items():
        value.copy_(0.1 * torch.randn(value.shape, generator=g))
    m.eyelids.clamp_(0, 1)
    return m


def conformance_suite(contract: str, name: str | None = None, config: dict | None = None, *,
                      spec: PluginSpec | None = None, atol: float = 1e-5, views_atol: float = 1e-4) -> type:
    """A pytest test class checking plugin ``name`` of ``contract`` ("audio", "avatar", "torso")
    built with ``config`` (a dict for its config model). ``atol``: allowed stream-vs-batch gap;
    ``views_atol``: allowed gap between ``render`` and ``render_views`` through render's cameras."""
    if contract not in CONTRACTS:
        raise ValueError(f"contract must be one of {list(CONTRACTS)}")
    settings = dict(config or {})

    def get_spec() -> PluginSpec:
        if spec is not None:
            return spec
        assert name is not None, "give a plugin name or spec="
        return Registry.discover(env={}).spec(contract, name)

    class Common:
        @pytest.fixture
        def plugin(self):
            instance = get_spec().load_class()(get_spec().config(**settings))
            yield instance
            instance.close()

        def test_spec(self) -> None:
            s = get_spec()
            assert s.contract == contract
            assert s.api_version == KERNEL_API_VERSION
            assert s.description and "\n" not in s.description
            assert issubclass(s.load_class(), CONTRACTS[contract])

        def test_spec_import_is_light(self) -> None:
            s = get_spec()
            spec_module = s.config.__module__
            impl_module = s.factory.partition(":")[0]
            if impl_module == spec_module:
                pytest.fail("the spec and its implementation live in one module: listing would import heavy code")
            code = f"import sys, {spec_module}; print({impl_module!r} in sys.modules)"
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            assert out.stdout.strip() == "False", f"importing {spec_module} imports {impl_module}"

        def test_config_forbids_unknown_fields(self) -> None:
            with pytest.raises(ValidationError):
                get_spec().config(**settings, no_such_field_xyz=1)

        def test_config_schema_is_json(self) -> None:
            import json
            json.dumps(get_spec().config.model_json_schema())

        def test_close_twice_is_safe(self, plugin) -> None:
            plugin.close()

    if contract == "audio":
        class Suite(Common):
            @pytest.mark.parametrize("seconds", [0.5, 1.234])
            def test_batch_frame_count_and_layout(self, plugin, seconds: float) -> None:
                info = plugin.info()
                audio = _audio(seconds, info.sample_rate)
                m = plugin.generate(audio)
                assert m.num_frames == audio.num_frames(info.fps)
                assert (m.fps, m.space, m.n_expression) == (info.fps, info.motion_space, info.n_expression)
                for value in m.tensors().values():
                    assert torch.isfinite(value).all()

            def test_stream_equals_batch(self, plugin) -> None:
                info = plugin.info()
                audio = _audio(1.5, info.sample_rate, seed=1)
                batch = plugin.generate(audio)
                stream = plugin.open_stream()
                parts = [stream.push(audio.samples[s]) for s in _chunks(len(audio.samples))] + [stream.finish()]
                streamed = Motion.cat(parts)
                assert streamed.num_frames == batch.num_frames
                for key, value in batch.tensors().items():
                    torch.testing.assert_close(getattr(streamed, key), value, atol=atol, rtol=0, msg=key)

            def test_stream_latency_is_stated(self, plugin) -> None:
                info = plugin.info()
                audio = _audio(2.0, info.sample_rate, seed=2)
                stream = plugin.open_stream()
                got = 0
                for s in _chunks(len(audio.samples), sizes=(info.sample_rate // 10,)):
                    got += stream.push(audio.samples[s]).num_frames
                    heard = s.stop / info.sample_rate
                    # every frame whose time + latency has been heard must be out (1 frame of slack)
                    assert got >= int((heard - info.latency_s) * info.fps) - 1
                got += stream.finish().num_frames
                assert got == audio.num_frames(info.fps)

    elif contract == "avatar":
        class Suite(Common):
            def test_batch_frames(self, plugin) -> None:
                info = plugin.info()
                motion = _motion_for(plugin, 5)
                frames = plugin.render(motion, start_index=3)
                assert [f.index for f in frames] == [3, 4, 5, 6, 7]
                for f in frames:
                    assert f.pts == pytest.approx(f.index / motion.fps)
                    assert f.has_alpha and f.size == tuple(info.size)
                    assert f.placement is not None, "renderers must report where the head sits (Placement)"
                    a = f.image[..., 3:]
                    assert float(f.image.min()) >= 0 and float(f.image.max()) <= 1 + 1e-6
                    assert bool((f.image[..., :3] <= a + 1e-5).all()), "RGB must be premultiplied by alpha"
                    assert (f.depth is not None) == info.has_depth
                assert max(float(f.image[..., 3].max()) for f in frames) > 0.5, "the head is not visible"
                _assert_heads(frames, motion)

            def test_stream_equals_batch(self, plugin) -> None:
                motion = _motion_for(plugin, 9, seed=3)
                batch = plugin.render(motion)
                stream = plugin.open_stream()
                out: list[Frame] = []
                for a, b in [(0, 1), (1, 5), (5, 9)]:
                    out += stream.push(motion.slice(a, b))
                out += stream.finish()
                _assert_frames_equal(out, batch, atol)
                _assert_heads(out, motion)

            def test_render_views_at_given_cameras(self, plugin) -> None:
                info = plugin.info()
                motion = _motion_for(plugin, 4, seed=5)
                own_frames, own = _own_cameras(plugin, motion)
                w, h = max(8, info.size[0] * 3 // 4), max(8, info.size[1] * 3 // 4)
                cams = own.resized(w, h)
                # camera i moved i cm along its x axis: the scene, the neck base with it, moves by
                # i cm x px_per_metre to the right, so the placements show which camera was used
                dx = 0.01 * torch.arange(len(cams), dtype=torch.float64)
                shift = torch.zeros_like(cams.t)
                shift[:, 0] = dx.to(shift)
                cams = Cameras(cams.R, cams.t + shift, cams.K, w, h)
                frames = _views_or_skip(plugin, motion, cams)
                assert [f.index for f in frames] == list(range(motion.num_frames))
                for i, f in enumerate(frames):
                    assert f.pts == pytest.approx(f.index / motion.fps)
                    assert f.has_alpha and f.size == (w, h)
                    assert float(f.image.min()) >= 0 and float(f.image.max()) <= 1 + 1e-6
                    assert bool((f.image[..., :3] <= f.image[..., 3:] + 1e-5).all()), "RGB must be premultiplied by alpha"
                    assert (f.depth is not None) == info.has_depth
                    assert f.head is not None and f.head.camera is not None, "render_views frames carry their camera"
                    for key in ("R", "t", "K"):
                        torch.testing.assert_close(getattr(f.head.camera, key).cpu(), getattr(cams[i], key).cpu(),
                                                   msg=f"frame {i}: head.camera.{key} is not cameras[{i}]")
                    # the placement is the neck base projected through camera i (pinhole: exact)
                    o, sx, sy = own_frames[i].placement, w / info.size[0], h / info.size[1]
                    ppm = f.placement.px_per_metre
                    assert ppm == pytest.approx(o.px_per_metre * sx, rel=1e-3), f"frame {i}: px_per_metre"
                    expect = (o.anchor_xy[0] * sx + float(dx[i]) * ppm, o.anchor_xy[1] * sy)
                    assert f.placement.anchor_xy == pytest.approx(expect, abs=0.05), (
                        f"frame {i}: the neck base is not where cameras[{i}] sees it")
                assert max(float(f.image[..., 3].max()) for f in frames) > 0.5, "the head is not visible"
                _assert_heads(frames, motion)

            def test_render_views_through_own_cameras_is_render(self, plugin) -> None:
                motion = _motion_for(plugin, 4, seed=6)
                frames, own = _own_cameras(plugin, motion)
                views = _views_or_skip(plugin, motion, own)
                assert len(views) == len(frames)
                for v, f in zip(views, frames):
                    torch.testing.assert_close(v.image, f.image, atol=views_atol, rtol=0,
                                               msg=f"frame {f.index}: render_views through render's camera differs")

            def test_pose_only_motion(self, plugin) -> None:
                info = plugin.info()
                if not info.accepts_pose_only:
                    pytest.skip("does not accept pose-only motion")
                m = _motion_for(plugin, 2)
                frames = plugin.render(Motion.zeros(2, 0, fps=m.fps, space="another-space"))
                assert len(frames) == 2

    else:
        class Suite(Common):
            @pytest.fixture
            def heads(self) -> list[Frame]:
                """Head frames as a renderer without a 3-D camera gives them: HeadPose, camera None."""
                renderer = FakeRenderer(FakeRendererConfig(size=(96, 128)))
                return renderer.render(_motion_for(renderer, 6, seed=4), start_index=10)

            @pytest.fixture
            def heads_with_camera(self, heads) -> list[Frame]:
                """The same frames as a 3-D renderer gives them: each pose with its camera."""
                w, h = heads[0].size
                eye = torch.tensor([0.0, 0.05, 0.6])
                cam = Cameras.look_at(eye, torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), 25.0, w, h)
                return [replace(f, head=replace(f.head, camera=cam)) for f in heads]

            @pytest.mark.parametrize("which", ["heads", "heads_with_camera"])
            def test_batch_frames(self, plugin, which: str, request: pytest.FixtureRequest) -> None:
                heads: list[Frame] = request.getfixturevalue(which)
                assert all(isinstance(h.head, HeadPose) for h in heads)
                info = plugin.info()
                out = plugin.composite(heads)
                assert [f.index for f in out] == [h.index for h in heads]
                for f, h in zip(out, heads):
                    assert f.pts == h.pts and f.image.shape == (info.size[1], info.size[0], 3)
                    assert float(f.image.min()) >= 0 and float(f.image.max()) <= 1 + 1e-6

            def test_head_changes_the_picture(self, plugin, heads) -> None:
                empty = Frame(torch.zeros_like(heads[0].image), 0, 0.0, placement=heads[0].placement, head=heads[0].head)
                assert not torch.equal(plugin.composite([empty])[0].image, plugin.composite(heads[:1])[0].image)

            @pytest.mark.parametrize("which", ["heads", "heads_with_camera"])
            def test_stream_equals_batch(self, plugin, which: str, request: pytest.FixtureRequest) -> None:
                heads: list[Frame] = request.getfixturevalue(which)
                batch = plugin.composite(heads)
                stream = plugin.open_stream()
                out = stream.push(heads[:1]) + stream.push(heads[1:4]) + stream.push(heads[4:]) + stream.finish()
                _assert_frames_equal(out, batch, atol)

    Suite.__name__ = Suite.__qualname__ = f"Conformance_{contract}_{name or 'spec'}"
    return Suite

"""The conformance suite every method plugin runs against itself, in one line:

    from being_kernel.testing import conformance_suite
    TestConformance = conformance_suite("torso", "static")

``conformance_suite(contract, name, config)`` finds the installed plugin by its entry point (so
the registration is tested too) and returns a pytest class whose tests check the contract: the
static description, config strictness, shapes, frame counts and numbering, streaming equal to
batch, and teardown. Pass ``spec=`` instead of a name to test a plugin that is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from ..contracts import CONTRACTS
from ..discovery import Registry
from ..spec import KERNEL_API_VERSION, PluginSpec
from ..types import Audio, Frame, Motion
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
                      spec: PluginSpec | None = None, atol: float = 1e-5) -> type:
    """A pytest test class checking plugin ``name`` of ``contract`` ("audio", "avatar", "torso")
    built with ``config`` (a dict for its config model). ``atol``: allowed stream-vs-batch gap."""
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

            def test_stream_equals_batch(self, plugin) -> None:
                motion = _motion_for(plugin, 9, seed=3)
                batch = plugin.render(motion)
                stream = plugin.open_stream()
                out: list[Frame] = []
                for a, b in [(0, 1), (1, 5), (5, 9)]:
                    out += stream.push(motion.slice(a, b))
                out += stream.finish()
                _assert_frames_equal(out, batch, atol)

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
                renderer = FakeRenderer(FakeRendererConfig(size=(96, 128)))
                return renderer.render(_motion_for(renderer, 6, seed=4), start_index=10)

            def test_batch_frames(self, plugin, heads) -> None:
                info = plugin.info()
                out = plugin.composite(heads)
                assert [f.index for f in out] == [h.index for h in heads]
                for f, h in zip(out, heads):
                    assert f.pts == h.pts and f.image.shape == (info.size[1], info.size[0], 3)
                    assert float(f.image.min()) >= 0 and float(f.image.max()) <= 1 + 1e-6

            def test_head_changes_the_picture(self, plugin, heads) -> None:
                empty = Frame(torch.zeros_like(heads[0].image), 0, 0.0, placement=heads[0].placement)
                assert not torch.equal(plugin.composite([empty])[0].image, plugin.composite(heads[:1])[0].image)

            def test_stream_equals_batch(self, plugin, heads) -> None:
                batch = plugin.composite(heads)
                stream = plugin.open_stream()
                out = stream.push(heads[:1]) + stream.push(heads[1:4]) + stream.push(heads[4:]) + stream.finish()
                _assert_frames_equal(out, batch, atol)

    Suite.__name__ = Suite.__qualname__ = f"Conformance_{contract}_{name or 'spec'}"
    return Suite

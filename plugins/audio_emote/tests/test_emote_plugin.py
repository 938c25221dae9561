"""The plugin: frame-exact motion in the flame2020 space, streaming equal to batch bit for bit in
any chunking, the conditioning controls, windows, and PoseVAE head motion that follows the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from being_audio_emote.emote_config import PriorSizes, tiny
from being_audio_emote.plugin import EmoteAudio
from being_audio_emote.spec import EmoteConfig
from being_audio_emote.testing import random_audio2pose, random_emote
from being_kernel import ConfigError
from being_kernel.api import Audio, Motion


def _speechy(seconds: float, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    wav = 0.2 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(n)
    return Audio(wav.astype(np.float32), 16000)


def _plugin(assets: Path, **cfg) -> EmoteAudio:
    settings = {"weights": str(assets / "EMOTE_v2"), "pose_weights": str(assets), "device": "cpu", **cfg}
    return EmoteAudio(EmoteConfig(**settings))


def _streamed(plugin: EmoteAudio, audio: Audio, sizes: list[int]) -> Motion:
    stream, parts, at = plugin.open_stream(), [], 0
    for size in sizes:
        parts.append(stream.push(audio.samples[at:at + size]))
        at += size
    parts += [stream.push(audio.samples[at:]), stream.finish()]
    return Motion.cat(parts)


@pytest.mark.parametrize("window_s", [1.0, 10.0])
def test_stream_equals_batch_bit_for_bit(tiny_assets: Path, window_s: float) -> None:
    plugin = _plugin(tiny_assets, window_s=window_s, emotion="happy")
    audio = _speechy(2.71, seed=1)
    batch = plugin.generate(audio)
    assert batch.num_frames == audio.num_frames(25) == 68
    assert (batch.space, batch.n_expression, batch.fps) == ("flame2020", 100, 25.0)
    for sizes in ([1, 639, 3000, 9000], [16000], [640] * 60, [7]):
        streamed = _streamed(plugin, audio, sizes)
        for key, value in batch.tensors().items():
            assert torch.equal(getattr(streamed, key), value), (sizes, key)


def test_windows_and_controls(tiny_assets: Path) -> None:
    audio = _speechy(2.5, seed=2)
    whole = _plugin(tiny_assets, window_s=10.0).generate(audio)
    windowed = _plugin(tiny_assets, window_s=1.0).generate(audio)
    assert not torch.equal(whole.expression, windowed.expression)  # each window is its own clip
    happy = _plugin(tiny_assets, emotion="happy").generate(audio)
    strong = _plugin(tiny_assets, emotion="happy", intensity=0).generate(audio)
    other = _plugin(tiny_assets, style="M007").generate(audio)
    for variant in (happy, strong, other):
        assert not torch.allclose(variant.expression, whole.expression)
    assert torch.equal(_plugin(tiny_assets, style="3").generate(audio).jaw, _plugin(tiny_assets, style="M009").generate(audio).jaw)
    with pytest.raises(ConfigError, match="past the model's 4 training subjects"):
        _plugin(tiny_assets, style="W029")  # the tiny model has 4 identities; W029 is index 31
    with pytest.raises(ValueError, match="unknown emotion"):
        EmoteConfig(emotion="bored")


def test_head_motion_follows_the_seed_and_can_be_off(tiny_assets: Path) -> None:
    audio = _speechy(3.0, seed=3)
    a = _plugin(tiny_assets, seed=1).generate(audio)
    b = _plugin(tiny_assets, seed=2).generate(audio)
    again = _plugin(tiny_assets, seed=1).generate(audio)
    assert torch.equal(a.global_rot, again.global_rot) and not torch.allclose(a.global_rot, b.global_rot)
    assert torch.equal(a.jaw, b.jaw)  # the seed is PoseVAE's only
    assert float(a.global_rot.abs().max()) > 0 and float(a.translation.abs().max()) > 0
    still = _plugin(tiny_assets, pose="none", pose_weights=None).generate(audio)
    assert torch.equal(still.global_rot, torch.zeros_like(still.global_rot))
    assert torch.equal(still.jaw, a.jaw)


def test_emote_v1_fifty_components_and_6d_jaw() -> None:
    model = random_emote(tiny(n_exp=50).__class__(**{**tiny(n_exp=50).__dict__,
                                                         "prior": PriorSizes(**{**tiny(n_exp=50).prior.__dict__,
                                                                                "jaw_rep": "6d"})}))
    plugin = EmoteAudio(EmoteConfig(pose="none", device="cpu"), model=model)
    m = plugin.generate(_speechy(1.0))
    assert m.n_expression == 100 and torch.equal(m.expression[:, 50:], torch.zeros(25, 50))
    assert m.jaw.shape == (25, 3) and torch.isfinite(m.jaw).all() and float(m.jaw.norm(dim=1).max()) <= np.pi + 1e-5


def test_in_memory_models(tiny_assets: Path) -> None:
    plugin = EmoteAudio(EmoteConfig(device="cpu"), model=random_emote(seed=1), pose_model=random_audio2pose(seed=2))
    file_based = _plugin(tiny_assets)
    audio = _speechy(1.3)
    # the same weights; tensors loaded from a file may differ in memory layout, so the last bits may differ
    torch.testing.assert_close(plugin.generate(audio).global_rot, file_based.generate(audio).global_rot,
                               rtol=0, atol=1e-5)
    plugin.close()
    with pytest.raises(RuntimeError, match="closed"):
        plugin.open_stream()


@pytest.mark.gpu
def test_released_sizes_on_the_gpu(tmp_path: Path) -> None:
    """The released sizes with random weights, from files in the published layouts: 12 s of speech
    (two windows) on CUDA, streaming equal to batch, motion on the GPU."""
    from being_audio_emote.testing import write_random_assets

    root = write_random_assets(tmp_path)
    plugin = EmoteAudio(EmoteConfig(weights=str(root / "EMOTE_v2"), pose_weights=str(root), device="cuda",
                                    emotion="anger"))
    audio = _speechy(12.3, seed=7)
    batch = plugin.generate(audio)
    assert batch.num_frames == audio.num_frames(25) and batch.expression.device.type == "cuda"
    streamed = _streamed(plugin, audio, [16000] * 5 + [333])
    for key, value in batch.tensors().items():
        assert torch.equal(getattr(streamed, key), value), key

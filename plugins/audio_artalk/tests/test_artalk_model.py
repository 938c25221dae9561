"""The model and its post-processing: streaming equals batch bit for bit, Savitzky-Golay against
scipy, and the full-size model on a GPU."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import savgol_filter

from being_audio_artalk.config import PUBLISHED
from being_audio_artalk.plugin import ArtalkAudio
from being_audio_artalk.postprocess import smooth_frames, smoother
from being_audio_artalk.spec import ArtalkConfig
from being_audio_artalk.testing import write_random_weights
from being_kernel.api import Audio, Motion



def _plugin(directory: Path, **cfg) -> ArtalkAudio:
    return ArtalkAudio(ArtalkConfig(weights=str(directory), device=cfg.pop("device", "cpu"), **cfg))


def _speechy(seconds: float, seed: int = 0, rate: int = 16000) -> Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    voice = 0.3 * np.sin(2 * np.pi * 160 * t) + 0.05 * rng.standard_normal(len(t))
    x = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * voice
    return Audio(x.astype(np.float32), rate)


def _stream(plugin: ArtalkAudio, samples: np.ndarray, sizes: tuple[int, ...]) -> Motion:
    stream, parts, start, k = plugin.open_stream(), [], 0, 0
    while start < len(samples):
        parts.append(stream.push(samples[start:start + sizes[k % len(sizes)]]))
        start, k = start + sizes[k % len(sizes)], k + 1
    return Motion.cat(parts + [stream.finish()])


def _assert_identical(a: Motion, b: Motion) -> None:
    assert a.num_frames == b.num_frames
    for key, value in a.tensors().items():
        assert torch.equal(value, getattr(b, key)), key


@pytest.mark.parametrize("settings", [{"style": "natural_0"}, {"smooth": False, "fixed_pose": True}])
def test_streaming_is_bit_identical_to_batch(tiny_dir: Path, settings: dict) -> None:
    plugin = _plugin(tiny_dir, **settings)
    try:
        chunk = plugin.sizes.chunk_samples
        for seconds, chunkings in [(2.345, [(7, 333, 4000), (chunk,), (chunk + 1, 2 * chunk - 1), (10 ** 6,)]),
                                   (0.9, [(1,)]), (2 * chunk / 16000, [(chunk - 1, 5)])]:
            audio = _speechy(seconds, seed=1)
            batch = plugin.generate(audio)
            assert batch.num_frames == audio.num_frames(25)
            assert batch.expression.abs().max() > 0
            for sizes in chunkings:
                _assert_identical(_stream(plugin, audio.samples, sizes), batch)
    finally:
        plugin.close()


def test_stream_emits_each_chunk_once_complete(tiny_dir: Path) -> None:
    """Frames come out per chunk, 4 frames held back for the smoother; the rest at finish."""
    plugin = _plugin(tiny_dir)
    try:
        assert plugin.info().latency_s == pytest.approx(0.4 + 4 / 25)
        chunk, stream = plugin.sizes.chunk_samples, plugin.open_stream()
        assert stream.push(np.zeros(chunk - 1, np.float32)).num_frames == 0
        assert stream.push(np.zeros(1, np.float32)).num_frames == 10 - 4
        assert stream.push(np.zeros(chunk, np.float32)).num_frames == 10
        assert stream.finish().num_frames == 4
    finally:
        plugin.close()


def test_pose_post_processing_and_silence(tiny_dir: Path) -> None:
    free, fixed = _plugin(tiny_dir, style="natural_0"), _plugin(tiny_dir, style="natural_0", fixed_pose=True)
    try:
        audio = _speechy(1.3, seed=2)
        a, b = free.generate(audio), fixed.generate(audio)
        assert (a.jaw[:, 1:] == 0).all() and a.jaw[:, 0].abs().max() > 0
        assert a.global_rot.abs().max() > 0 and (b.global_rot == 0).all()
        assert torch.equal(a.expression, b.expression) and torch.equal(a.jaw, b.jaw)
        for name in ("neck", "eyes", "eyelids", "translation"):
            assert (getattr(a, name) == 0).all()
        assert (a.space, a.fps, a.n_expression) == ("flame2020", 25.0, 100)
        assert free.generate(Audio(np.zeros(0, np.float32), 16000)).num_frames == 0
        # 3 frames: no smoothing window fits, the raw frames come out (the published code raises)
        raw = _plugin(tiny_dir, style="natural_0", smooth=False)
        short = Audio(audio.samples[:1920], 16000)
        assert free.generate(short).num_frames == 3
        assert torch.equal(free.generate(short).expression, raw.generate(short).expression)
        assert not torch.equal(a.expression, raw.generate(audio).expression)  # smoothing does something
        raw.close()
    finally:
        free.close(), fixed.close()


def test_other_sample_rates_are_resampled(tiny_dir: Path) -> None:
    plugin = _plugin(tiny_dir)
    try:
        for rate in (22050, 44100, 8000):
            audio = _speechy(1.37, seed=3, rate=rate)
            m = plugin.generate(audio)
            assert m.num_frames == audio.num_frames(25) and torch.isfinite(m.expression).all()
    finally:
        plugin.close()


def test_bfloat16_runs_and_returns_float32(tiny_dir: Path) -> None:
    plugin = _plugin(tiny_dir, dtype="bfloat16", style="natural_0")
    try:
        assert plugin.model.pos_embed.dtype == torch.bfloat16
        assert plugin.model.basic_vae.motion_std.dtype == torch.float32  # statistics stay float32
        m = plugin.generate(_speechy(1.0))
        assert m.expression.dtype == torch.float32 and torch.isfinite(m.expression).all()
    finally:
        plugin.close()


def _published_savgol(motion: np.ndarray) -> np.ndarray:
    """inference.py's smooth_motion_savgol, with scipy. The input goes in as float64: the
    reference's scipy (1.14) fits the edge polynomials in float64 even for float32 input, newer
    scipy fits them in the input's precision (errors of 1e-5 at the edges)."""
    motion = motion.astype(np.float64)
    out = savgol_filter(motion, window_length=5, polyorder=2, axis=0)
    out[:, 100:103] = savgol_filter(motion[:, 100:103], window_length=9, polyorder=3, axis=0)
    return out.astype(np.float32)


def test_batch_is_the_published_composition(tiny_dir: Path) -> None:  # noqa: F811
    """generate == chunks of the model over zero-padded audio, cut to ceil(seconds x 25) frames,
    smoothed as a whole by scipy, jaw y/z zeroed, then cut to round(seconds x 25)."""
    plugin = _plugin(tiny_dir, style="natural_0")
    try:
        audio, size = _speechy(2.345, seed=6), plugin.sizes.chunk_samples
        x = torch.from_numpy(audio.samples)[None]
        x = torch.nn.functional.pad(x, (0, -x.shape[1] % size))
        with torch.no_grad():
            state, parts = plugin.model.initial_state(plugin.style), []
            for start in range(0, x.shape[1], size):
                motion, state = plugin.model.step(x[:, start:start + size], plugin.style, state)
                parts.append(motion[0])
        raw = torch.cat(parts)[:math.ceil(len(audio.samples) / 16000 * 25.0)]
        expected = torch.from_numpy(_published_savgol(raw.numpy()))[:audio.num_frames(25)]
        expected[:, 104:] = 0
        m = plugin.generate(audio)
        torch.testing.assert_close(torch.cat([m.expression, m.global_rot, m.jaw], dim=1), expected, rtol=0, atol=1e-6)
    finally:
        plugin.close()


@pytest.mark.parametrize("length", [9, 10, 57, 300])
def test_savgol_matches_scipy_and_streams_exactly(length: int) -> None:
    rng = np.random.default_rng(length)
    raw = torch.from_numpy(rng.standard_normal((length, 106)).astype(np.float32))
    whole = smooth_frames(raw, 0, torch.arange(length), length)
    torch.testing.assert_close(whole, torch.from_numpy(_published_savgol(raw.numpy())), rtol=0, atol=1e-6)
    # streamed in uneven pieces, the last piece cut short as a padded final chunk is
    extra = torch.from_numpy(rng.standard_normal((7, 106)).astype(np.float32))
    smoother_, parts, start = smoother(True, torch.device("cpu")), [], 0
    cut = max(length - 13, 0)
    for size in (3, 1, 10, 4):
        if start < cut:
            parts.append(smoother_.push(raw[start:min(cut, start + size)]))
            start = min(cut, start + size)
    parts.append(smoother_.finish(torch.cat([raw[start:], extra]), length))
    assert torch.equal(torch.cat(parts), whole)


def test_savgol_short_sequences_skip_windows_that_do_not_fit() -> None:
    raw = torch.randn(7, 106)
    out = smooth_frames(raw, 0, torch.arange(7), 7)  # the 9-wide rotation filter does not fit
    expected = savgol_filter(raw.double().numpy(), window_length=5, polyorder=2, axis=0)
    torch.testing.assert_close(out, torch.from_numpy(expected).float(), rtol=0, atol=1e-6)
    assert torch.equal(smooth_frames(raw[:4], 0, torch.arange(4), 4), raw[:4])


@pytest.mark.gpu
def test_full_size_model_on_the_gpu(tmp_path: Path) -> None:
    """The published sizes with random weights: strict load from a real file, 10 s of audio in
    fp32 and bf16, streaming equal to batch."""
    directory = write_random_weights(tmp_path / "full", sizes=PUBLISHED)
    audio = _speechy(10.3, seed=4)
    for dtype in ("float32", "bfloat16"):
        plugin = _plugin(directory, device="cuda", dtype=dtype, style="natural_0")
        try:
            assert plugin.sizes == PUBLISHED and plugin.info().latency_s == pytest.approx(4.16)
            batch = plugin.generate(audio)
            assert batch.num_frames == audio.num_frames(25) and batch.expression.is_cuda
            assert torch.isfinite(batch.expression).all() and torch.isfinite(batch.global_rot).all()
            _assert_identical(_stream(plugin, audio.samples, (16000, 12345)), batch)
        finally:
            plugin.close()


@pytest.mark.gpu
def test_published_weights_if_present() -> None:
    """With the real weights in $BEING_ARTALK_DIR or the Hugging Face cache: strict load, natural_0."""
    from being_audio_artalk.weights import find_weights

    try:
        files = find_weights(None)
    except Exception:  # noqa: BLE001 - absent weights skip the test
        pytest.skip("ARTalk weights not installed")
    plugin = ArtalkAudio(ArtalkConfig(style="natural_0" if files.style_dir else None, device="cuda"))
    try:
        m = plugin.generate(_speechy(5.0))
        assert m.num_frames == 125 and torch.isfinite(m.expression).all()
        assert m.jaw[:, 0].std() > 0  # the mouth moves
    finally:
        plugin.close()


@pytest.mark.gpu
def test_matches_the_reference_code() -> None:
    """With ARTALK_REFERENCE set to a checkout of github.com/xg-chu/ARTalk (and einops and
    transformers installed): the full model against the reference on shared random weights."""
    checkout = os.environ.get("ARTALK_REFERENCE")
    if not checkout:
        pytest.skip("set ARTALK_REFERENCE to a checkout of github.com/xg-chu/ARTalk")
    pytest.importorskip("einops")
    pytest.importorskip("transformers")
    path = Path(__file__).resolve().parents[1] / "tools" / "compare_reference.py"
    spec = importlib.util.spec_from_file_location("artalk_compare_reference", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for style in (True, False):
        diffs = tool.compare(Path(checkout), torch.device("cuda"), seconds=9.0, seed=0, style=style)
        assert diffs["motion scale"] > 0.1, diffs
        for name in ("wav2vec features", "style vector", "raw motion", "post-processed motion"):
            assert diffs.get(name, 0.0) < 1e-4, (name, diffs)

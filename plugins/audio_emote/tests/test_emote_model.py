"""EMOTE's pieces against independent oracles: the temporal biases against their definition in
the public code (TransformerMasking.py) and ALiBi's analytic slopes, the resampled wav2vec against
transformers' own modules composed as inferno's Wav2Vec2ModelResampled composes them, and the
processor normalisation against transformers' feature extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from being_audio_emote.emote_config import tiny
from being_audio_emote.emote_model import AudioModel, alibi_slopes, temporal_bias
from being_audio_emote.plugin import normalise
from being_audio_emote.testing import random_emote


def test_alibi_slopes_are_the_papers() -> None:
    assert alibi_slopes(8) == [2.0 ** -k for k in range(1, 9)]
    assert alibi_slopes(6) == [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 2.0 ** -1, 2.0 ** -3]


def _published_bias(heads: int, max_len: int, period: int) -> torch.Tensor:
    """TransformerMasking.py's *_future masks as it builds them: a ramp of max_len values that steps
    down every `period`, laid into the lower triangle row by row (row i takes the ramp's last i + 1
    values), scaled per head and added to its flip over both axes."""
    steps = [-((max_len - 1 - k) // period) for k in range(max_len)]  # the flipped, period-held ramp
    lower = torch.zeros(max_len, max_len)
    for i in range(max_len):
        lower[i, :i + 1] = torch.tensor(steps[max_len - (i + 1):], dtype=torch.float32)
    lower = torch.tensor(alibi_slopes(heads))[:, None, None] * lower[None]
    return lower + torch.flip(lower, [1, 2])


@pytest.mark.parametrize("kind, period", [("faceformer_future", 30), ("alibi_future", 1)])
def test_temporal_bias_is_the_published_mask_cut_to_length(kind: str, period: int) -> None:
    reference = _published_bias(8, 1200, period)  # both decoders build 1200 rows and cut [:T, :T]
    for length in (1, 37, 250):
        torch.testing.assert_close(temporal_bias(kind, 8, length, period), reference[:, :length, :length],
                                   rtol=0, atol=0)
    assert temporal_bias("none", 8, 10) is None


def test_resampled_wav2vec_matches_transformers_modules() -> None:
    transformers = pytest.importorskip("transformers")
    sizes = tiny()
    w = sizes.wav2vec
    config = transformers.Wav2Vec2Config(
        hidden_size=w.hidden, num_hidden_layers=w.layers, num_attention_heads=w.heads, intermediate_size=w.intermediate,
        conv_dim=w.conv_dim, conv_kernel=w.conv_kernel, conv_stride=w.conv_stride, conv_bias=w.conv_bias,
        feat_extract_norm=w.feat_norm, do_stable_layer_norm=w.stable_layer_norm, num_conv_pos_embeddings=w.pos_kernel,
        num_conv_pos_embedding_groups=w.pos_groups)
    torch.manual_seed(0)
    reference = transformers.Wav2Vec2Model(config).eval()
    ours = AudioModel(sizes).eval()
    ours.model.load_state_dict(reference.state_dict(), strict=True)
    audio = torch.randn(1, 640 * 23 + 17)
    with torch.no_grad():
        feats = reference.feature_extractor(audio).transpose(1, 2)  # Wav2Vec2ModelResampled.forward, step by step
        feats = F.interpolate(feats.transpose(1, 2), size=23, align_corners=True, mode="linear").transpose(1, 2)
        hidden, _ = reference.feature_projection(feats)
        expected = reference.encoder(hidden).last_hidden_state
        got = ours(audio, 23)
    assert got.shape == (1, 23, w.hidden)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_normalisation_is_the_processors() -> None:
    transformers = pytest.importorskip("transformers")
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=16000)  # base-960h's settings
    wav = (0.1 * np.random.default_rng(1).standard_normal(9000)).astype(np.float32)  # |x| < 1: no int16 wrap-around
    int16 = (wav.astype(np.float64) * 32768.0).astype(np.int16)  # what the demo hands the processor
    expected = extractor(int16.astype(np.float32), sampling_rate=16000, return_tensors="np").input_values[0]
    # the demo's int16 truncation is the only difference: under two int16 steps, 1 / 3277 each of this
    # signal's standard deviation after normalisation
    np.testing.assert_allclose(normalise(wav), expected, rtol=0, atol=2 / 3277)
    np.testing.assert_allclose(normalise(int16.astype(np.float32) / 32768.0), expected, rtol=0, atol=1e-5)


def test_style_changes_the_motion() -> None:
    model = random_emote(seed=3)
    audio = torch.randn(1, 640 * 30)
    with torch.no_grad():
        a = model(audio, 30, model.condition(1, 2, 0, 1))
        b = model(audio, 30, model.condition(6, 2, 0, 1))
    assert a.shape == (1, 30, 103) and not torch.allclose(a, b)


def test_demo_framing_reproduces_the_pad_quirk() -> None:
    from being_audio_emote.demo_framing import demo_samples

    wav = np.full(640 * 3 + 500, 0.25, np.float32)  # 3 whole frames and a tail the demo drops
    samples, frames = demo_samples(wav)
    assert frames == 4 and samples.shape == (4 * 641,)  # np.pad((0, 1)) on [3, 640]: one more row and column
    grid = samples.reshape(4, 641)
    assert (grid[:3, :640] == 8192).all() and (grid[:, 640] == 0).all() and (grid[3] == 0).all()
    wrapped, _ = demo_samples(np.full(640, 1.0, np.float32))
    assert wrapped[0] == -32768  # full scale wraps around in the int16 cast

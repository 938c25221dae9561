"""The kernel's wav2vec 2.0 against ``transformers.Wav2Vec2Model`` (the independent oracle), in
both published variants: xls-r (layer-normed convs, pre-norm layers) and base (group norm,
post-norm layers)."""

from __future__ import annotations

import pytest
import torch

from being_kernel.audio import BASE_960H, XLSR_300M, Wav2Vec2, Wav2VecSizes, canonical_weight_norm, tiny_sizes


def _reference(s: Wav2VecSizes):  # noqa: ANN202 - a transformers model
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=s.hidden, num_hidden_layers=s.layers, num_attention_heads=s.heads, intermediate_size=s.intermediate,
        conv_dim=s.conv_dim, conv_kernel=s.conv_kernel, conv_stride=s.conv_stride, conv_bias=s.conv_bias,
        feat_extract_norm=s.feat_norm, do_stable_layer_norm=s.stable_layer_norm, num_conv_pos_embeddings=s.pos_kernel,
        num_conv_pos_embedding_groups=s.pos_groups, mask_time_prob=0.05, hidden_act="gelu",
        feat_extract_activation="gelu")
    torch.manual_seed(0)
    model = transformers.Wav2Vec2Model(config).eval()
    with torch.no_grad():  # give every parameter a non-trivial value
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("base", [XLSR_300M, BASE_960H], ids=["xls-r", "base"])
def test_matches_transformers(base: Wav2VecSizes) -> None:
    s = tiny_sizes(base)
    reference = _reference(s)
    ours = Wav2Vec2(s).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    audio = torch.randn(2, 16000)
    with torch.no_grad():
        out = reference(audio)
        got = ours.encode(audio)
        feats = ours.features(audio)
    assert got.shape == (2, s.frames(16000), 32) == (2, 49, 32)
    torch.testing.assert_close(got, out.last_hidden_state, rtol=1e-5, atol=1e-5)
    # transformers' extract_features is the conv output after the projection's LayerNorm
    torch.testing.assert_close(ours.feature_projection.layer_norm(feats), out.extract_features, rtol=1e-5, atol=1e-5)


def test_variants_differ() -> None:
    """The two variants are different functions of the same-shaped weights where they share them."""
    torch.manual_seed(0)
    a, b = Wav2Vec2(tiny_sizes(XLSR_300M)).eval(), Wav2Vec2(tiny_sizes(BASE_960H)).eval()
    shared = {k: v for k, v in a.state_dict().items() if k in b.state_dict() and v.shape == b.state_dict()[k].shape}
    b.load_state_dict(shared, strict=False)
    audio = torch.randn(1, 8000)
    with torch.no_grad():
        assert not torch.allclose(a.encode(audio), b.encode(audio))


@pytest.mark.parametrize("sizes", [XLSR_300M, BASE_960H], ids=["xls-r-300m", "base-960h"])
def test_published_layouts(sizes: Wav2VecSizes) -> None:
    """Every tensor name and shape of the full-size models, against transformers' defaults for
    base (Wav2Vec2Config() is facebook/wav2vec2-base) and the xls-r-300m config values."""
    transformers = pytest.importorskip("transformers")
    extra = {} if sizes is BASE_960H else dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, conv_bias=True,
        feat_extract_norm="layer", do_stable_layer_norm=True)
    with torch.device("meta"):
        reference = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**extra)).state_dict()
        ours = Wav2Vec2(sizes).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    if sizes is BASE_960H:
        assert len(ours) == 211 and sum(v.numel() for v in ours.values()) == 94_371_712


def test_old_weight_norm_names_are_mapped() -> None:
    state = {"m.encoder.pos_conv_embed.conv.weight_g": torch.ones(1), "m.encoder.pos_conv_embed.conv.weight_v": torch.ones(2),
             "m.encoder.layer_norm.weight": torch.ones(3)}
    assert sorted(canonical_weight_norm(state, "m.")) == [
        "m.encoder.layer_norm.weight", "m.encoder.pos_conv_embed.conv.parametrizations.weight.original0",
        "m.encoder.pos_conv_embed.conv.parametrizations.weight.original1"]

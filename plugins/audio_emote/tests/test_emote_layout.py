"""EMOTE built from the released configuration values has exactly the published tensors, and the
configuration is read from the model's own cfg.yaml."""

from __future__ import annotations

import pytest
import torch

from being_audio_emote.emote_config import EmoteSizes, PriorSizes, sizes_from_cfg, sizes_to_cfg, tiny
from being_audio_emote.emote_model import EmoteModel
from being_kernel import InputError

D, L, P = 256, 128, "sequence_decoder."  # the decoder's width (128 features | 128 style), FLINT's, the prefix
PRIOR = P + "motion_prior.motion_decoder."


def _encoder_layer(prefix: str, width: int, feedforward: int) -> dict[str, list[int]]:
    """torch.nn.TransformerEncoderLayer's tensors (the layout both decoders use)."""
    return {prefix + "self_attn.in_proj_weight": [3 * width, width], prefix + "self_attn.in_proj_bias": [3 * width],
            prefix + "self_attn.out_proj.weight": [width, width], prefix + "self_attn.out_proj.bias": [width],
            prefix + "linear1.weight": [feedforward, width], prefix + "linear1.bias": [feedforward],
            prefix + "linear2.weight": [width, feedforward], prefix + "linear2.bias": [width],
            prefix + "norm1.weight": [width], prefix + "norm1.bias": [width],
            prefix + "norm2.weight": [width], prefix + "norm2.bias": [width]}


def _batch_norm(prefix: str, c: int) -> dict[str, list[int]]:
    return {prefix + "weight": [c], prefix + "bias": [c], prefix + "running_mean": [c], prefix + "running_var": [c],
            prefix + "num_batches_tracked": []}


def published_network(n_exp: int) -> dict[str, list[int]]:
    """The network tensors of a released EMOTE checkpoint besides wav2vec, from the public code
    (inferno: FaceFormer, LinearSequenceEncoder, BertPriorDecoder with LinearEmotionCondition,
    StackLinearSquash and FLINT's L2lDecoder) under the released configuration
    (talkinghead_conf bertprior_wild with the stage-1 overrides: feature_dim 128, nhead 8, 1 layer,
    style_op cat, emotion 8 + intensity 3 + 32 MEAD identities; FLINT as train_flint.py finally sets it
    on l2l_decoder_post_proj.yaml: feature_dim 128, intermediate 384, nhead 8, 1 layer, quant_factor 3,
    post_transformer_proj, sequence_components exp + jaw aa)."""
    layout = {"sequence_encoder.linear.weight": [128, 768], "sequence_encoder.linear.bias": [128],
              P + "obj_vector.map.weight": [128, 8 + 3 + 32], P + "obj_vector.map.bias": [128]}
    layout |= _encoder_layer(P + "bert_decoder.layers.0.", D, D)
    layout |= {P + "decoder.weight": [L, D], P + "decoder.bias": [L],
               P + "squasher_2.linear.weight": [L, L * 8], P + "squasher_2.linear.bias": [L]}
    layout |= {PRIOR + "expander.0.0.weight": [L, L, 5], PRIOR + "expander.0.0.bias": [L]}  # ConvTranspose1d
    layout |= _batch_norm(PRIOR + "expander.0.2.", L)
    for i in (1, 2):  # quant_factor - 1 convolutions
        layout |= {PRIOR + f"expander.{i}.0.weight": [L, L, 5], PRIOR + f"expander.{i}.0.bias": [L]}
        layout |= _batch_norm(PRIOR + f"expander.{i}.2.", L)
    layout |= _encoder_layer(PRIOR + "decoder_transformer.layers.0.", L, 384)
    layout |= {PRIOR + "decoder_linear_embedding.weight": [L, L], PRIOR + "decoder_linear_embedding.bias": [L],
               PRIOR + "post_transformer_linear.weight": [L, L], PRIOR + "post_transformer_linear.bias": [L],
               PRIOR + "cross_smooth_layer.weight": [n_exp + 3, L, 5], PRIOR + "cross_smooth_layer.bias": [n_exp + 3]}
    return layout


@pytest.mark.parametrize("n_exp", [100, 50], ids=["EMOTE_v2", "EMOTE"])
def test_released_sizes_give_the_published_tensors(n_exp: int) -> None:
    transformers = pytest.importorskip("transformers")
    sizes = EmoteSizes(prior=PriorSizes(n_exp=n_exp))
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in EmoteModel(sizes).state_dict().items()}
        # the audio model: transformers' Wav2Vec2Model of facebook/wav2vec2-base-960h (Wav2Vec2Config's defaults)
        wav2vec = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).state_dict()
    expected = {f"audio_model.model.{k}": list(v.shape) for k, v in wav2vec.items()} | published_network(n_exp)
    assert ours == expected


def test_cfg_round_trip_and_the_released_values() -> None:
    for sizes in (EmoteSizes(), EmoteSizes(prior=PriorSizes(n_exp=50, jaw_rep="6d")), tiny()):
        assert sizes_from_cfg(sizes_to_cfg(sizes)) == sizes
    released = sizes_from_cfg(sizes_to_cfg(EmoteSizes()))
    assert (released.model_dim, released.condition_dim, released.prior.latent_frames, released.prior.out_dim) == \
        (256, 43, 8, 103)


@pytest.mark.parametrize("key, value, match", [
    ("style_op", "add_twice", "style_op = 'add_twice'"),
    ("post_bug_fix", False, "post_bug_fix = False"),
    ("temporal_bias_type", "alibi", "temporal_bias_type = 'alibi'"),
    ("squash_type", "conv", "squash_type = 'conv'"),
])
def test_unsupported_variants_are_refused_by_key(key: str, value: object, match: str) -> None:
    cfg = sizes_to_cfg(EmoteSizes())
    cfg["model"]["sequence_decoder"][key] = value
    with pytest.raises(InputError, match=match):
        sizes_from_cfg(cfg)


def test_a_cfg_without_the_prior_needs_the_prior_cfg() -> None:
    cfg = sizes_to_cfg(EmoteSizes())
    prior = cfg["model"]["sequence_decoder"]["motion_prior"].pop("cfg")
    with pytest.raises(InputError, match="motion prior's configuration is not embedded"):
        sizes_from_cfg(cfg)
    assert sizes_from_cfg(cfg, prior_cfg=prior) == EmoteSizes()

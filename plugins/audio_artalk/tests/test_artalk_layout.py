"""The published checkpoint layout, config.json parsing, and strict loading of checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from being_audio_artalk.config import PUBLISHED, read_sizes, sizes_from_json, sizes_to_json, tiny
from being_audio_artalk.model import ArtalkModel
from being_audio_artalk.testing import random_model
from being_audio_artalk.weights import CHECKPOINT, load_model
from being_kernel import InputError


# The published config.json (xg-chu/ARTalk, 303 bytes), verbatim in content.
PUBLISHED_CONFIG = {
    "AR_CONFIG": {"T_DEPTH": 12, "T_NUM_HEADS": 12, "PREV_RATIO": 1},
    "VAE_CONFIG": {"MOTION_DIM": 106, "V_CODE_DIM": 32, "T_DEPTH": 8, "T_NUM_HEADS": 8, "T_HIDDEN_DIM": 512,
                   "V_PATCH_NUMS": [1, 5, 25, 50, 100]},
}


def published_layout() -> dict[str, tuple[int, ...]]:
    """Every tensor of ARTalk_wav2vec.pt and its shape, from the public code (artalk/models.py,
    artalk/transformer.py, artalk/modules/*.py, and transformers' Wav2Vec2Model built from the
    facebook/wav2vec2-xls-r-300m config): 814 tensors."""
    t: dict[str, tuple[int, ...]] = {
        "null_style_cond": (1, 1, 768), "pos_embed": (1, 181, 768), "prev_pos_embed": (1, 181, 768),
        "attn_bias_for_masking": (1, 1, 181, 362), "lvl_idx": (1, 181), "lvl_embed.weight": (5, 768),
        "vqfeat_embed.weight": (768, 32), "vqfeat_embed.bias": (768,),
        "style_cond_embed.weight": (768, 128), "style_cond_embed.bias": (768,),
        "cond_logits_head.ada_lin.1.weight": (1536, 1024), "cond_logits_head.ada_lin.1.bias": (1536,),
        "logits_head.weight": (64, 768), "logits_head.bias": (64,),
    }
    block = {"attn.scale_mul_1H11": (1, 12, 1, 1), "attn.query.weight": (768, 768), "attn.query.bias": (768,),
             "attn.key.weight": (768, 768), "attn.value.weight": (768, 768), "attn.value.bias": (768,),
             "attn.proj.weight": (768, 768), "attn.proj.bias": (768,), "ffn.0.weight": (3072, 768),
             "ffn.0.bias": (3072,), "ffn.2.weight": (768, 3072), "ffn.2.bias": (768,),
             "ada_lin.1.weight": (4608, 1024), "ada_lin.1.bias": (4608,)}
    for i in range(12):
        t.update({f"attn_blocks.{i}.{k}": s for k, s in block.items()})
    # basic_vae: BITWISE_VAE with TransformerEncoder/Decoder of 8 (attention, mlp) pairs
    t.update({"basic_vae.attn_mask": (1, 1, 200, 200), "basic_vae.enc_pos_embed": (1, 200, 106),
              "basic_vae.dec_pos_embed": (1, 200, 32), "basic_vae.motion_mean": (106,), "basic_vae.motion_std": (106,),
              "basic_vae.encoder.inp_mapping.0.weight": (512, 106), "basic_vae.encoder.inp_mapping.0.bias": (512,),
              "basic_vae.encoder.code_mapping.weight": (32, 512), "basic_vae.encoder.code_mapping.bias": (32,),
              "basic_vae.decoder.inp_mapping.0.weight": (512, 32), "basic_vae.decoder.inp_mapping.0.bias": (512,),
              "basic_vae.decoder.out_mapping.weight": (106, 512), "basic_vae.decoder.out_mapping.bias": (106,)})
    attention = {"norm.weight": (512,), "norm.bias": (512,), "to_qkv.weight": (1536, 512),
                 "to_out.weight": (512, 512), "to_out.bias": (512,)}
    mlp = {"0.weight": (768, 512), "0.bias": (768,), "2.weight": (512, 768), "2.bias": (512,)}
    for part, blocks in (("encoder", "encoder_transformer"), ("decoder", "decoder_transformer")):
        for i in range(8):
            t.update({f"basic_vae.{part}.{blocks}.{2 * i}.{k}": s for k, s in attention.items()})
            t.update({f"basic_vae.{part}.{blocks}.{2 * i + 1}.{k}": s for k, s in mlp.items()})
    # style_encoder: Linear(106, 128) + nn.TransformerEncoder(4 x d_model 128, FFN 512)
    t.update({"style_encoder.motion_mean": (106,), "style_encoder.motion_std": (106,),
              "style_encoder.PE.pe": (1, 600, 128),
              "style_encoder.encoder.motion_proj.weight": (128, 106), "style_encoder.encoder.motion_proj.bias": (128,)})
    layer = {"self_attn.in_proj_weight": (384, 128), "self_attn.in_proj_bias": (384,),
             "self_attn.out_proj.weight": (128, 128), "self_attn.out_proj.bias": (128,),
             "linear1.weight": (512, 128), "linear1.bias": (512,), "linear2.weight": (128, 512), "linear2.bias": (128,),
             "norm1.weight": (128,), "norm1.bias": (128,), "norm2.weight": (128,), "norm2.bias": (128,)}
    for i in range(4):
        t.update({f"style_encoder.encoder.transformer.layers.{i}.{k}": s for k, s in layer.items()})
    # audio_encoder: Wav2Vec2Model(xls-r-300m): layer-norm conv features with bias, stable layer norm
    a = "audio_encoder."
    t.update({a + "masked_spec_embed": (1024,),
              a + "feature_projection.layer_norm.weight": (512,), a + "feature_projection.layer_norm.bias": (512,),
              a + "feature_projection.projection.weight": (1024, 512),
              a + "feature_projection.projection.bias": (1024,),
              a + "encoder.pos_conv_embed.conv.bias": (1024,),
              a + "encoder.pos_conv_embed.conv.parametrizations.weight.original0": (1, 1, 128),
              a + "encoder.pos_conv_embed.conv.parametrizations.weight.original1": (1024, 64, 128),
              a + "encoder.layer_norm.weight": (1024,), a + "encoder.layer_norm.bias": (1024,)})
    for i, k in enumerate((10, 3, 3, 3, 3, 2, 2)):
        c = f"{a}feature_extractor.conv_layers.{i}."
        t.update({c + "conv.weight": (512, 1 if i == 0 else 512, k), c + "conv.bias": (512,),
                  c + "layer_norm.weight": (512,), c + "layer_norm.bias": (512,)})
    w2v_layer = {f"attention.{p}_proj.{w}": (1024, 1024) if w == "weight" else (1024,)
                 for p in ("k", "v", "q", "out") for w in ("weight", "bias")}
    w2v_layer.update({"layer_norm.weight": (1024,), "layer_norm.bias": (1024,), "final_layer_norm.weight": (1024,),
                      "final_layer_norm.bias": (1024,), "feed_forward.intermediate_dense.weight": (4096, 1024),
                      "feed_forward.intermediate_dense.bias": (4096,), "feed_forward.output_dense.weight": (1024, 4096),
                      "feed_forward.output_dense.bias": (1024,)})
    for i in range(24):
        t.update({f"{a}encoder.layers.{i}.{k}": s for k, s in w2v_layer.items()})
    return t


def test_published_config_gives_the_published_layout() -> None:
    sizes = sizes_from_json(PUBLISHED_CONFIG)
    assert sizes == PUBLISHED
    with torch.device("meta"):
        model = ArtalkModel(sizes)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = published_layout()
    assert len(expected) == 814
    assert sorted(set(got) - set(expected)) == [] and sorted(set(expected) - set(got)) == []
    assert [k for k in expected if got[k] != expected[k]] == []
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    assert dtypes.pop("lvl_idx") == torch.int64 and set(dtypes.values()) == {torch.float32}
    # buffers are the tensors the reference registers with register_buffer, all persistent
    assert {k for k, _ in model.named_buffers()} == {
        "attn_bias_for_masking", "lvl_idx", "basic_vae.attn_mask", "basic_vae.motion_mean", "basic_vae.motion_std",
        "style_encoder.motion_mean", "style_encoder.motion_std", "style_encoder.PE.pe"}


def test_config_json_round_trip_and_published_file_unchanged(tmp_path: Path) -> None:
    assert sizes_to_json(PUBLISHED) == PUBLISHED_CONFIG  # no "being" object for the published sizes
    small = tiny()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(sizes_to_json(small)))
    assert read_sizes(path) == small
    assert read_sizes(None) == PUBLISHED
    for bad in ({"AR_CONFIG": {}}, {**PUBLISHED_CONFIG, "being": {"ar": {"wdith": 3}}},
                {**PUBLISHED_CONFIG, "AR_CONFIG": {"AUDIO_ENCODER": "mimi"}}):
        with pytest.raises(InputError):
            sizes_from_json(bad)


def _save(state: dict, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / CHECKPOINT)
    return directory / CHECKPOINT


def test_random_checkpoint_round_trips_through_a_strict_load(tmp_path: Path) -> None:
    model = random_model(tiny(), seed=3)
    path = _save(model.state_dict(), tmp_path)
    loaded = load_model(path, tiny(), torch.device("cpu"))
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_old_weight_norm_names_are_accepted(tmp_path: Path) -> None:
    """Checkpoints saved with the weight_norm hook name the positional conv weight_g / weight_v."""
    state = random_model(tiny(), seed=4).state_dict()
    prefix = "audio_encoder.encoder.pos_conv_embed.conv."
    old = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}
    renamed = {}
    for key, value in state.items():
        for new, legacy in old.items():
            key = key.replace(new, legacy)
        renamed[key] = value
    assert prefix + "weight_g" in renamed
    loaded = load_model(_save(renamed, tmp_path), tiny(), torch.device("cpu")).state_dict()
    assert torch.equal(loaded[prefix + "parametrizations.weight.original1"], renamed[prefix + "weight_v"])


def test_wrong_keys_and_shapes_name_the_first_mismatches(tmp_path: Path) -> None:
    state = random_model(tiny()).state_dict()
    del state["basic_vae.motion_std"]
    state["extra.weight"] = torch.zeros(2)
    state["logits_head.bias"] = torch.zeros(3)
    with pytest.raises(InputError) as err:
        load_model(_save(state, tmp_path), tiny(), torch.device("cpu"))
    line = err.value.one_line()
    assert "\n" not in line
    assert "missing basic_vae.motion_std" in line and "unexpected extra.weight" in line
    assert "logits_head.bias has shape [3], expected [16]" in line
    # the published sizes against a tiny checkpoint: hundreds of problems, the first few shown
    with pytest.raises(InputError, match=r"and \d+ more"):
        load_model(tmp_path / CHECKPOINT, PUBLISHED, torch.device("cpu"))


def test_unreadable_checkpoint_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT).write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable PyTorch state dict"):
        load_model(tmp_path / CHECKPOINT, tiny(), torch.device("cpu"))

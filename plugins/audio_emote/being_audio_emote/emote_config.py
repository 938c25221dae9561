"""EMOTE's hyper-parameters, read from the model's own ``cfg.yaml`` (the OmegaConf file beside
``checkpoints/`` in the released ``TalkingHead/models/EMOTE*`` folders), and the conditioning
vocabulary the demo uses.

Only the values that shape the network are read; every one is named by its key in the published
configuration (``model.audio``, ``model.sequence_encoder``, ``model.sequence_decoder`` and, inside
it, the FLINT motion prior's own config ``motion_prior.cfg``). A value the released code hard-codes
is a default here; a configuration that asks for a variant this implementation does not have is
refused with the key and value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from being_kernel import InputError
from being_kernel.audio import BASE_960H, Wav2VecSizes


SAMPLE_RATE = 16000
FPS = 25.0
SAMPLES_PER_FRAME = 640

#: the MEAD training subjects of the released models' split (random_by_identityV2_sorted_70_15_15),
#: in index order (the identity one-hot); the demo's ``training_ids``
MEAD_TRAINING_SUBJECTS = (
    "M003", "M005", "M007", "M009", "M011", "M012", "M013", "M019", "M022", "M023", "M024", "M025", "M026", "M027",
    "M028", "M029", "M030", "M031", "W009", "W011", "W014", "W015", "W016", "W018", "W019", "W021", "W023", "W024",
    "W025", "W026", "W028", "W029",
)
WAV2VEC_SPECIFIER = "facebook/wav2vec2-base-960h"


@dataclass(frozen=True)
class PriorSizes:
    """FLINT, the motion prior's decoder (inferno's ``L2lDecoder``), as its config sets it; the
    defaults are FLINTv2's (train_flint.py's final setting on l2l_decoder_post_proj.yaml)."""

    feature_dim: int = 128  # also the latent (bottleneck) width
    intermediate: int = 384
    heads: int = 8
    layers: int = 1
    quant_factor: int = 3  # the latent runs at 25 / 2^3 fps
    temporal_bias: str = "alibi_future"
    post_transformer_proj: bool = True
    conv_smooth: bool = True
    post_conv_proj: bool = False
    n_exp: int = 100  # sequence_components.exp
    jaw_rep: str = "aa"  # rotation_representation: "aa" (3) or "6d" (6)

    @property
    def latent_frames(self) -> int:
        """Motion frames per latent frame."""
        return 2 ** self.quant_factor

    @property
    def jaw_dim(self) -> int:
        return 3 if self.jaw_rep == "aa" else 6

    @property
    def out_dim(self) -> int:
        return self.n_exp + self.jaw_dim


@dataclass(frozen=True)
class EmoteSizes:
    """The talking-head network (inferno's ``FaceFormer`` with a ``BertPriorDecoder``)."""

    wav2vec: Wav2VecSizes = BASE_960H
    feature_dim: int = 128  # sequence encoder output and style width
    heads: int = 8
    layers: int = 1
    period: int = 30  # the faceformer_future bias's period (the only bias this implementation has)
    style_op: str = "cat"
    n_emotions: int = 8
    n_intensities: int = 3
    n_identities: int = 32
    style_bias: bool = True
    max_len: int = 1200  # rows of the temporal bias the released code builds: the longest window
    prior: PriorSizes = field(default_factory=PriorSizes)

    @property
    def model_dim(self) -> int:
        return self.feature_dim * (2 if self.style_op == "cat" else 1)

    @property
    def condition_dim(self) -> int:
        return self.n_emotions + self.n_intensities + self.n_identities


def tiny(n_exp: int = 100) -> EmoteSizes:
    """The same architecture at a size that runs in milliseconds on a CPU, for tests."""
    from being_kernel.audio import tiny_sizes

    return EmoteSizes(wav2vec=tiny_sizes(BASE_960H), feature_dim=16, heads=2, n_identities=4,
                      prior=PriorSizes(feature_dim=16, intermediate=24, heads=2, quant_factor=2, n_exp=n_exp))


# -- cfg.yaml --------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"^\$\{([^}]+)\}$")


class _Cfg:
    """Reads dotted keys from a parsed OmegaConf file, resolving whole-value ``${a.b}`` references."""

    def __init__(self, root: dict, where: str) -> None:
        self.root, self.where = root, where

    def get(self, key: str, default: Any = ..., node: dict | None = None) -> Any:
        value: Any = self.root if node is None else node
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                if default is ...:
                    raise InputError(f"{self.where}: no '{key}': not an EMOTE cfg.yaml",
                                     hint="use the cfg.yaml of the released model folder, unchanged")
                return default
            value = value[part]
        if isinstance(value, str) and (m := _INTERPOLATION.match(value)):
            return self.get(m.group(1), default)
        return value

    def refuse(self, key: str, value: Any, known: str) -> InputError:
        return InputError(f"{self.where}: {key} = {value!r} is not supported by this implementation ({known})")


def _prior_sizes(cfg: _Cfg, prior: dict) -> PriorSizes:
    dec = cfg.get("model.sequence_decoder", node=prior)
    comps = cfg.get("model.sequence_components", node=prior)
    if not isinstance(comps, dict) or list(comps) != ["exp", "jaw"] or comps["jaw"] != "rot":
        raise cfg.refuse("motion_prior model.sequence_components", comps, "exp then jaw rot")
    if dec.get("type") != "L2lDecoder":
        raise cfg.refuse("motion_prior model.sequence_decoder.type", dec.get("type"), "L2lDecoder")
    pe = cfg.get("positional_encoding.type", "none", node=dec)
    if pe not in (None, False, "none", "None"):
        raise cfg.refuse("motion_prior positional_encoding.type", pe, "none")
    bias = cfg.get("temporal_bias.type", "none", node=dec) or "none"
    if bias not in ("alibi_future", "none"):
        raise cfg.refuse("motion_prior temporal_bias.type", bias, "alibi_future or none")
    smooth = dec.get("conv_smooth_layer", "l2l_default")
    if smooth not in ("l2l_default", False):
        raise cfg.refuse("motion_prior conv_smooth_layer", smooth, "l2l_default or false")
    rep = cfg.get("model.rotation_representation", "aa", node=prior)
    if rep not in ("aa", "6d"):
        raise cfg.refuse("motion_prior model.rotation_representation", rep, "aa or 6d")
    if dec.get("activation", "gelu") != "gelu":
        raise cfg.refuse("motion_prior activation", dec.get("activation"), "gelu")
    return PriorSizes(
        feature_dim=int(dec["feature_dim"]), intermediate=int(dec["intermediate_size"]), heads=int(dec["nhead"]),
        layers=int(dec["num_layers"]), quant_factor=int(cfg.get("model.sizes.quant_factor", node=prior)),
        temporal_bias=bias, post_transformer_proj=bool(dec.get("post_transformer_proj")),
        conv_smooth=smooth == "l2l_default", post_conv_proj=bool(dec.get("post_conv_proj")),
        n_exp=int(comps["exp"]), jaw_rep=rep)


def sizes_from_cfg(data: dict, where: str = "cfg.yaml", prior_cfg: dict | None = None) -> EmoteSizes:
    """The network sizes of a parsed EMOTE ``cfg.yaml``. ``prior_cfg``: FLINT's own cfg.yaml, for
    a file that does not embed it under ``model.sequence_decoder.motion_prior.cfg``."""
    cfg = _Cfg(data if isinstance(data, dict) else {}, where)
    audio = cfg.get("model.audio")
    if audio.get("type") != "wav2vec2" or audio.get("model_specifier") != WAV2VEC_SPECIFIER:
        raise cfg.refuse("model.audio", {k: audio.get(k) for k in ("type", "model_specifier")},
                         f"wav2vec2 {WAV2VEC_SPECIFIER}")
    if not audio.get("target_fps") or int(audio.get("target_fps")) != 25:
        raise cfg.refuse("model.audio.target_fps", audio.get("target_fps"), "25")
    if cfg.get("model.sequence_encoder.type") != "linear":
        raise cfg.refuse("model.sequence_encoder.type", cfg.get("model.sequence_encoder.type"), "linear")
    dec = cfg.get("model.sequence_decoder")
    if dec.get("type") != "BertPriorDecoder":
        raise cfg.refuse("model.sequence_decoder.type", dec.get("type"), "BertPriorDecoder")
    checks = {"positional_encoding.type": ("none",), "temporal_bias_type": ("faceformer_future",),
              "style_op": ("cat", "add"), "activation": ("gelu",), "post_bug_fix": (True,),
              "squash_before": (False,), "squash_after": (True,), "squash_type": ("stack_linear",)}
    defaults = {"style_op": "add", "post_bug_fix": False, "squash_before": True, "squash_after": False,
                "squash_type": "conv", "temporal_bias_type": "none", "positional_encoding.type": "none"}
    for key, allowed in checks.items():
        value = cfg.get(key, defaults.get(key, ...), node=dec)
        if value not in allowed:
            raise cfg.refuse(f"model.sequence_decoder.{key}", value, " or ".join(map(str, allowed)))
    style = cfg.get("style_embedding", node=dec)
    if not isinstance(style, dict) or style.get("type") != "emotion_linear":
        raise cfg.refuse("model.sequence_decoder.style_embedding.type",
                         style.get("type") if isinstance(style, dict) else style, "emotion_linear")
    wanted = {"gt_expression_label": True, "gt_expression_intensity": True, "gt_expression_identity": True,
              "use_shape": False, "use_expression": False, "use_valence": False, "use_arousal": False,
              "use_emotion_feature": False, "use_video_expression": False, "use_video_feature": False}
    for key, value in wanted.items():
        if bool(style.get(key, False)) != value:
            raise cfg.refuse(f"model.sequence_decoder.style_embedding.{key}", style.get(key), str(value).lower())
    prior = cfg.get("motion_prior.cfg", None, node=dec) or prior_cfg
    if not isinstance(prior, dict):
        raise InputError(f"{where}: the motion prior's configuration is not embedded (model.sequence_decoder."
                         "motion_prior.cfg) and its cfg.yaml was not found",
                         hint="put the released MotionPrior/models/FLINT* folder beside TalkingHead/ as the assets are "
                         "unpacked, or use the cfg.yaml of the released model unchanged")
    return EmoteSizes(
        wav2vec=wav2vec_sizes(data), feature_dim=int(dec["feature_dim"]), heads=int(dec["nhead"]), layers=int(dec["num_layers"]),
        period=int(dec.get("period", 30)), style_op=cfg.get("style_op", "add", node=dec),
        n_emotions=int(style["n_expression"]), n_intensities=int(style["n_intensities"]),
        n_identities=int(style["n_identities"]), style_bias=bool(style.get("use_bias", True)),
        prior=_prior_sizes(cfg, prior))


def read_cfg(path: Path) -> dict:
    """A YAML file as plain data (``yaml.safe_load``: no tags run)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a configuration file")
    return data


def motion_prior_path(data: dict) -> str | None:
    """Where the config says FLINT lives (relative to the assets folder), e.g. MotionPrior/models/FLINTv2."""
    value = data.get("model", {}).get("sequence_decoder", {}).get("motion_prior", {}).get("path")
    return str(value) if value else None


def sizes_to_cfg(sizes: EmoteSizes) -> dict:
    """A ``cfg.yaml`` in the published layout describing ``sizes`` (the keys this module reads,
    with the motion prior's config embedded as the released training scripts embed it)."""
    p = sizes.prior
    prior = {
        "model": {
            "pl_module_class": "L2lVqVae", "rotation_representation": p.jaw_rep,
            "sequence_components": {"exp": p.n_exp, "jaw": "rot"}, "sizes": {"quant_factor": p.quant_factor},
            "sequence_decoder": {
                "type": "L2lDecoder", "num_layers": p.layers, "feature_dim": p.feature_dim,
                "intermediate_size": p.intermediate, "nhead": p.heads, "dropout": 0.0, "activation": "gelu",
                "positional_encoding": {"type": "none"}, "temporal_bias": {"type": p.temporal_bias, "max_len": 600},
                "last_layer_init": False, "post_transformer_proj": {"init": "zeros"} if p.post_transformer_proj else False,
                "conv_smooth_layer": "l2l_default" if p.conv_smooth else False, "post_conv_proj": p.post_conv_proj},
        },
    }
    w = sizes.wav2vec
    if w != BASE_960H:  # the released config names the hub model; a smaller test model describes itself
        audio_extra = {"being_wav2vec": {k: list(v) if isinstance(v, tuple) else v for k, v in w.__dict__.items()}}
    else:
        audio_extra = {}
    return {
        "model": {
            "pl_module_class": "FaceFormer",
            "audio": {"type": "wav2vec2", "model_specifier": WAV2VEC_SPECIFIER, "trainable": False,
                      "with_processor": True, "model_expected_fps": 50, "target_fps": 25,
                      "freeze_feature_extractor": True, **audio_extra},
            "sequence_encoder": {"type": "linear", "feature_dim": sizes.feature_dim},
            "sequence_decoder": {
                "type": "BertPriorDecoder", "num_layers": sizes.layers, "feature_dim": sizes.feature_dim,
                "nhead": sizes.heads, "dropout": 0.25, "activation": "gelu", "max_len": 600, "period": sizes.period,
                "squash_before": False, "squash_after": True, "squash_type": "stack_linear",
                "positional_encoding": {"type": "none"}, "temporal_bias_type": "faceformer_future",
                "post_bug_fix": True, "style_op": sizes.style_op,
                "style_embedding": {
                    "type": "emotion_linear", "use_shape": False, "use_video_expression": False,
                    "gt_expression_label": True, "gt_expression_intensity": True, "n_intensities": sizes.n_intensities,
                    "gt_expression_identity": True, "n_identities": sizes.n_identities, "disentangle_identity": False,
                    "use_expression": False, "n_expression": sizes.n_emotions, "use_valence": False,
                    "use_arousal": False, "use_emotion_feature": False, "use_bias": sizes.style_bias},
                "motion_prior": {"path": "MotionPrior/models/FLINTv2", "trainable": False, "cfg": prior},
            },
        },
        "data": {"split": "random_by_identityV2_sorted_70_15_15", "reconstruction_type": "EMICA-MEAD_flame2020"},
    }


def wav2vec_sizes(data: dict) -> Wav2VecSizes:
    """base-960h, unless the file describes another size under model.audio.being_wav2vec (tests)."""
    extra = data.get("model", {}).get("audio", {}).get("being_wav2vec")
    if not extra:
        return BASE_960H
    return Wav2VecSizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()})

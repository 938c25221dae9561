"""Compare being_audio_artalk with the public reference implementation, number by number, on
shared random weights (no download: the reference's hub config fetch is replaced by the xls-r-300m
values written in being_audio_artalk.config).

    git clone https://github.com/xg-chu/ARTalk /tmp/ARTalk      # the reference, not part of Being
    pip install einops transformers                              # what the reference imports
    python plugins/audio_artalk/tools/compare_reference.py --reference /tmp/ARTalk --device cuda

The reference model is built with its own random initialisation; its state dict is loaded into
ours with strict=True; both run on the same speech and style clip. Printed: the largest
differences of the wav2vec features, the style vector, the raw motion (``inference``) and the
post-processed motion (inference.py's scipy smoothing and jaw zeroing against the plugin).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import types
from pathlib import Path

import torch


def reference_model(checkout: Path, device: torch.device) -> torch.nn.Module:
    from transformers import Wav2Vec2Config

    from being_audio_artalk.config import PUBLISHED

    w = PUBLISHED.wav2vec
    xlsr = dict(hidden_size=w.hidden, num_hidden_layers=w.layers, num_attention_heads=w.heads,
                intermediate_size=w.intermediate, hidden_act="gelu", conv_dim=list(w.conv_dim),
                conv_kernel=list(w.conv_kernel), conv_stride=list(w.conv_stride), conv_bias=True,
                feat_extract_norm="layer", feat_extract_activation="gelu", do_stable_layer_norm=True,
                num_conv_pos_embeddings=w.pos_kernel, num_conv_pos_embedding_groups=w.pos_groups,
                layer_norm_eps=w.eps, mask_time_prob=0.075)
    Wav2Vec2Config.from_pretrained = classmethod(lambda cls, name, **kw: Wav2Vec2Config(**xlsr))
    # import artalk.models without the package __init__ (FLAME, pytorch3d, gradio) or Mimi
    package = types.ModuleType("artalk")
    package.__path__ = [str(checkout / "artalk")]
    mimi = types.ModuleType("artalk.modules.mimi")
    mimi.MimiModelWrapper = None
    sys.modules.update({"artalk": package, "artalk.modules.mimi": mimi})
    try:
        __import__("torchvision")  # imported (unused) by the reference
    except ImportError:
        sys.modules["torchvision"] = types.ModuleType("torchvision")
    from artalk.models import BitwiseARModel

    config = json.loads((checkout / "assets" / "config.json").read_text())
    config["AR_CONFIG"]["AUDIO_ENCODER"] = "wav2vec"
    return BitwiseARModel(config).eval().to(device)


def published_postprocess(motion: torch.Tensor) -> torch.Tensor:
    """inference.py: smooth_motion_savgol, then jaw y/z zeroed."""
    from scipy.signal import savgol_filter

    x = motion.cpu().numpy()
    y = savgol_filter(x, window_length=5, polyorder=2, axis=0)
    y[..., 100:103] = savgol_filter(x[..., 100:103], window_length=9, polyorder=3, axis=0)
    y = torch.tensor(y)
    y[..., 104:] *= 0.0
    return y


def compare(checkout: Path, device: torch.device, seconds: float = 9.0, seed: int = 0,
            style: bool = True) -> dict[str, float]:
    """Largest absolute differences, reference vs ours, of: the wav2vec features of the first
    chunk, the style vector (with a style), the raw motion, the post-processed motion."""
    from being_audio_artalk.config import PUBLISHED
    from being_audio_artalk.model import ArtalkModel
    from being_audio_artalk.plugin import ArtalkAudio
    from being_audio_artalk.spec import ArtalkConfig
    from being_kernel.media import demo_speech

    torch.manual_seed(seed)
    ref = reference_model(checkout, device)
    ours = ArtalkModel(PUBLISHED)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours = ours.to(device).eval()
    speech = demo_speech(seconds, 16000, seed=seed)
    audio = torch.from_numpy(speech.samples)[None].to(device)
    stats = ref.style_encoder
    clip = (torch.randn(50, 106, device=device) * stats.motion_std + stats.motion_mean) if style else None
    diff = lambda a, b: (a.float().cpu() - b.float().cpu()).abs().max().item()  # noqa: E731
    out = {}
    with torch.no_grad():
        chunk = torch.nn.functional.pad(audio, (0, max(0, 64000 - audio.shape[1])))[:, :64000]
        out["wav2vec features"] = diff(ref.audio_encoder(chunk), ours.audio_encoder(chunk))
        if clip is not None:
            out["style vector"] = diff(ref.style_encoder(clip[None]), ours.style_encoder(clip[None]))
        ref_raw = ref.inference({"audio": audio, "style_motion": None if clip is None else clip[None]})[0]
        token = ours.style_token(clip)
        state, parts = ours.initial_state(token), []
        padded = torch.nn.functional.pad(audio, (0, -audio.shape[1] % 64000))
        for start in range(0, padded.shape[1], 64000):
            motion, state = ours.step(padded[:, start:start + 64000], token, state)
            parts.append(motion[0])
        out["raw motion"] = diff(ref_raw, torch.cat(parts)[:math.ceil(audio.shape[1] / 16000 * 25.0)])
        plugin = ArtalkAudio(ArtalkConfig(device=str(device)), model=ours, style_clip=clip)
        got = plugin.generate(speech)
        mine = torch.cat([got.expression, got.global_rot, got.jaw], dim=1)
        out["post-processed motion"] = diff(published_postprocess(ref_raw)[:mine.shape[0]], mine)
        out["motion scale"] = ref_raw.abs().max().item()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="a checkout of github.com/xg-chu/ARTalk")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=9.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-style", action="store_true", help="compare the neutral (null) style")
    args = parser.parse_args()
    result = compare(args.reference, torch.device(args.device), args.seconds, args.seed, not args.no_style)
    for name, value in result.items():
        print(f"{name:>24}: {'max |value|' if name == 'motion scale' else 'max |diff|'} {value:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

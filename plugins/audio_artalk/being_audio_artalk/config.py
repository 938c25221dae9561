"""Model hyper-parameters: the published ARTalk sizes, a tiny configuration for tests, and the
parse of the published ``config.json``.

The published ``config.json`` names only the transformer depths, head counts, the code width and
the scale schedule; the released code hard-codes the rest (transformer width 768, the
xls-r-300m audio encoder, the 128-wide style encoder). Those fixed values are the defaults here.
A ``config.json`` may carry an extra ``"being"`` object that overrides them, so a weights
directory of the same architecture at another size (the tests' tiny one) describes itself; the
published file has no such object and loads unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from being_kernel import InputError
from being_kernel.audio import XLSR_300M, Wav2VecSizes, tiny_sizes

SAMPLE_RATE = 16000  # Hz: the audio encoder's rate
FPS = 25.0  # motion frames per second
MOTION_DIM = 106  # expression [0:100], global rotation [100:103], jaw [103:106] (axis-angle)


@dataclass(frozen=True)
class VaeSizes:
    """The motion VAE with multi-scale bit quantisation (``VAE_CONFIG``)."""

    code_dim: int = 32  # bits per token of each scale
    hidden: int = 512
    depth: int = 8
    heads: int = 8
    patch_nums: tuple[int, ...] = (1, 5, 25, 50, 100)  # tokens per scale; the last is frames per chunk


@dataclass(frozen=True)
class ArSizes:
    """The next-scale autoregressive transformer (``AR_CONFIG``)."""

    width: int = 768
    depth: int = 12
    heads: int = 12
    prev_ratio: int = 1  # previous chunks kept as context
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class StyleSizes:
    """The style encoder: a post-norm transformer over a ``frames`` x 106 motion clip."""

    width: int = 128
    heads: int = 4
    layers: int = 4
    ffn: int = 512
    frames: int = 50  # the clip length the published code asserts (2 s)
    max_len: int = 600  # rows of the sinusoidal table (a buffer in the checkpoint)


@dataclass(frozen=True)
class ArtalkSizes:
    ar: ArSizes = field(default_factory=ArSizes)
    vae: VaeSizes = field(default_factory=VaeSizes)
    wav2vec: Wav2VecSizes = field(default_factory=Wav2VecSizes)
    style: StyleSizes = field(default_factory=StyleSizes)

    def __post_init__(self) -> None:
        pn = self.vae.patch_nums
        if not pn or list(pn) != sorted(set(pn)) or pn[0] < 1:
            raise ValueError(f"patch_nums must be strictly increasing positive counts, got {pn}")
        if pn[-1] < 2:
            raise ValueError("the last scale (frames per chunk) must be at least 2")
        if any(width % heads for width, heads in ((self.ar.width, self.ar.heads), (self.vae.hidden, self.vae.heads))):
            raise ValueError("a transformer width is not divisible by its head count")

    @property
    def chunk_frames(self) -> int:
        """Motion frames generated per step (the last scale)."""
        return self.vae.patch_nums[-1]

    @property
    def chunk_samples(self) -> int:
        """Audio samples per step, as the published code computes it."""
        return int(self.chunk_frames / FPS * SAMPLE_RATE)

    @property
    def tokens(self) -> int:
        """Tokens of one chunk over all scales (181 for the published schedule)."""
        return sum(self.vae.patch_nums)


PUBLISHED = ArtalkSizes()


def tiny() -> ArtalkSizes:
    """The same architecture at a size that runs in milliseconds on a CPU: 10-frame chunks
    (0.4 s), narrow transformers, one or two layers each."""
    return ArtalkSizes(
        ar=ArSizes(width=32, depth=2, heads=2),
        vae=VaeSizes(code_dim=8, hidden=32, depth=2, heads=2, patch_nums=(1, 2, 5, 10)),
        wav2vec=tiny_sizes(XLSR_300M),
        style=StyleSizes(width=16, heads=2, layers=1, ffn=32),
    )


# -- config.json ---------------------------------------------------------------------------------

_PUBLISHED_KEYS = {
    "AR_CONFIG": {"T_DEPTH": ("ar", "depth"), "T_NUM_HEADS": ("ar", "heads"), "PREV_RATIO": ("ar", "prev_ratio")},
    "VAE_CONFIG": {"V_CODE_DIM": ("vae", "code_dim"), "T_DEPTH": ("vae", "depth"), "T_NUM_HEADS": ("vae", "heads"),
                   "T_HIDDEN_DIM": ("vae", "hidden"), "V_PATCH_NUMS": ("vae", "patch_nums")},
}
_PARTS = {"ar": ArSizes, "vae": VaeSizes, "wav2vec": Wav2VecSizes, "style": StyleSizes}


def sizes_from_json(data: dict[str, Any], where: str = "config.json") -> ArtalkSizes:
    """Sizes from a parsed ``config.json``: the published keys, then the ``"being"`` overrides."""
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("AR_CONFIG", "VAE_CONFIG")):
        raise InputError(f"{where}: not an ARTalk config (needs AR_CONFIG and VAE_CONFIG)")
    encoder = data["AR_CONFIG"].get("AUDIO_ENCODER", "wav2vec")
    if encoder != "wav2vec":
        raise InputError(f"{where}: AUDIO_ENCODER {encoder!r} is not supported", hint="use the wav2vec checkpoint")
    motion_dim = data["VAE_CONFIG"].get("MOTION_DIM", MOTION_DIM)
    if motion_dim != MOTION_DIM:
        raise InputError(f"{where}: MOTION_DIM {motion_dim} (the released model fixes it at {MOTION_DIM})")
    values: dict[str, dict[str, Any]] = {name: {} for name in _PARTS}
    for section, keys in _PUBLISHED_KEYS.items():
        for key, (part, name) in keys.items():
            if key in data[section]:
                values[part][name] = data[section][key]
    extra = data.get("being", {})
    if not isinstance(extra, dict):
        raise InputError(f"{where}: 'being' must be an object")
    for part, overrides in extra.items():
        if part not in _PARTS or not isinstance(overrides, dict):
            raise InputError(f"{where}: unknown 'being' entry {part!r} (known: {', '.join(_PARTS)})")
        known = {f.name for f in fields(_PARTS[part])}
        for name, value in overrides.items():
            if name not in known:
                raise InputError(f"{where}: unknown field being.{part}.{name} (known: {', '.join(sorted(known))})")
            values[part][name] = value
    try:
        parts = {p: replace(_PARTS[p](), **{k: tuple(v) if isinstance(v, list) else v for k, v in vals.items()})
                 for p, vals in values.items()}
        return ArtalkSizes(**parts)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from exc


def sizes_to_json(sizes: ArtalkSizes) -> dict[str, Any]:
    """A ``config.json`` describing ``sizes``: the published keys, plus a ``"being"`` object for
    every part that differs from the published model (none for the published sizes)."""
    data: dict[str, Any] = {
        "AR_CONFIG": {"T_DEPTH": sizes.ar.depth, "T_NUM_HEADS": sizes.ar.heads, "PREV_RATIO": sizes.ar.prev_ratio},
        "VAE_CONFIG": {"MOTION_DIM": MOTION_DIM, "V_CODE_DIM": sizes.vae.code_dim, "T_DEPTH": sizes.vae.depth,
                       "T_NUM_HEADS": sizes.vae.heads, "T_HIDDEN_DIM": sizes.vae.hidden,
                       "V_PATCH_NUMS": list(sizes.vae.patch_nums)},
    }
    extra = {}
    for part in _PARTS:
        mine, published = asdict(getattr(sizes, part)), asdict(getattr(PUBLISHED, part))
        diff = {k: list(v) if isinstance(v, tuple) else v for k, v in mine.items() if v != published[k]}
        if diff:
            extra[part] = diff
    if extra:
        data["being"] = extra
    return data


def read_sizes(path: Path | None) -> ArtalkSizes:
    """Sizes from a ``config.json`` file, or the published sizes when there is none."""
    if path is None:
        return PUBLISHED
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    return sizes_from_json(data, str(path))

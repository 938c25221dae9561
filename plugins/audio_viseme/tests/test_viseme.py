"""Behaviour of the viseme audio model on the demo head."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from being_audio_viseme.evaluate import read_wav
from being_audio_viseme.model import VisemeModel
from being_audio_viseme.spec import VisemeConfig
from being_kernel import ConfigError
from being_kernel.api import Audio, Motion
from being_kernel.metrics import CLOSED_GAP_M, bilabial_closure, lip_gap, read_segs

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
FESTIVAL = DATA / "speech" / "festival"
needs_data = pytest.mark.skipif(not FESTIVAL.is_dir(), reason="../shared/data is absent")


def run(samples: np.ndarray, **cfg) -> Motion:
    model = VisemeModel(VisemeConfig(**cfg))
    try:
        return model.generate(Audio(samples.astype(np.float32), 16000))
    finally:
        model.close()


@needs_data
@pytest.mark.parametrize("with_text, minimum", [(False, 0.9), (True, 0.98)])
def test_bilabials_close_the_lips(with_text: bool, minimum: float) -> None:
    """Every p/b/m of the festival clips: lip gap < 1.5 mm at a frame within 40 ms of its middle."""
    closed = total = 0
    for wav in sorted(FESTIVAL.glob("*.wav")):
        text = str(wav.with_suffix(".txt")) if with_text else None
        gap = lip_gap(run(read_wav(wav), text_file=text))
        c, n = bilabial_closure(gap, 25.0, read_segs(wav.with_suffix(".segs")))
        closed, total = closed + c, total + n
    assert total > 10
    assert closed / total >= minimum, f"{closed}/{total} bilabials closed"


@needs_data
def test_open_vowels_open_the_jaw() -> None:
    wav = FESTIVAL / "slt_fox.wav"
    m = run(read_wav(wav))
    segs = read_segs(wav.with_suffix(".segs"))
    t = np.arange(m.num_frames) / 25.0
    jaw = m.jaw[:, 0].numpy()
    vowel = [jaw[np.abs(t - (s + e) / 2) <= 0.02].max(initial=0) for p, s, e in segs if p in ("aa", "ao", "ah", "ae", "aw", "ay")]
    assert len(vowel) >= 3
    assert np.median(vowel) > 0.08  # > ~7 mm of lip opening on the demo head
    pauses = [jaw[(t > s + 0.1) & (t < e - 0.1)] for p, s, e in segs if p == "pau" and e - s > 0.3]
    assert all((p < 0.01).all() for p in pauses)


def test_silence_gives_a_relaxed_closed_still_face() -> None:
    m = run(np.zeros(16000 * 2), blink_rate_hz=0.0, head_motion=0.0)
    assert m.num_frames == 50
    assert (lip_gap(m) < CLOSED_GAP_M).all()
    assert m.jaw.abs().max() < 1e-3 and m.expression.abs().max() < 1e-3
    assert run(np.zeros(0)).num_frames == 0


def test_blinks_rate_and_duration() -> None:
    rng = np.random.default_rng(0)
    x = 0.01 * rng.standard_normal(16000 * 60)
    lids = run(x, seed=3).eyelids[:, 0].numpy()
    closed = lids > 0.5
    starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    assert 8 <= len(starts) <= 30  # every ~2-6 s over a minute
    gaps = np.diff(starts) / 25.0
    assert gaps.min() >= 1.5 and gaps.max() <= 7.0
    # duration: frames above 0.1, at 25 fps (150-250 ms blinks span 3-7 frames)
    active = lids > 0.05
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, active.astype(int), 0])))[::2]
    assert runs.min() >= 2 and runs.max() <= 7
    assert lids.max() <= 1.0


def test_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(1)
    x = (0.2 * np.sin(np.arange(16000 * 8) * 0.05) * (rng.random(16000 * 8) > 0.5)).astype(np.float32)
    a, b, c = run(x, seed=7), run(x, seed=7), run(x, seed=8)
    for key, value in a.tensors().items():
        assert torch.equal(value, b.tensors()[key]), key
    assert not torch.equal(a.eyelids, c.eyelids) or not torch.equal(a.global_rot, c.global_rot)


def test_missing_text_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        VisemeModel(VisemeConfig(text_file=str(tmp_path / "nope.txt")))


def test_solved_table_on_demo_head_as_generic_model(tmp_path: Path, monkeypatch) -> None:
    """The solver, run on the demo head with its expression names hidden, closes the lips for
    bilabials and opens them for open vowels; the table is cached by file hash."""
    from being_audio_viseme.table_solve import table_for_model
    from being_audio_viseme.phones import VISEMES
    from being_kernel.head import build_demo_head, save_head_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    head = dataclasses.replace(build_demo_head(), expression_names=None, texture=None, uv_coords=None, uv_faces=None)
    folder = tmp_path / "head"
    save_head_model(head, folder)
    table = table_for_model(folder)
    assert list((tmp_path / "cache" / "being" / "visemes").glob("*.npz"))
    m = Motion.zeros(len(VISEMES), head.n_expression, space=head.motion_space)
    m.jaw[:, 0] = torch.from_numpy(table.jaw)
    m.expression = torch.from_numpy(table.expr)
    gap = lip_gap(m)
    assert gap[VISEMES.index("PBM")] < CLOSED_GAP_M
    assert gap[VISEMES.index("AA")] > 8e-3
    again = table_for_model(folder)
    assert table.source == "solved" and again.source == "solved (cached)" and np.allclose(again.jaw, table.jaw)

"""Finding the bench's speech clips: --clips (files and folders), then $BEING_BENCH_CLIPS, then the
kernel's demo speech; never a path inside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from being_bench.clips import DEMO_CLIP, DEMO_CLIP_S, ENV_CLIPS, find_clips
from being_kernel import InputError


def _wav(path: Path, segs: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(1600) / 16000
    sf.write(path, (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    if segs:
        path.with_suffix(".segs").write_text("#\n0.05 100 pau\n0.10 100 aa\n")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """clips/a.wav with phone timing, clips/sub/b.flac without, a text file that is no clip."""
    root = tmp_path / "clips"
    _wav(root / "a.wav", segs=True)
    _wav(root / "sub" / "b.flac")
    (root / "sub" / "notes.txt").write_text("not audio")
    return root


def test_a_folder_is_searched_for_wav_and_flac_with_their_segs(folder: Path) -> None:
    clips = find_clips([folder], env={})
    real = folder.resolve()
    assert [(c.name, c.path) for c in clips] == [("a", str(real / "a.wav")), ("b", str(real / "sub" / "b.flac"))]
    assert clips[0].segs == str(real / "a.segs") and clips[1].segs is None


def test_files_and_folders_mix_without_duplicates_and_colliding_stems_get_their_folder(tmp_path: Path,
                                                                                        folder: Path) -> None:
    other = _wav(tmp_path / "other" / "a.wav")
    clips = find_clips([folder / "a.wav", folder, other], env={})
    assert [c.name for c in clips] == ["clips/a", "b", "other/a"]


def test_the_environment_variable_when_no_path_is_given(tmp_path: Path, folder: Path) -> None:
    single = _wav(tmp_path / "single.wav")
    env = {ENV_CLIPS: os.pathsep.join([str(folder), str(single)])}
    assert [c.name for c in find_clips([], env=env)] == ["a", "b", "single"]
    assert [c.name for c in find_clips([single], env=env)] == ["single"]  # --clips wins


def test_the_demo_speech_when_nothing_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    (clip,) = find_clips([], env={ENV_CLIPS: ""})
    assert (clip.name, clip.path, clip.segs, clip.duration_s) == (DEMO_CLIP, None, None, DEMO_CLIP_S)
    monkeypatch.delenv(ENV_CLIPS, raising=False)
    # even where the repository has speech beside it (../shared/data/speech on the development machine)
    assert [c.path for c in find_clips([])] == [None]


def test_missing_paths_and_empty_folders_say_where_they_came_from(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^--clips .*nope: no such file or folder"):
        find_clips([tmp_path / "nope"], env={})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=rf"^\${ENV_CLIPS} .*empty: no .wav or .flac file in this folder"):
        find_clips([], env={ENV_CLIPS: str(tmp_path / "empty")})

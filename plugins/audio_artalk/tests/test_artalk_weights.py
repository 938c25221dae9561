"""Finding the weights (explicit path, BEING_ARTALK_DIR, the Hugging Face cache), the error
without them, and style clips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from being_audio_artalk.plugin import ArtalkAudio, style_path
from being_audio_artalk.spec import ArtalkConfig
from being_audio_artalk.style import load_style_clip
from being_audio_artalk.testing import write_style_clip
from being_audio_artalk.weights import CHECKPOINT, CONFIG, find_weights
from being_kernel import ConfigError, InputError



def _fake_hub_cache(root: Path, source: Path) -> Path:
    """The layout huggingface_hub leaves: blobs, snapshot files as symlinks to them, refs/main."""
    repo = root / "models--xg-chu--ARTalk"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("c0ffee\n")
    (repo / "snapshots" / "0ld").mkdir(parents=True)  # an older, partial snapshot
    (repo / "snapshots" / "0ld" / CONFIG).write_text("{}")
    for i, rel in enumerate([CHECKPOINT, CONFIG, "style_motion/natural_0.pt"]):
        blob = repo / "blobs" / f"blob{i}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes((source / rel).read_bytes())
        link = repo / "snapshots" / "c0ffee" / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return root


def test_missing_weights_is_one_line_naming_the_repository_files_and_places(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        find_weights(None, env={"HF_HUB_CACHE": str(tmp_path / "empty")})
    line = err.value.one_line()
    assert "\n" not in line
    for needed in ("xg-chu/ARTalk", "ARTalk_wav2vec.pt", "config.json", "style_motion", "audio.weights",
                   "BEING_ARTALK_DIR", "Hugging Face cache", str(tmp_path / "empty")):
        assert needed in line, needed


def test_explicit_path_then_env_var_then_hub_cache(tiny_dir: Path, tmp_path: Path) -> None:
    cache = _fake_hub_cache(tmp_path / "hub", tiny_dir)
    snapshot = cache / "models--xg-chu--ARTalk" / "snapshots" / "c0ffee"
    found = find_weights(None, env={"HF_HUB_CACHE": str(cache)})
    assert found.checkpoint == snapshot / CHECKPOINT and found.config == snapshot / CONFIG
    assert found.style_dir == snapshot / "style_motion"
    # HF_HOME/hub and XDG_CACHE_HOME/huggingface/hub are where the cache lives without HF_HUB_CACHE
    (tmp_path / "home").mkdir()
    os.symlink(cache, tmp_path / "home" / "hub")
    assert find_weights(None, env={"HF_HOME": str(tmp_path / "home")}).checkpoint.name == CHECKPOINT
    (tmp_path / "xdg" / "huggingface").mkdir(parents=True)
    os.symlink(cache, tmp_path / "xdg" / "huggingface" / "hub")
    assert find_weights(None, env={"XDG_CACHE_HOME": str(tmp_path / "xdg")}).checkpoint.name == CHECKPOINT
    # the env var wins over the cache, an explicit path over both
    env = {"HF_HUB_CACHE": str(cache), "BEING_ARTALK_DIR": str(tiny_dir)}
    assert find_weights(None, env=env).checkpoint == tiny_dir / CHECKPOINT
    assert find_weights(str(snapshot / CHECKPOINT), env=env).checkpoint == snapshot / CHECKPOINT
    # a wrong explicit path or env var is an error, not a silent fallback
    with pytest.raises(InputError, match="no such file or directory"):
        find_weights(str(tmp_path / "nope"), env=env)
    with pytest.raises(InputError, match="has no ARTalk_wav2vec.pt"):
        find_weights(str(tmp_path), env=env)
    with pytest.raises(InputError, match="BEING_ARTALK_DIR"):
        find_weights(None, env={"BEING_ARTALK_DIR": str(tmp_path / "nope"), "HF_HUB_CACHE": str(cache)})


def test_plugin_finds_the_hub_cache_offline(tiny_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BEING_ARTALK_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(_fake_hub_cache(tmp_path / "hub", tiny_dir)))
    plugin = ArtalkAudio(ArtalkConfig(style="natural_0", device="cpu"))
    try:
        assert plugin.sizes.chunk_frames == 10  # the tiny config.json was read from the snapshot
    finally:
        plugin.close()


def test_style_clips_in_the_published_format(tiny_dir: Path, tmp_path: Path) -> None:
    clip = write_style_clip(tmp_path / "mine.pt", seed=5)
    assert (tmp_path / "mine.pt").stat().st_size > 4 * clip.numel() * 3  # the whole recording is stored
    loaded = load_style_clip(tmp_path / "mine.pt", 50)
    assert loaded.shape == (50, 106) and loaded.is_contiguous() and torch.equal(loaded, clip)
    files = find_weights(str(tiny_dir), env={})
    assert style_path("happy_1", files) == tiny_dir / "style_motion" / "happy_1.pt"
    assert style_path(None, files) is None and style_path("default", files) is None
    assert style_path(str(tmp_path / "mine.pt"), files) == tmp_path / "mine.pt"
    with pytest.raises(ConfigError) as err:
        style_path("angry_0", files)
    assert "no style clip 'angry_0'" in err.value.one_line() and "available: happy_1, natural_0" in err.value.one_line()
    with pytest.raises(ConfigError, match="no such file"):
        style_path(str(tmp_path / "none.pt"), files)
    torch.save(torch.zeros(49, 106), tmp_path / "short.pt")
    with pytest.raises(InputError, match=r"shape \(50, 106\)"):
        load_style_clip(tmp_path / "short.pt", 50)
    torch.save({"motion": clip}, tmp_path / "dict.pt")
    with pytest.raises(InputError, match="got dict"):
        load_style_clip(tmp_path / "dict.pt", 50)


def test_style_changes_the_motion(tiny_dir: Path) -> None:
    from being_kernel.media import demo_speech

    audio = demo_speech(1.0, 16000)
    out = {}
    for style in (None, "natural_0", "happy_1"):
        plugin = ArtalkAudio(ArtalkConfig(weights=str(tiny_dir), style=style, device="cpu"))
        try:
            out[style] = plugin.generate(audio).expression
        finally:
            plugin.close()
    assert not torch.equal(out[None], out["natural_0"]) and not torch.equal(out["natural_0"], out["happy_1"])

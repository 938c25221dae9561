"""Loading the released EMOTE layout: a Lightning checkpoint with OmegaConf configuration
objects, old weight-norm names and FLAME's buffers round-trips exactly; a wrong or malicious file
is refused by name; missing weights are one line saying where to get them and where to put them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from being_audio_emote.emote_weights import find_emote, find_pose_weights, load_emote
from being_audio_emote.testing import lightning_state, random_emote, write_emote_folder
from being_kernel import InputError
from being_kernel.api import MissingWeights


@pytest.mark.parametrize("config_objects", [True, False], ids=["omegaconf", "plain"])
def test_random_checkpoint_round_trips_strictly(tmp_path: Path, config_objects: bool) -> None:
    if config_objects:
        pytest.importorskip("omegaconf")
    model = random_emote(seed=5)
    folder = write_emote_folder(tmp_path / "EMOTE_v2", model, config_objects=config_objects)
    loaded = load_emote(find_emote(str(folder)), torch.device("cpu"))
    assert loaded.sizes == model.sizes
    mine, theirs = loaded.state_dict(), model.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert find_emote(str(folder / "checkpoints" / "last.ckpt")).folder == folder  # the .ckpt itself


def test_a_missing_or_misshapen_network_tensor_is_named(tmp_path: Path) -> None:
    model = random_emote()
    folder = write_emote_folder(tmp_path / "m", model)
    state = lightning_state(model)
    del state["sequence_decoder.decoder.bias"]
    state["sequence_encoder.linear.weight"] = torch.zeros(3, 3)
    torch.save({"state_dict": state}, folder / "checkpoints" / "last.ckpt")
    with pytest.raises(InputError, match=r"missing sequence_decoder.decoder.bias.*linear.weight has shape \[3, 3\]"):
        load_emote(find_emote(str(folder)), torch.device("cpu"))


def test_a_malicious_checkpoint_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {marker}",))

    folder = write_emote_folder(tmp_path / "m", random_emote())
    torch.save({"state_dict": {}, "hyper_parameters": {"cfg": Payload()}}, folder / "checkpoints" / "last.ckpt")
    with pytest.raises(InputError, match="posix.system"):
        load_emote(find_emote(str(folder)), torch.device("cpu"))
    assert not marker.exists()


def test_lookup_order_and_missing_weights(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with pytest.raises(MissingWeights) as err:
        find_emote(None, env=env)
    line = err.value.one_line()
    for needed in ("EMOTE weights not found", "https://emote.is.tue.mpg.de", "licence", "TalkingHead.zip",
                   "cfg.yaml", "BEING_EMOTE_DIR", "--set audio.weights=DIR", str(tmp_path / "cache")):
        assert needed in line, needed
    assert "\n" not in line
    cached = write_emote_folder(tmp_path / "cache" / "being" / "emote" / "EMOTE_v2", random_emote())
    assert find_emote(None, env=env).folder == cached
    other = write_emote_folder(tmp_path / "other", random_emote())
    assert find_emote(None, env={**env, "BEING_EMOTE_DIR": str(other)}).folder == other  # the variable first
    with pytest.raises(MissingWeights, match="has no cfg.yaml"):  # a place the user named must hold the files
        find_emote(str(tmp_path), env=env)


def test_pose_weights_lookup(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    with pytest.raises(MissingWeights) as err:
        find_pose_weights(None, env=env)
    line = err.value.one_line()
    for needed in ("SadTalker pose weights not found", "SadTalker_V0.0.2_256.safetensors", "auido2pose_00140-model.pth",
                   "OpenTalker/SadTalker", "BEING_SADTALKER_DIR", "audio.pose=none"):
        assert needed in line, needed
    legacy = tmp_path / "cache" / "being" / "sadtalker" / "auido2pose_00140-model.pth"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"x")
    assert find_pose_weights(None, env=env) == legacy
    (legacy.parent / "SadTalker_V0.0.2_256.safetensors").write_bytes(b"x")
    assert find_pose_weights(None, env=env).name == "SadTalker_V0.0.2_256.safetensors"  # the current release first

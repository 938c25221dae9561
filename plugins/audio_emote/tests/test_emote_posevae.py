"""SadTalker's PoseVAE: the published layout, both published file formats, the mel front end
against librosa, and the stream against a direct re-statement of the published inference
(``Audio2Pose.test`` + ``savgol_filter``), bit for bit in any chunking."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import lfilter, savgol_filter

from being_audio_emote.mel import frame_windows, melspectrogram
from being_audio_emote.pose import PoseStream
from being_audio_emote.posevae import Audio2Pose
from being_audio_emote.sadtalker_weights import load_audio2pose
from being_audio_emote.testing import random_audio2pose
from being_kernel import InputError

LAYOUT = Path(__file__).parent / "layouts" / "sadtalker_audio2pose.tsv"


def _published_layout() -> dict[str, list[int]]:
    """The 419 tensors of SadTalker's audio2pose state dict (src/audio2pose_models/*.py under
    src/config/auido2pose.yaml), in their order, written down from the public code."""
    rows = (line.split("\t") for line in LAYOUT.read_text().splitlines() if line)
    return {name: ast.literal_eval(shape) for name, shape in rows}


def test_every_tensor_name_and_shape_is_the_published_one() -> None:
    ours = {k: list(v.shape) for k, v in Audio2Pose().state_dict().items()}
    published = _published_layout()
    assert len(published) == 419
    assert list(ours) == list(published) and ours == published


@pytest.mark.parametrize("form", ["legacy", "combined"])
def test_random_weights_round_trip_through_the_published_formats(tmp_path: Path, form: str) -> None:
    from safetensors.torch import save_file

    model = random_audio2pose(seed=1)
    if form == "legacy":
        path = tmp_path / "auido2pose_00140-model.pth"
        torch.save({"model": model.state_dict(), "epoch": 140, "optimizer": {"state": {}, "param_groups": []}}, path)
    else:  # the combined file holds every SadTalker network; ours are the audio2pose.* ones
        path = tmp_path / "SadTalker_V0.0.2_256.safetensors"
        tensors = {f"audio2pose.{k}": v.contiguous() for k, v in model.state_dict().items()}
        tensors["audio2exp.netG.x.weight"] = torch.zeros(3)
        tensors["kp_extractor.audio2pose_like.weight"] = torch.zeros(2)  # contains the name, not the prefix
        save_file(tensors, str(path))
    loaded = load_audio2pose(path, torch.device("cpu"))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_a_wrong_file_is_named_with_its_mismatches(tmp_path: Path) -> None:
    state = random_audio2pose().state_dict()
    del state["netD_motion.seq.3.bias"]
    state["netG.decoder.classbias"] = torch.zeros(45, 64)
    torch.save({"model": state}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match=r"missing netD_motion.seq.3.bias.*classbias has shape \[45, 64\]"):
        load_audio2pose(tmp_path / "bad.pth", torch.device("cpu"))
    torch.save({"state_dict": state}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="no 'model' state dict"):
        load_audio2pose(tmp_path / "other.pth", torch.device("cpu"))


def test_a_malicious_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            import os
            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "epoch": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(InputError, match="posix.system"):
        load_audio2pose(tmp_path / "evil.pth", torch.device("cpu"))
    assert not marker.exists()


def _librosa_mel(wav: np.ndarray) -> np.ndarray:
    """src/utils/audio.py's melspectrogram with librosa (the oracle), hparams of src/utils/hparams.py."""
    librosa = pytest.importorskip("librosa")
    y = lfilter([1, -0.97], [1], wav)
    spec = np.abs(librosa.stft(y=y, n_fft=800, hop_length=200, win_length=800, pad_mode="constant"))
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
    return np.clip(8 * ((db + 100) / 100) - 4, -4, 4).T


@pytest.mark.parametrize("n", [700, 16000, 41_123])
def test_mel_matches_librosa(n: int) -> None:
    wav = (0.2 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    np.testing.assert_allclose(melspectrogram(wav), _librosa_mel(wav), rtol=0, atol=2e-5)


def test_windows_start_where_generate_batch_cuts_them() -> None:
    mel = np.arange(400, dtype=np.float32)[:, None].repeat(80, 1)
    windows = frame_windows(mel, 120)
    for i in range(120):
        start = int(80. * ((i - 2) / float(25)))  # generate_batch.py's expression
        expected = [min(max(j, 0), 399) for j in range(start, start + 16)]
        assert windows[i, 0].tolist() == expected


def _published_pose(model: Audio2Pose, wav: np.ndarray, frames: int, style: int, seed: int,
                    ref: torch.Tensor) -> np.ndarray:
    """Audio2Pose.test then Audio2Coeff.generate's smoothing, step by step as published, on the
    clip cut or padded to 640 x frames samples."""
    wav = np.pad(wav, (0, max(0, 640 * frames - len(wav))))[:640 * frames]
    mel = _librosa_mel(wav).astype(np.float32)
    windows = []
    for i in range(frames):
        start = int(80. * ((i - 2) / float(25)))
        idx = [min(max(j, 0), len(mel) - 1) for j in range(start, start + 16)]
        windows.append(mel[idx].T)
    mels = torch.from_numpy(np.stack(windows))[None, :, None]  # [1, T, 1, 80, 16]
    torch.manual_seed(seed)
    cls, ref6 = torch.tensor([style]), ref[None]
    use = mels[:, 1:]
    n = frames - 1
    div, re = n // 32, n % 32
    parts = [torch.zeros(1, 1, 6)]
    dec = model.netG.decoder
    for k in range(div):
        z = torch.randn(1, 64)
        emb = model.audio_encoder(use[:, 32 * k:32 * k + 32])
        parts.append(dec(z, cls, ref6, emb))
    if re:
        z = torch.randn(1, 64)
        emb = model.audio_encoder(use[:, -32:])
        if emb.shape[1] != 32:
            emb = torch.cat([emb[:, :1].repeat(1, 32 - emb.shape[1], 1), emb], 1)
        parts.append(dec(z, cls, ref6, emb)[:, -re:])
    pose = (ref6[:, None] + torch.cat(parts, 1))[0].double().numpy()
    window = 13 if frames >= 13 else int((frames - 1) / 2) * 2 + 1
    return savgol_filter(pose, window, 2, axis=0) if window > 2 else pose


def _stream(model: Audio2Pose, wav: np.ndarray, frames: int, pieces: list[int], ref: torch.Tensor) -> torch.Tensor:
    stream, out, at = PoseStream(model, style=7, seed=3, reference=ref), [], 0
    for size in pieces:
        out.append(stream.push(wav[at:at + size]))
        at += size
    out.append(stream.push(wav[at:]))
    out.append(stream.finish(frames))
    return torch.cat(out)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 3.7])
def test_stream_matches_the_published_procedure_in_any_chunking(seconds: float) -> None:
    pytest.importorskip("librosa")
    model = random_audio2pose(seed=2)
    wav = (0.1 * np.random.default_rng(5).standard_normal(int(seconds * 16000) + 77)).astype(np.float32)
    frames = round(len(wav) / 640)
    ref = torch.tensor([0.05, -0.1, 0.02, 0.1, -0.05, 0.3])
    with torch.no_grad():
        expected = _published_pose(model, wav, frames, style=7, seed=3, ref=ref)
    whole = _stream(model, wav, frames, [], ref)
    assert whole.shape == (frames, 6)
    np.testing.assert_allclose(whole.double().numpy(), expected, rtol=0, atol=2e-5)
    for pieces in ([1, 639, 5000, 3], [16000] * 3, [9_999, 1]):
        assert torch.equal(_stream(model, wav, frames, pieces, ref), whole), pieces

"""The options that stand for plugin config fields (--seed, --text, --text-file, --size, --device,
--fps), --overwrite and --quiet: where each value lands, what wins, and what is refused before any
work, through the mapping itself and through the CLI in a subprocess (fake plugins, real MP4s)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from pydantic import BaseModel

from being_kernel.cli.options import FIELD_OPTIONS, field_values
from being_kernel.config import parse_size
from being_kernel.errors import ConfigError
from conftest import run_being

FAKES = ["run", "--audio", "fake", "--avatar", "fake", "--torso", "static"]
SECONDS, RATE = 1.37, 16000


def _speech(path: Path, seconds: float = SECONDS) -> Path:
    t = np.arange(round(seconds * RATE)) / RATE
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)), RATE)
    return path


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _one_error(r) -> str:  # noqa: ANN001 - CompletedProcess
    errors = [line for line in r.stderr.splitlines() if line.startswith("being: error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    return errors[0]


# -- the mapping ------------------------------------------------------------------------------

class AudioCfg(BaseModel):
    seed: int = 0
    text: str | None = None
    text_file: str | None = None
    fps: float = 25.0
    device: str = "auto"


class AvatarCfg(BaseModel):
    size: tuple[int, int] = (512, 512)
    seed: int = 0
    fps: float | None = None  # the rate it needs: not what --fps sets


class TorsoCfg(BaseModel):
    size: tuple[int, int] = (512, 512)
    device: str = "auto"


class BareCfg(BaseModel):
    gain: float = 1.0


LABELS = {c: f"the {c} plugin 'x'" for c in ("audio", "avatar", "torso")}
NONE = dict.fromkeys(FIELD_OPTIONS)


def _values(configs: dict[str, type[BaseModel]], **given):  # noqa: ANN003
    return field_values({**NONE, **{"--" + k.replace("_", "-"): v for k, v in given.items()}}, configs, LABELS)


def test_each_option_lands_on_the_fields_it_stands_for() -> None:
    configs = {"audio": AudioCfg, "avatar": AvatarCfg, "torso": TorsoCfg}
    got = _values(configs, seed=7, text="a: b", size="640x480", device="cuda:1", fps=10.0)
    assert got == {"audio": {"seed": 7, "text": "a: b", "device": "cuda:1", "fps": 10.0},
                   "avatar": {"seed": 7, "size": [640, 480]},
                   "torso": {"size": [640, 480], "device": "cuda:1"}}
    assert _values(configs, text_file=Path("t.txt")) == {"audio": {"text_file": "t.txt"}}
    assert _values(configs) == {}


def test_size_is_square_n_or_w_by_h() -> None:
    assert parse_size("512") == (512, 512) and parse_size("640x480") == (640, 480) and parse_size(" 64X48 ") == (64, 48)
    for bad in ("", "big", "64x", "x48", "64x48x2", "-64", "6.4"):
        with pytest.raises(ConfigError, match="--size"):
            parse_size(bad)


@pytest.mark.parametrize("given, configs, message", [
    ({"text": "hi"}, {"audio": BareCfg, "avatar": AvatarCfg, "torso": TorsoCfg},
     "--text: the audio plugin 'x' takes no transcript"),
    ({"fps": 10.0}, {"audio": BareCfg, "avatar": AvatarCfg, "torso": TorsoCfg},  # the avatar's fps is not it
     "--fps: the audio plugin 'x' takes no frame rate"),
    ({"size": "64"}, {"audio": AudioCfg, "avatar": AvatarCfg, "torso": BareCfg},  # the torso decides the video size
     "--size: the torso plugin 'x' takes no size"),
    ({"seed": 1}, {"audio": BareCfg, "avatar": BareCfg, "torso": TorsoCfg}, "--seed: no selected plugin takes a seed"),
    ({"device": "cpu"}, {"audio": BareCfg, "avatar": AvatarCfg, "torso": BareCfg},
     "--device: no selected plugin takes a device"),
    ({"device": "gpu"}, {"audio": AudioCfg, "avatar": AvatarCfg, "torso": TorsoCfg}, "--device 'gpu': expected"),
    ({"fps": 0.0}, {"audio": AudioCfg, "avatar": AvatarCfg, "torso": TorsoCfg}, "--fps 0: must be above 0"),
    ({"text": "a", "text_file": "b"}, {"audio": AudioCfg, "avatar": AvatarCfg, "torso": TorsoCfg}, "not both"),
])
def test_an_option_no_selected_config_takes_is_refused(given, configs, message) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError) as err:
        _values(configs, **given)
    assert message in err.value.one_line()


def test_the_refusal_lists_the_plugins_fields() -> None:
    with pytest.raises(ConfigError) as err:
        _values({"audio": BareCfg, "avatar": AvatarCfg, "torso": TorsoCfg}, text="hi")
    assert err.value.one_line() == "--text: the audio plugin 'x' takes no transcript (its config fields: gain)"


# -- through being run ------------------------------------------------------------------------

def test_fps_and_size_reach_the_plugins(tmp_path: Path) -> None:
    wav, out = _speech(tmp_path / "in.wav"), tmp_path / "talk.mp4"
    r = run_being(*FAKES, "--fps", "10", "--size", "64x48", "--input", str(wav), "--out", str(out))
    assert r.returncode == 0, r.stderr
    frames = _frames(out)
    assert frames.shape == (round(SECONDS * 10), 48, 64, 3)
    with av.open(str(out)) as c:
        assert float(c.streams.video[0].average_rate) == pytest.approx(10)


def test_set_wins_over_an_option_and_an_option_over_the_config_file(tmp_path: Path) -> None:
    wav = _speech(tmp_path / "in.wav")
    config = tmp_path / "being.toml"
    config.write_text("[audio]\nfps = 5.0\n[torso]\nsize = [32, 32]\n")
    out = tmp_path / "a.mp4"
    r = run_being(*FAKES, "--config", str(config), "--fps", "10", "--size", "64", "--input", str(wav), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert _frames(out).shape == (round(SECONDS * 10), 64, 64, 3)
    out = tmp_path / "b.mp4"
    r = run_being(*FAKES, "--fps", "10", "--set", "audio.fps=20", "--size", "64", "--set", "torso.size=[48,32]",
                  "--input", str(wav), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert _frames(out).shape == (round(SECONDS * 20), 32, 48, 3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA: --device cuda must be refused")
def test_device_reaches_the_compositor(tmp_path: Path) -> None:
    wav, out = _speech(tmp_path / "in.wav"), tmp_path / "talk.mp4"
    r = run_being(*FAKES, "--device", "cuda", "--input", str(wav), "--out", str(out))
    assert r.returncode == 2 and "device: 'cuda' asked for but CUDA is not available" in _one_error(r)
    assert not out.exists()
    r = run_being(*FAKES, "--device", "cpu", "--size", "64", "--input", str(wav), "--out", str(out))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("extra, message", [
    (["--text", "hello"], "--text: the audio plugin 'fake' takes no transcript (its config fields: sample_rate, fps,"),
    (["--text-file", "t.txt"], "--text-file: the audio plugin 'fake' takes no transcript file"),
    (["--seed", "3"], "--seed: no selected plugin takes a seed (no 'seed' field in the audio plugin 'fake', "
                      "the avatar plugin 'fake', the torso plugin 'static')"),
    (["--torso", "fake", "--device", "cpu"], "--device: no selected plugin takes a device"),
    (["--size", "big"], "--size 'big': expected N (square) or WxH"),
    (["--device", "gpu"], "--device 'gpu': expected auto, cpu, cuda or cuda:N"),
    (["--size", "63"], "torso.size: Value error, size (width, height) must be even"),
])
def test_an_unsupported_option_is_one_line_and_writes_nothing(tmp_path: Path, extra: list[str], message: str) -> None:
    wav, out = _speech(tmp_path / "in.wav"), tmp_path / "talk.mp4"
    r = run_being(*FAKES, *extra, "--input", str(wav), "--out", str(out))
    assert r.returncode == 2
    assert message in _one_error(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


@pytest.mark.skipif(importlib.util.find_spec("being_audio_viseme") is None, reason="the viseme plugin is not installed")
def test_seed_and_text_reach_the_viseme_plugin(tmp_path: Path) -> None:
    wav = _speech(tmp_path / "in.wav")
    common = ["run", "--audio", "viseme", "--avatar", "fake", "--torso", "static", "--size", "64", "-q",
              "--input", str(wav)]
    runs = {"options": ["--seed", "2", "--text", "hello world"],
            "sets": ["--set", "audio.seed=2", "--set", "audio.text=hello world"],
            "other seed": ["--seed", "3", "--text", "hello world"]}
    frames = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.mp4"
        r = run_being(*common, *extra, "--out", str(out))
        assert r.returncode == 0, r.stderr
        frames[name] = _frames(out)
    assert np.array_equal(frames["options"], frames["sets"])  # the options are those fields
    assert not np.array_equal(frames["options"], frames["other seed"])  # and the seed reached the plugin


# -- through being fit --------------------------------------------------------------------------

def test_seed_and_device_reach_the_trainer(tmp_path: Path) -> None:
    from being_kernel.datasets.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "ff", size=32, frames=8, test_frames=2, progress=False)
    sidecar = data / "being_dataset.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "full_frame": True}))
    out = tmp_path / "plate"
    fit = ["fit", "--torso", "fake", "--data", str(data), "--out", str(out), "--set", "fit.steps=2",
           "--set", "fit.lpips=off"]
    if not torch.cuda.is_available():
        r = run_being(*fit, "--device", "cuda")
        assert r.returncode == 2 and "device: 'cuda' asked for but CUDA is not available" in _one_error(r)
        assert not out.exists()
    r = run_being(*fit, "--seed", "1", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    r = run_being(*fit, "--seed", "1")
    assert r.returncode == 2 and "already exists" in _one_error(r)
    # a finished run's checkpoint resumes only under the same config: --seed 1 is fit.seed=1
    r = run_being(*fit, "--seed", "2", "--overwrite")
    assert r.returncode == 2 and "belongs to another dataset or configuration" in _one_error(r)
    r = run_being(*fit, "--set", "fit.seed=1", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert "data:" in r.stdout and "being fit" in r.stderr  # the data line and the bar...
    r = run_being(*fit, "--set", "fit.seed=1", "--overwrite", "--restart", "-q")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)  # ...not with -q


# -- --overwrite -------------------------------------------------------------------------------

def test_run_replaces_an_existing_output_only_with_overwrite(tmp_path: Path) -> None:
    wav, out = _speech(tmp_path / "in.wav"), tmp_path / "talk.mp4"
    out.write_bytes(b"an earlier take")
    r = run_being(*FAKES, "--size", "64", "--input", str(wav), "--out", str(out))
    assert r.returncode == 2
    assert f"output '{out}' already exists (pass --overwrite to replace it" in _one_error(r)
    assert r.stderr.count("\n") == 1  # refused before any work: no note, no progress bar
    assert out.read_bytes() == b"an earlier take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "talk.mp4"]
    r = run_being(*FAKES, "--size", "64", "--input", str(wav), "--out", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert "replaced the file that was there" in r.stdout
    assert _frames(out).shape == (round(SECONDS * 25), 64, 64, 3)


def test_make_dataset_and_eval_refuse_to_replace_without_overwrite(tmp_path: Path) -> None:
    data = tmp_path / "synth"
    make = ["make-dataset", "synthetic", "--out", str(data), "--size", "32", "--frames", "6", "--test-frames", "2",
            "--device", "cpu", "-q"]
    r = run_being(*make, env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    r = run_being(*make, env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 2 and "exists and is not empty" in _one_error(r)
    r = run_being(*make, "--overwrite", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr

    ev = tmp_path / "ev"
    evaluate = ["eval", "--torso", "static", "--data", str(data), "--out", str(ev), "--device", "cpu"]
    r = run_being(*evaluate, "-q")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    report = (ev / "report.json").read_bytes()
    assert json.loads(report)["torso"] == "static" and (ev / "comparison.mp4").is_file()
    r = run_being(*evaluate)
    assert r.returncode == 2 and f"output '{ev / 'report.json'}' already exists" in _one_error(r)
    assert (ev / "report.json").read_bytes() == report
    r = run_being(*evaluate, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert "replaced the files that were there" in r.stdout


# -- --quiet -----------------------------------------------------------------------------------

def test_quiet_prints_nothing_on_success_and_still_prints_errors(tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    r = run_being(*FAKES, "--size", "64", "--out", str(out))  # the demo clip: a note, a bar, a result line
    assert r.returncode == 0 and "no --input given" in r.stderr and "being run" in r.stderr and "wrote" in r.stdout
    out.unlink()
    r = run_being(*FAKES, "--size", "64", "--out", str(out), "--quiet")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    assert len(_frames(out)) == 100
    r = run_being(*FAKES, "--size", "64", "--out", str(out), "-q")
    assert r.returncode == 2 and r.stdout == "" and "already exists" in _one_error(r)

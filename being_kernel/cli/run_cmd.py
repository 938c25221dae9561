"""``being run``: speech file in, talking-head MP4 out.

Everything that can be checked is checked before any frame is made (output path, an existing
output without --overwrite, plugins, config and the options that stand for config fields, input
audio, stages that work together), so bad input costs nothing and leaves no file behind."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from tqdm import tqdm

from .main import app
from .options import field_option, field_values, overwrite_option, quiet_option, refuse_existing, say

@app.command("run")
def run(
    out: Path = typer.Option(..., "--out", "-o", help="Output video, .mp4 (H.264 + AAC). Written atomically."),
    input: Optional[Path] = typer.Option(None, "--input", "-i",
                                         help="Speech audio: wav, flac, ogg or mp3, any rate and channels. "
                                              "Default: a built-in 4 s speech-like demo clip."),
    audio: Optional[str] = typer.Option(None, "--audio", help="AudioToFlame plugin. Default: viseme if installed."),
    avatar: Optional[str] = typer.Option(None, "--avatar", help="FlameRenderer plugin. Default: splatting if installed."),
    torso: Optional[str] = typer.Option(None, "--torso", help="TorsoCompositor plugin. Default: static if installed."),
    set_: list[str] = typer.Option([], "--set", help="Plugin config, CONTRACT.FIELD=VALUE, e.g. torso.size=[512,512]. "
                                                      "Repeatable; wins over --config."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML or YAML file with tables named audio, avatar and torso."),
    mode: str = typer.Option("offline", "--mode", help="offline: batch motion, never drops frames. "
                                                       "live: streaming motion, bounded queues that drop the oldest frame."),
    realtime: bool = typer.Option(False, "--realtime", help="live mode: feed the audio at real-time pace."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="H.264 quality (lower is better, 18 is visually lossless)."),
    encoder: str = typer.Option("auto", "--encoder",
                                help="H.264 encoder: auto (default: h264_nvenc when this PyAV/FFmpeg build has it "
                                     "and it opens on an NVIDIA GPU with NVENC, else libx264), libx264 or h264_nvenc."),
    preset: Optional[str] = typer.Option(None, "--preset",
                                         help="Encoder speed/quality preset. Default: superfast for libx264 (on "
                                              "the default head at crf 18: 1.9-2.6x medium's encoding speed at the "
                                              "same PSNR/SSIM, in a file ~2.4x as large; docs/benchmarks.md), p4 for "
                                              "NVENC. x264: ultrafast..placebo (medium: smallest file of the fast "
                                              "ones); NVENC: p1..p7 (an x264 name is mapped to one)."),
    seed: Optional[int] = field_option("--seed"),
    text: Optional[str] = field_option("--text"),
    text_file: Optional[Path] = field_option("--text-file"),
    size: Optional[str] = field_option("--size"),
    device: Optional[str] = field_option("--device"),
    fps: Optional[float] = field_option("--fps"),
    overwrite: bool = overwrite_option("Replace --out if it exists (else an existing --out is an error)."),
    quiet: bool = quiet_option(),
) -> None:
    """Make a talking-head video from speech: --audio -> --avatar -> --torso -> MP4.

    --seed, --text, --text-file, --size, --device and --fps set plugin config fields (see each).

    Batches are chosen per device: the avatar draws batch_frames frames per call (splatting and \
flash: 64 on CUDA; on the CPU one frame on each of torch's threads at once) and the motion \
reaches it in packets of that many frames; --set avatar.batch_frames=N overrides it. \
being bench measures these same defaults.

    Example: being run --audio fake --avatar fake --torso static --input speech.wav --out talk.mp4
    """
    from .. import config as cfg
    from ..media.clip import LoadedTriple, select
    from ..discovery import Registry
    from ..errors import ConfigError
    from ..media import check_output_path, demo_speech, read_audio_channels
    from ..media.video_writer import resolve_encoder

    if mode not in ("offline", "live"):
        raise ConfigError(f"--mode {mode}: expected offline or live")
    resolve_encoder(encoder, preset)  # an unknown encoder or preset is an error before any work
    out_path = check_output_path(out)
    replacing = out_path.exists()
    refuse_existing(out_path, overwrite)
    echo = say(quiet)
    registry = Registry.discover()
    note = lambda line: echo(line, err=True)  # noqa: E731 - said when a default is the fake
    names = {c: n or registry.default(c, note) for c, n in (("audio", audio), ("avatar", avatar), ("torso", torso))}
    specs = {c: registry.spec(c, n) for c, n in names.items()}
    options = field_values({"--seed": seed, "--text": text, "--text-file": text_file, "--size": size,
                            "--device": device, "--fps": fps},
                           {c: s.config for c, s in specs.items()},
                           {c: f"the {c} plugin '{n}'" for c, n in names.items()})
    # --config, then the options, then --set: the most explicit wins
    values = cfg.merge(cfg.merge(cfg.load_file(config) if config else {}, options), cfg.parse_sets(set_))
    selection = select(registry, names, values)

    if input is None:
        demo = demo_speech()
        channels, native_rate = demo.samples[None, :], demo.sample_rate
        echo("being: note: no --input given, using the built-in demo clip", err=True)
    else:
        channels, native_rate = read_audio_channels(input)

    triple = LoadedTriple.load(selection, registry, note)
    try:
        for warning in triple.check.warnings:
            typer.echo(f"being: warning: {warning}", err=True)
        seconds = channels.shape[1] / native_rate
        with tqdm(total=triple.num_frames(seconds), unit="frame", desc="being run", leave=False, disable=quiet) as bar:
            result = triple.render(channels, native_rate, out_path, crf=crf, mode=mode, realtime=realtime,
                                   progress=bar.update, encoder=encoder, preset=preset)
    finally:
        triple.close()
    drops = sum(result.stats.dropped.values())
    echo(f"wrote {out_path}: {result.frames} frames at {result.fps:g} fps ({seconds:.2f} s) "
         f"in {result.seconds:.1f} s" + (f", {drops} frames dropped and repeated (live mode)" if drops else "")
         + ("; replaced the file that was there (--overwrite)" if replacing else ""))

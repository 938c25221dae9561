"""``being bench``: run a matrix of plugin combinations on the same inputs and report them side by side.

The command reaches the CLI through the kernel's ``being_cli_commands`` hook (entry point
``being.hooks`` -> ``bench``), like any third-party command. This module is imported whenever
``being`` starts, so it imports nothing heavy: the work is imported inside the command.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from being_kernel.hooks import hookimpl


@hookimpl
def being_cli_commands(app: typer.Typer) -> None:
    """Add ``being bench`` to the CLI."""
    app.command("bench")(bench)


def bench(
    audio: list[str] = typer.Option([], "--audio", help="AudioToFlame plugins, comma-separated or repeated; 'all' for "
                                    "every installed one. Default: what being run uses (viseme if installed)."),
    avatar: list[str] = typer.Option([], "--avatar", help="FlameRenderer plugins, as --audio. Default: splatting if installed."),
    torso: list[str] = typer.Option([], "--torso", help="TorsoCompositor plugins, as --audio. Default: static if installed."),
    size: list[str] = typer.Option([], "--size", help="Image sizes, N (square) or WxH, comma-separated: the head render "
                                   "and the output video. Default: the avatar's bench sizes, else 512."),
    device: list[str] = typer.Option([], "--device", help="cpu, cuda or cuda:N, comma-separated. Default: cuda when "
                                     "there is a GPU, else cpu."),
    clips: list[Path] = typer.Option([], "--clips", "--clip", help="Speech files, or folders searched for .wav and "
                                     ".flac (repeatable; a Festival .segs beside a clip gives lip timing). Default: the "
                                     "paths in $BEING_BENCH_CLIPS (os.pathsep-separated), else 5 s of the kernel's "
                                     "demo speech (no phone timing)."),
    set_: list[str] = typer.Option([], "--set", help="Plugin config, CONTRACT.FIELD=VALUE, as for being run, for "
                                   "every plugin of that contract (a plugin without the field: its cells say so); "
                                   "CONTRACT.PLUGIN.FIELD=VALUE for one plugin only, e.g. avatar.flash.path=DIR."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML or YAML file with tables audio, avatar, torso."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed runs per figure (median and spread are reported)."),
    warmup: Optional[int] = typer.Option(None, "--warmup", min=0, help="Untimed runs before each timed measurement. "
                                         "Default: the most the cell's plugins ask for in their bench settings (1 if none)."),
    chunk_frames: Optional[int] = typer.Option(None, "--chunk-frames", min=1, help="Motion frames per bus packet in "
                                               "the offline pipeline. Default: what being run uses, the renderer's "
                                               "batch_frames (splatting: 64 on CUDA; on the CPU one frame per torch "
                                               "thread)."),
    chunk_ms: float = typer.Option(40.0, "--chunk-ms", min=1, help="Streaming: milliseconds of audio per push."),
    stream_seconds: float = typer.Option(10.0, "--stream-seconds", min=0.5, help="Streaming: seconds of audio (the "
                                         "clip repeated) for the steady-state latency and drift."),
    realtime: bool = typer.Option(False, "--realtime", help="Streaming: push the audio at its real pace (a run takes "
                                  "--stream-seconds of wall time) and report lag drift and dropped frames; without it "
                                  "each chunk is pushed once the previous chunk's frames are out."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="H.264 quality of the encoding figure (as being run)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A tracked dataset: adds each avatar's PSNR, SSIM and "
                                        "LPIPS on its held-out frames (being eval)."),
    out: Path = typer.Option(Path("being-bench"), "--out", "-o", help="Output folder: bench.json, bench.md, "
                             "throughput.png, latency.png, and logs/ with each cell's process output."),
    timeout: float = typer.Option(3600.0, "--timeout", min=1, help="Seconds a cell may run before it is stopped and "
                                  "recorded as failed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="One line per cell on stderr, not one as each figure "
                               "starts and ends (the cell logs keep those lines either way)."),
) -> None:
    """Measure plugin combinations side by side on the same inputs.

    The matrix: --audio x --avatar x --torso plugins x --size x --device x --clips. Each cell runs
    in a fresh process (its own peak memory; a crash costs only that cell) and reports: motion
    real-time factor; render, composite and end-to-end frames per second, without and with H.264
    encoding; streaming first-frame and per-chunk latency, keeping up and drift; peak RSS and GPU
    memory; lip timing against a clip's .segs (bilabial closure, vowel opening) for any motion
    space whose head model has lips; and with --data an avatar's PSNR, SSIM and LPIPS. A cell that
    cannot run (plugin missing, no CUDA, motion spaces that do not fit, missing weights) and every
    figure that cannot be measured carry the reason. Writes OUT/bench.json (format being-bench 1),
    OUT/bench.md, OUT/throughput.png and OUT/latency.png. While a cell runs, a line on stderr as
    each figure starts and ends (--quiet: one line per cell).

    Example: being bench --audio viseme,fake --avatar splatting --torso static --size 256,512 --device cpu
    """
    import torch

    from being_kernel import __version__
    from being_kernel.api import Registry, load_config_file, merge_config, parse_sets

    from .clips import find_clips
    from .machine import load_average, machine_info
    from being_kernel.api import check_device, parse_size

    from .matrix import plan_cells, split_list
    from .report import write_report
    from .runner import run_cells
    from .schema import BenchRun, Cell, Settings

    registry = Registry.discover()
    note = lambda line: typer.echo(line, err=True)  # noqa: E731 - said when a default is the fake
    names = {c: split_list(opt) or [registry.default(c, note)] for c, opt in (("audio", audio), ("avatar", avatar), ("torso", torso))}
    sizes = [parse_size(s) for s in split_list(size)]
    devices = [check_device(d, auto=False) for d in split_list(device)] or ["cuda" if torch.cuda.is_available() else "cpu"]
    values = merge_config(load_config_file(config) if config else {}, parse_sets(set_))
    plans = plan_cells(registry, names, sizes, devices, find_clips(clips), values, warmup,
                       torch.cuda.device_count() if torch.cuda.is_available() else 0)
    settings = Settings(repeats=repeats, warmup=warmup, chunk_frames=chunk_frames, chunk_s=chunk_ms / 1000.0,
                        stream_seconds=stream_seconds, realtime=realtime, crf=crf,
                        data=str(data.resolve()) if data else None, sets=list(set_) + ([f"--config {config}"] if config else []))
    started, machine = datetime.now(timezone.utc), machine_info(registry)
    typer.echo(f"being bench: {len(plans)} cells -> {out}", err=True)

    def progress(done: int, total: int, cell: Cell, seconds: float) -> None:
        state = cell.status if cell.status == "ok" else f"{cell.status}: {cell.reason}"
        typer.echo(f"  [{done}/{total}] {cell.id}: {state} ({seconds:.0f} s)", err=True)

    cells = run_cells(plans, settings, out / "logs", timeout, progress, None if quiet else note)
    run = BenchRun(created=started.strftime("%Y-%m-%d %H:%M UTC"), command=["being", *sys.argv[1:]],
                   being_version=__version__,
                   machine=machine | {"load_average_end": load_average()}, settings=settings, cells=cells)
    paths = write_report(run, out)
    ok = sum(c.status == "ok" for c in cells)
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}: {ok} of {len(cells)} cells ran"
               + (f"; plots skipped: {run.plots_skipped}" if run.plots_skipped else ""))

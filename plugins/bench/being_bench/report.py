"""Writing a bench run: the JSON (the whole record), a Markdown report of tables, and the plots."""

from __future__ import annotations

import json
from pathlib import Path

from .plots import write_plots
from .schema import FIGURES, BenchRun, Cell, Figure

#: The Markdown tables: title and the figures they show, one row per cell.
TABLES: dict[str, tuple[str, ...]] = {
    "Speed": ("motion_rtf", "render_fps", "composite_fps", "e2e_fps_no_encode", "e2e_fps_encode", "peak_rss_mb",
              "peak_gpu_mb"),
    "Streaming": ("stream_first_frame_latency_ms", "stream_steady_latency_ms", "stream_rtf", "stream_lag_drift_ms",
                  "stream_pts_drift_ms", "stream_frames_exact", "stream_dropped_frames"),
    "Quality": ("bilabial_closure", "vowel_opening", "avatar_psnr", "avatar_ssim", "avatar_lpips"),
}
JSON_NAME, MARKDOWN_NAME = "bench.json", "bench.md"


def _num(x: float) -> str:
    a = abs(x)
    return f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}" if a >= 0.1 else f"{x:.3f}"


def format_figure(f: Figure, reasons: dict[str, int]) -> str:
    """A table entry: the value (± half the IQR over repeats), latency tails, or the reason's number."""
    if f.value is None:
        number = reasons.setdefault(f.reason or "", len(reasons) + 1)
        return f"— [{number}]"
    if isinstance(f.value, bool):
        return "yes" if f.value else "no"
    if f.unit == "fraction":
        return f"{f.value:.0%}" + (f" ({f.note.split()[0]})" if f.note else "")
    if f.p90 is not None and f.max is not None:
        return f"{_num(f.value)} / {_num(f.p90)} / {_num(f.max)}"
    text = _num(float(f.value)) if isinstance(f.value, float) else str(f.value)
    if f.n and f.n > 1 and f.iqr is not None:
        text += f" ±{_num(f.iqr / 2)}"
    return text


def _label(cell: Cell) -> list[str]:
    plugins = f"{cell.audio} + {cell.avatar} + {cell.torso}" + (f" (tuned: {cell.tuned})" if cell.tuned else "")
    return [plugins, f"{cell.size[0]}×{cell.size[1]}", cell.device, cell.clip.name]


def _title(name: str) -> str:
    d = FIGURES[name]
    suffix = " (median / p90 / max)" if name == "stream_steady_latency_ms" else ""
    return d.label + suffix


def markdown(run: BenchRun) -> str:
    """The report: how it was run, one table per group of figures, what each figure means, and
    the numbered reasons for the missing ones."""
    m, s = run.machine, run.settings
    gpus = ", ".join(m.get("gpus") or []) or "none"
    pacing = "pushed at the audio's real pace" if s.realtime else "unpaced (one chunk in flight)"
    lines = [
        f"# being bench, {run.created}", "",
        f"    {' '.join(run.command)}", "",
        f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, torch {m.get('torch')} ({m.get('torch_threads')} threads); "
        f"GPU: {gpus}" + (f"; gsplat {m['gsplat']}" if m.get("gsplat") else "")
        + f"; load average (1, 5, 15 min) {m.get('load_average')} at the start, {m.get('load_average_end')} at the end.",
        f"Each timed figure: the median of {s.repeats} runs after each cell's warm-up, ± half the interquartile range. "
        + (f"Pipeline packets of {s.chunk_frames} motion frames (--chunk-frames; being run's: the renderer's batch)"
           if s.chunk_frames else "Pipeline packets as being run cuts them (the renderer's batch)")
        + f"; rows marked tuned ran with their plugins' bench settings, each beside the same cell with being run's "
        f"defaults; streaming in {s.chunk_s * 1e3:g} ms audio chunks, "
        f"{s.stream_seconds:g} s of audio, {pacing}.", "",
    ]
    reasons: dict[str, int] = {}
    for title, names in TABLES.items():
        header = ["plugins", "size", "device", "clip"] + [_title(n) for n in names]
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for cell in run.cells:
            lines.append("| " + " | ".join(_label(cell) + [format_figure(cell.figures[n], reasons) for n in names]) + " |")
        lines.append("")
    lines += ["## What the figures mean", ""]
    lines += [f"* **{d.label}** ({d.unit or 'ratio'}): {d.meaning}." for d in FIGURES.values()]
    if reasons:
        lines += ["", "## Why figures are missing", ""]
        lines += [f"{k}. {reason}" for reason, k in reasons.items()]
    warnings = sorted({f"{c.id}: {w}" for c in run.cells for w in c.warnings})
    if warnings:
        lines += ["", "## Warnings", ""] + [f"* {w}" for w in warnings]
    if run.plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in run.plots]
    elif run.plots_skipped:
        lines += ["", f"Plots skipped: {run.plots_skipped}."]
    return "\n".join(lines) + "\n"


def write_report(run: BenchRun, out: Path) -> list[Path]:
    """Write the plots (when matplotlib is there), then bench.json and bench.md, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    plots, skipped = write_plots(run, out)
    run.plots, run.plots_skipped = [p.name for p in plots], skipped
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    json_path.write_text(json.dumps(run.model_dump(mode="json"), indent=1) + "\n")
    md_path.write_text(markdown(run))
    return [json_path, md_path, *plots]

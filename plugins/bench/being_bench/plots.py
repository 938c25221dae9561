"""PNG plots of a bench run (matplotlib; without it they are skipped, with the reason): throughput
per combination, latency distribution.

Cells that differ only in the clip are pooled: throughput takes the median of their values (its
whiskers the quartiles of all their timed runs), latency pools their samples.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from .schema import FIGURES, BenchRun, Cell

THROUGHPUT = ("render_fps", "composite_fps", "e2e_fps_no_encode", "e2e_fps_encode")
#: A bar colour per throughput figure (matplotlib's default cycle, fixed so every plot matches).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")

Group = tuple[str, str, str, tuple[int, int], str]


def _series(cell: Cell) -> str:
    return f"{cell.audio}+{cell.avatar}+{cell.torso} ({cell.device})"


def _group(cell: Cell) -> Group:
    return cell.audio, cell.avatar, cell.torso, cell.size, cell.device


def _group_label(g: Group) -> str:
    audio, avatar, torso, size, device = g
    return f"{audio} + {avatar} + {torso}\n{size[0]}×{size[1]}, {device}"


def _fmt(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def throughput_bars(run: BenchRun) -> list[tuple[Group, float | None, dict[str, tuple[float, float, float] | None]]]:
    """What the throughput plot draws: per combination (plugins, size, device; the clips pooled),
    the real-time frame rate (the audio model's fps) and, per figure of ``THROUGHPUT``, (median of
    the cells' values, first and third quartile of all their timed runs), or None if none was measured."""
    cells: dict[Group, list[Cell]] = defaultdict(list)
    for cell in run.cells:
        if cell.status == "ok":
            cells[_group(cell)].append(cell)
    out = []
    for g in sorted(cells, key=lambda g: (g[0], g[1], g[2], g[4], g[3][0] * g[3][1])):
        fps = [float(c.info["fps"]) for c in cells[g] if c.info.get("fps")]
        bars: dict[str, tuple[float, float, float] | None] = {}
        for name in THROUGHPUT:
            values = [float(c.figures[name].value) for c in cells[g] if c.figures[name].value is not None]
            samples = [x for c in cells[g] for x in (c.figures[name].samples or [])]
            if not values:
                bars[name] = None
                continue
            q1, q3 = np.percentile(samples, [25, 75]) if samples else (min(values), max(values))
            bars[name] = (statistics.median(values), float(q1), float(q3))
        out.append((g, statistics.median(fps) if fps else None, bars))
    return out


def _throughput(run: BenchRun, plt, path: Path) -> Path:  # noqa: ANN001 - matplotlib.pyplot
    """Horizontal bars: a group per combination, a bar per stage and for the whole pipeline, on a
    log axis, with the real-time frame rate marked: what keeps up and which stage limits it."""
    groups = throughput_bars(run)
    k = len(THROUGHPUT)
    height = 0.8 / k
    fig, ax = plt.subplots(figsize=(9.0, max(2.5, 0.35 * k * len(groups) + 1.6)))
    labelled_rt = False
    measured = [v for _, _, bars in groups for b in bars.values() if b for v in b if v > 0]
    span = measured + [fps for _, fps, _ in groups if fps] if measured else []  # the real-time line in view
    for gi, (g, fps, bars) in enumerate(groups):
        for j, name in enumerate(THROUGHPUT):
            y = gi + (j - (k - 1) / 2) * height
            bar = bars[name]
            label = FIGURES[name].label if gi == 0 else None
            if bar is None:
                ax.barh(y, 0, height, color=COLOURS[j], label=label)
                ax.text(0.005, y, f"{FIGURES[name].label}: not measured", transform=ax.get_yaxis_transform(),
                        va="center", fontsize=7, color="grey")
                continue
            median, q1, q3 = bar
            ax.barh(y, median, height, color=COLOURS[j], label=label,
                    xerr=[[max(0.0, median - q1)], [max(0.0, q3 - median)]], error_kw={"elinewidth": 0.8, "capsize": 2})
            ax.text(max(median, q3) * 1.04, y, _fmt(median), va="center", fontsize=7)
        if fps:
            ax.vlines(fps, gi - 0.45, gi + 0.45, colors="black", linestyles="--", linewidth=1.2,
                      label=None if labelled_rt else "real time (the audio model's frame rate)")
            labelled_rt = True
    ax.set_yticks(range(len(groups)), [_group_label(g) for g, _, _ in groups], fontsize=8)
    ax.set_ylim(len(groups) - 0.5, -0.5)  # the first combination on top
    ax.set_xlabel("frames per second (log scale; bar: median over the clips, whisker: quartiles of the timed runs)",
                  fontsize=8)
    if measured:
        ax.set_xscale("log")
        ax.set_xlim(min(span) / 2, max(span) * 3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09 - 0.6 / (1.6 + 0.35 * k * len(groups))),
                  ncol=len(THROUGHPUT) + 1, frameon=False)
    else:
        ax.text(0.5, 0.5, "no measured values", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("throughput per combination: each stage as the pipeline calls it, and the whole pipeline", fontsize=9)
    return _save(plt, fig, ax, "x", path)


def _latency(run: BenchRun, plt, path: Path) -> Path:  # noqa: ANN001 - matplotlib.pyplot
    steady: dict[str, list[float]] = defaultdict(list)
    first: dict[str, list[float]] = defaultdict(list)
    for cell in run.cells:
        key = f"{_series(cell)}\n{cell.size[0]}×{cell.size[1]}"
        for name, into in (("stream_steady_latency_ms", steady), ("stream_first_frame_latency_ms", first)):
            into[key] += cell.figures[name].samples or []
    keys = sorted(k for k in set(steady) | set(first) if steady.get(k) or first.get(k))
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 * len(keys) + 2), 4.5))
    if keys:
        positions = range(1, len(keys) + 1)
        ax.boxplot([steady.get(k) or [float("nan")] for k in keys], positions=list(positions), whis=(5, 95),
                   showfliers=True, flierprops={"markersize": 2})
        xs = [x + 0.25 for x, k in zip(positions, keys) for _ in first.get(k, [])]
        ax.plot(xs, [v for k in keys for v in first.get(k, [])], "rx", label="first frame")
        ax.set_xticks(list(positions), keys, fontsize=7)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no measured values", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title("streaming latency per audio chunk (box: quartiles, whiskers: 5-95 %; x: first frame)", fontsize=9)
    return _save(plt, fig, ax, "y", path)


def _save(plt, fig, ax, grid_axis: str, path: Path) -> Path:  # noqa: ANN001 - matplotlib objects
    """Grid lines along ``grid_axis``, a tight layout, the PNG at ``path``; the figure closed."""
    ax.grid(True, axis=grid_axis, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(run: BenchRun, out: Path) -> tuple[list[Path], str | None]:
    """(the PNGs written, None), or ([], why there are none)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return [], f"matplotlib is not installed ({exc}); pip install matplotlib"
    return [_throughput(run, plt, out / "throughput.png"), _latency(run, plt, out / "latency.png")], None

"""PNG plots of a bench run (matplotlib, optional): throughput by resolution, latency distribution.

Cells that differ only in the clip are pooled: throughput takes the median of their values,
latency pools their samples.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from .schema import FIGURES, BenchRun, Cell

THROUGHPUT = ("render_fps", "composite_fps", "e2e_fps_no_encode", "e2e_fps_encode")


def _series(cell: Cell) -> str:
    return f"{cell.audio}+{cell.avatar}+{cell.torso} ({cell.device})"


def _throughput(run: BenchRun, plt, path: Path) -> Path:  # noqa: ANN001 - matplotlib.pyplot
    fig, axes = plt.subplots(1, len(THROUGHPUT), figsize=(4.2 * len(THROUGHPUT), 4.0), squeeze=False)
    for ax, name in zip(axes[0], THROUGHPUT):
        points: dict[str, dict[tuple[int, int], list[float]]] = defaultdict(lambda: defaultdict(list))
        for cell in run.cells:
            if cell.figures[name].value is not None:
                points[_series(cell)][cell.size].append(float(cell.figures[name].value))
        for label, by_size in sorted(points.items()):
            sizes = sorted(by_size, key=lambda s: s[0] * s[1])
            ax.plot([s[0] * s[1] for s in sizes], [statistics.median(by_size[s]) for s in sizes], "o-", label=label)
            for s in sizes:
                ax.annotate(f"{s[0]}×{s[1]}", (s[0] * s[1], statistics.median(by_size[s])), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        ax.set_title(FIGURES[name].label)
        ax.set_xlabel("pixels per frame")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if points:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no measured values", ha="center", va="center", transform=ax.transAxes)
    axes[0][0].set_ylabel("frames per second")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    ax.grid(True, axis="y", which="both", alpha=0.3)
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

"""Peak memory of the current process.

``ru_maxrss`` cannot be reset, so each bench cell runs in a process of its own and reports that
process's peak (the interpreter, torch and the plugins' imports included); ``rss_mb`` taken after
the imports says how much of it the imports are. CUDA peaks can be reset, and are, per cell.
"""

from __future__ import annotations

import resource
import sys

import torch


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def rss_mb() -> float | None:
    """Current resident set size in MiB (Linux /proc), or None where there is no /proc."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return None
    return pages * resource.getpagesize() / 2**20


def reset_gpu_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gpu_mb(device: torch.device) -> float:
    """Peak memory allocated by torch on ``device`` since the last reset, in MiB."""
    return torch.cuda.max_memory_allocated(device) / 2**20

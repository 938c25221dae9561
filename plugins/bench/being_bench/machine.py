"""What a bench ran on: CPU, GPU, library and plugin versions."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from being_kernel.api import Registry


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the OS has them."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(registry: Registry) -> dict[str, Any]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cpu": _cpu_model(), "cpus": cpus, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "os": platform.platform(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [],
        "plugins": {f"{r.contract}:{r.name}": f"{r.distribution} {r.version}" for r in registry.records if r.ok},
        "load_average": load_average(),  # other work on the machine skews CPU figures: say how busy it was
    }
    for package in ("gsplat", "av", "pocketsphinx"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    return info

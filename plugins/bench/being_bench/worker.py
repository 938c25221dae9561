"""The process a bench job runs in: ``python -m being_bench.worker JOB.json RESULT.json``.

One process per cell, so that each cell's peak memory is its own (``ru_maxrss`` cannot be reset)
and a crash costs only that cell. Jobs: ``{"kind": "cell", "plan": CellPlan, "settings": Settings}``
gives a Cell; ``{"kind": "avatar", "avatar", "config", "data", "device"}`` gives the avatar's
quality figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def run_job(job: dict) -> dict:
    if job["kind"] == "cell":
        from .matrix import CellPlan
        from .measure import measure_cell
        from .schema import Settings

        return measure_cell(CellPlan.model_validate(job["plan"]), Settings.model_validate(job["settings"])).model_dump(mode="json")
    if job["kind"] == "avatar":
        from .quality import avatar_figures

        figures = avatar_figures(job["avatar"], job["config"], Path(job["data"]), job["device"])
        return {name: f.model_dump(mode="json") for name, f in figures.items()}
    raise ValueError(f"unknown bench job kind {job['kind']!r}")


def main(argv: list[str]) -> int:
    job_path, result_path = map(Path, argv)
    result = run_job(json.loads(job_path.read_text()))
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

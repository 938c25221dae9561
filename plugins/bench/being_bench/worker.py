"""The process a bench job runs in: ``python -m being_bench.worker JOB.json RESULT.json``.

One process per cell, so that each cell's peak memory is its own (``ru_maxrss`` cannot be reset)
and a crash costs only that cell. Jobs: ``{"kind": "cell", "plan": CellPlan, "settings": Settings}``
gives a Cell; ``{"kind": "avatar", "avatar", "config", "data", "device"}`` gives the avatar's
quality figures.

While it runs it prints progress lines to its stderr, each starting with ``PROGRESS_MARK`` (as a
measurement starts and ends); the runner writes the process's whole output to the cell's log and
passes those lines on to the user's stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: What a progress line of the worker starts with (the rest of the line is for the user).
PROGRESS_MARK = "[being-bench] "


def say(line: str) -> None:
    """A progress line, to stderr at once (the runner reads it as it comes)."""
    print(PROGRESS_MARK + line, file=sys.stderr, flush=True)


def run_job(job: dict) -> dict:
    if job["kind"] == "cell":
        from .matrix import CellPlan
        from .measure import measure_cell
        from .schema import Settings

        plan, settings = CellPlan.model_validate(job["plan"]), Settings.model_validate(job["settings"])
        return measure_cell(plan, settings, say).model_dump(mode="json")
    if job["kind"] == "avatar":
        import time

        from .measure import describe
        from .quality import avatar_figures

        say(f"avatar quality: being eval of {job['avatar']} on {job['data']} ({job['device']}) ...")
        t0 = time.monotonic()
        figures = avatar_figures(job["avatar"], job["config"], Path(job["data"]), job["device"])
        say(f"{describe(figures)} ({time.monotonic() - t0:.0f} s)")
        return {name: f.model_dump(mode="json") for name, f in figures.items()}
    raise ValueError(f"unknown bench job kind {job['kind']!r}")


def main(argv: list[str]) -> int:
    job_path, result_path = map(Path, argv)
    result = run_job(json.loads(job_path.read_text()))
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The table ``being batch`` prints at the end: each job's tasks by state and time, then every
failure with its error."""

from __future__ import annotations

from .runner import Result

STATES = ("done", "skipped", "failed", "interrupted")


def summary_lines(results: list[Result], wall_s: float, workers: int, loads: int) -> list[str]:
    """``workers``: render workers started; ``loads``: plugin triples they loaded."""
    jobs: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        jobs.setdefault((r.task.kind, r.task.job), []).append(r)
    rows = [("job", "kind", "tasks", *STATES, "attempts", "task time")]
    for (kind, job), rs in jobs.items():
        rows.append((job, kind, str(len(rs)), *(str(sum(r.state == s for r in rs)) for s in STATES),
                     str(sum(r.attempts for r in rs)), f"{sum(r.seconds for r in rs):.1f} s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    rendered = [r for r in results if r.task.kind == "render" and r.state == "done"]
    tail = f"{len(results)} tasks in {wall_s:.1f} s"
    if rendered:
        tail += f"; {len(rendered)} clips rendered by {workers} workers with {loads} plugin loads"
    lines.append(tail)
    failures: dict[str, list[Result]] = {}
    for r in results:
        if r.state == "failed":
            failures.setdefault(r.error or "", []).append(r)
    for error, rs in failures.items():  # one line per distinct error
        if len(rs) == 1:
            lines.append(f"failed: {rs[0].task.id} (attempts: {rs[0].attempts}): {error}")
        else:
            more = f" and {len(rs) - 2} more" if len(rs) > 2 else ""
            lines.append(f"failed: {len(rs)} tasks ({', '.join(r.task.id for r in rs[:2])}{more}): {error}")
    return lines

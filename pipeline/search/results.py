"""Search results as a terminal table and as the ``--json`` document."""
from __future__ import annotations

from typing import Sequence

from pipeline.search.rank import Result


def fmt_time(t: float) -> str:
    m, s = divmod(max(float(t), 0.0), 60.0)
    return f"{int(m)}:{s:04.1f}"


def fmt_where(points) -> str:
    """First and last ground position of a trajectory, "(x, y) -> (x, y)"; "-" without one."""
    if not points:
        return "-"
    a, b = points[0], points[-1]
    return f"({a[1]:.4g}, {a[2]:.4g}) -> ({b[1]:.4g}, {b[2]:.4g})"


def format_table(results: Sequence[Result], show_run: bool = False) -> str:
    """rank, (run,) identity, score, cameras, first/last seen; one line per identity."""
    if not results:
        return "no matching identity (check the filters: --cameras, --from/--to)"
    where = any(r.where for r in results)
    head = ["rank"] + (["run"] if show_run else []) + ["identity", "score", "cameras", "first seen", "last seen"]
    head += ["where (ground, first -> last)"] if where else []
    rows = [[str(k)] + ([r.run] if show_run else []) + [str(r.identity), f"{r.score:.3f}", ",".join(r.cameras),
                                                         fmt_time(r.first_seen), fmt_time(r.last_seen)]
            + ([fmt_where(r.where)] if where else []) for k, r in enumerate(results, 1)]
    left = {"run", "cameras", "where (ground, first -> last)"}
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) if h in left else c.rjust(w) for h, c, w in zip(head, cells, widths)).rstrip()
    return "\n".join([line(head)] + [line(r) for r in rows])


def results_doc(query: dict, results: Sequence[Result]) -> dict:
    """``{"query": ..., "results": [...]}`` best first (identity = global id as in mot/*.txt)."""
    return {"query": query, "results": [r.to_dict() for r in results]}

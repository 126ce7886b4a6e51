"""Keep a search index of many runs: identities, tracklets, attributes, time spans and embeddings of
every added run, for 'mcmt search --index DB'.

  mcmt index add RUN [RUN ...]      add runs (adding a run again replaces it; unchanged runs are skipped)
  mcmt index remove RUN [RUN ...]   remove runs (by id, name or path as 'list' shows them)
  mcmt index list                   the indexed runs

The index is a folder (default runs/search-index): a SQLite catalog and one folder of memory-mapped
vectors per run; every change is one transaction. All runs of an index must come from the same ReID
model (their embeddings are compared with each other); a run made with another model is refused.

Damage: the catalog records the size and checksum of every run's vectors. 'mcmt search --index' checks
every run first and refuses (exit 2, no results) when one is damaged (vectors file missing, cut short or
changed, catalog row changed), with one line per damaged run naming it and the command that adds it
again ('mcmt index add RUN', which replaces it) or removes it; 'list' flags such runs (sizes only) and exits 1. A
catalog (index.sqlite) that was emptied, deleted or cannot be read is refused, never replaced by a new
one; the message says how to rebuild the index.
"""
from __future__ import annotations

import argparse
import logging
from datetime import datetime

log = logging.getLogger(__name__)
DEFAULT_INDEX = "runs/search-index"


def add_arguments(p):
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("add", "add run folders"), ("remove", "remove runs"), ("list", "list indexed runs")):
        s = sub.add_parser(name, help=help_text, description=help_text)
        if name != "list":
            s.add_argument("runs", nargs="+", metavar="RUN",
                           help="run folder" if name == "add" else "run id, name or folder")
        s.add_argument("--index", default=DEFAULT_INDEX, metavar="DB", help=f"index folder (default {DEFAULT_INDEX})")
        # also after the action; SUPPRESS keeps the values given before it (mcmt index -v add ...)
        s.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more output")
        s.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS, help="less output")


def main(args) -> int:
    from core.errors import UserError
    from pipeline.search.index import SearchIndex

    if args.action == "add":
        from pipeline.runfolder.generation import outputs_dir
        from pipeline.runfolder.layout import IDENTITIES_FILE
        missing = [r for r in args.runs if not (outputs_dir(r) / IDENTITIES_FILE).is_file()]
        if missing:
            raise UserError(f"not a run folder written by 'mcmt run' (no {IDENTITIES_FILE}): {', '.join(missing)}")
        ix = SearchIndex(args.index, create=True)
        for run in args.runs:
            status, rec = ix.add_run(run)
            print(f"{status}: {rec['name']} (id {rec['id']}): {rec['n_tracklets']} tracklets, "
                  f"{rec['n_identities']} identities -> {args.index}")
        return 0
    ix = SearchIndex(args.index)
    if args.action == "remove":
        for ref in args.runs:
            rec = ix.remove_run(ref)
            print(f"removed: {rec['name']} (id {rec['id']}, {rec['n_tracklets']} tracklets) from {args.index}")
        return 0
    runs = ix.runs()
    print(format_runs(runs, args.index))
    damaged = [ix.damage_message(r, why) for r in runs if (why := ix.check(r, full=False))]
    for line in damaged:
        log.warning("%s", line)
    return 1 if damaged else 0


def format_runs(runs: list[dict], where: str) -> str:
    if not runs:
        return f"{where}: no runs"
    head = ("id", "name", "tracklets", "identities", "cameras", "model", "added", "path")
    rows = [(str(r["id"]), r["name"], str(r["n_tracklets"]), str(r["n_identities"]), ",".join(r["cameras"]),
             f"{r['model'].get('name')} ({r['model'].get('dim')}-d)",
             datetime.fromtimestamp(r["added"]).strftime("%Y-%m-%d %H:%M"), r["path"]) for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()   # noqa: E731
    total = sum(r["n_tracklets"] for r in runs)
    return "\n".join([fmt(head)] + [fmt(r) for r in rows] + [f"{len(runs)} run(s), {total} tracklets in {where}"])

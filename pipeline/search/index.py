"""An index of many runs for search: a folder with a SQLite catalog and memory-mapped vectors per run.

Layout of an index folder ``DB``::

    DB/index.sqlite        runs (path, name, ReID model record, cameras, attribute names, content hash,
                           layout of its array file), identities (thumbnails) and tracklets (camera,
                           track, global id, time span)
    DB/vectors/<uuid>.bin  one file per indexed run (:mod:`.arrayfile`): codes (T, D) int8 embeddings,
                           scale (T,), attrs (T, A) uint8 probabilities x 255, the camera / time /
                           identity columns (T,) and gids (I,) global ids

A query reads the catalog, then scores every run's arrays with numpy, memory-mapped (brute force: exact
up to the int8 rounding, no training, no tuning). Adding a run writes its array file first and then
commits its catalog rows in one SQLite transaction; a run is visible only once committed, and adding the
same run folder again replaces it (unchanged content is a no-op). Removing commits the deletion, then
deletes the file. All runs of one index share one ReID model (checked on every add).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from core.errors import UserError
from pipeline.search.arrayfile import read_arrays, write_arrays
from pipeline.search.gallery import Gallery, Vectors, load_run, quantize
from pipeline.search.model import check_comparable

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL, name TEXT NOT NULL, added REAL NOT NULL,
    content TEXT NOT NULL, file TEXT NOT NULL, layout TEXT NOT NULL, model TEXT NOT NULL, cameras TEXT NOT NULL,
    attribute_names TEXT NOT NULL, n_tracklets INTEGER NOT NULL, n_identities INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identities(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, global_id INTEGER NOT NULL,
    thumbnails TEXT NOT NULL, PRIMARY KEY(run_id, global_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracklets(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, row INTEGER NOT NULL, camera TEXT NOT NULL,
    track_id INTEGER NOT NULL, global_id INTEGER NOT NULL, start_time REAL NOT NULL, end_time REAL NOT NULL,
    n_boxes INTEGER NOT NULL, PRIMARY KEY(run_id, row)) WITHOUT ROWID;
"""
VERSION = "2"
COLUMNS = {"camera": "<i2", "track_id": "<i8", "ident": "<i4", "start": "<f8", "end": "<f8", "n_boxes": "<i4",
           "has_feature": "?", "has_attributes": "?"}          # per-tracklet columns of a run's array file
STALE_TMP_SECONDS = 3600          # unreferenced array files older than this are debris of a crash


def content_hash(run_dir: Path) -> str:
    """Changes when the run's identities or tracklets change (e.g. after 'mcmt associate')."""
    run_dir = Path(run_dir)
    h = hashlib.sha256((run_dir / "identities.json").read_bytes())
    for p in sorted(run_dir.glob("cache/*/tracklets.npz")):
        st = p.stat()
        h.update(f"{p.parent.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


class _Thumbnails:
    """``gid -> {camera: [paths]}`` of one indexed run, read from the catalog on demand."""

    def __init__(self, db: Path, run_id: int):
        self.db, self.run_id = db, run_id

    def get(self, gid: int, default=None):
        with closing(sqlite3.connect(self.db)) as con:
            row = con.execute("SELECT thumbnails FROM identities WHERE run_id=? AND global_id=?",
                              (self.run_id, int(gid))).fetchone()
        return json.loads(row[0]) if row else default


class SearchIndex:
    """See the module docstring. ``create=False`` makes a missing index a UserError."""

    def __init__(self, path, create: bool = False):
        self.path = Path(path)
        self.db = self.path / "index.sqlite"
        self.vectors = self.path / "vectors"
        if not self.db.is_file():
            if not create:
                raise UserError(f"no search index at {self.path}; create one with 'mcmt index add RUN --index "
                                f"{self.path}'")
            if self.path.exists() and any(self.path.iterdir()):
                raise UserError(f"{self.path} exists and is not a search index; choose another --index folder")
            self.vectors.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (VERSION,))
            version = con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0]
        if version != VERSION:
            raise UserError(f"{self.path} is a search index of another mcmt version ({version}, this one reads "
                            f"{VERSION}); make a new one with 'mcmt index add RUN --index NEW_FOLDER'")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db, timeout=60, isolation_level=None)   # transactions: explicit BEGIN
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA journal_mode=WAL")
        return con

    # ---- catalog ---------------------------------------------------------------------------
    def runs(self) -> list[dict]:
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            rows = con.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [{**dict(r), "model": json.loads(r["model"]), "cameras": json.loads(r["cameras"]),
                 "attribute_names": json.loads(r["attribute_names"]), "layout": json.loads(r["layout"])}
                for r in rows]

    def find_run(self, ref: str) -> dict:
        """A run by id, path or (unique) name; UserError lists the indexed runs."""
        runs = self.runs()
        path = str(Path(ref).resolve())
        hits = [r for r in runs if str(r["id"]) == str(ref)] or [r for r in runs if r["path"] == path] \
            or [r for r in runs if r["name"] == ref]
        if len(hits) == 1:
            return hits[0]
        listing = ", ".join(f"{r['id']}:{r['name']}" for r in runs) or "none"
        if hits:
            raise UserError(f"several indexed runs are named {ref!r}; give the id or path (runs: {listing})")
        raise UserError(f"run {ref!r} is not in the index {self.path} (runs: {listing})")

    def model(self) -> Optional[dict]:
        runs = self.runs()
        return runs[0]["model"] if runs else None

    # ---- add / remove ----------------------------------------------------------------------
    def add_run(self, run_dir) -> tuple[str, dict]:
        """Index a run folder: ("added" | "replaced" | "unchanged", run record)."""
        run_dir = Path(run_dir).resolve()
        digest = content_hash(run_dir) if (run_dir / "identities.json").is_file() else ""
        old = next((r for r in self.runs() if r["path"] == str(run_dir)), None)
        if old and digest and old["content"] == digest:
            return "unchanged", old
        g = load_run(run_dir)
        return self.add_gallery(g, str(run_dir), run_dir.name, digest)

    def add_gallery(self, g: Gallery, path: str, name: str, digest: str) -> tuple[str, dict]:
        """Index a gallery under ``path`` (the key: the same path again replaces it)."""
        if g.vectors is None:
            raise UserError(f"run {name!r} has no appearance features (made with --reid none): nothing to index")
        file, layout = self._write_arrays(g)
        try:
            status, run_id = self._commit(g, path, name, digest, file, layout)
        except BaseException:
            (self.vectors / file).unlink(missing_ok=True)
            raise
        self._collect_garbage()
        return status, next(r for r in self.runs() if r["id"] == run_id)

    def _write_arrays(self, g: Gallery) -> tuple[str, dict]:
        """The run's array file (written under a temporary name, then renamed): (file name, layout)."""
        name = f"{uuid.uuid4().hex}.bin"
        tmp = self.vectors / f".tmp-{name}"
        codes, scale = quantize(g.vectors.rows(slice(None)))
        attrs = (np.zeros((len(g), 0), np.uint8) if g.attributes is None else
                 np.round(np.clip(g.attribute_columns(range(len(g.attribute_names))), 0, 1) * 255).astype(np.uint8))
        arrays = {"codes": codes, "scale": scale, "attrs": attrs, "gids": np.asarray(g.gids, "<i8"),
                  **{c: np.asarray(getattr(g, c), dt) for c, dt in COLUMNS.items()}}
        try:
            layout = write_arrays(tmp, arrays)
            os.rename(tmp, self.vectors / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return name, layout

    def _commit(self, g: Gallery, path: str, name: str, digest: str, file: str, layout: dict) -> tuple[str, int]:
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")            # one writer at a time; readers go on (WAL)
            try:
                for (other, model) in con.execute("SELECT name, model FROM runs WHERE path != ?", (path,)):
                    check_comparable(g.model, json.loads(model), f"run {name!r}", f"the index {self.path} "
                                     f"(e.g. run {other!r})")
                old = con.execute("SELECT id, file FROM runs WHERE path=?", (path,)).fetchone()
                if old:
                    con.execute("DELETE FROM runs WHERE id=?", (old[0],))
                cur = con.execute(                        # a replaced run keeps its id
                    "INSERT INTO runs(id, path, name, added, content, file, layout, model, cameras, "
                    "attribute_names, n_tracklets, n_identities) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (old[0] if old else None, path, name, time.time(), digest, file, json.dumps(layout),
                     json.dumps(g.model), json.dumps(g.cameras), json.dumps(list(g.attribute_names)), len(g),
                     len(g.gids)))
                run_id = cur.lastrowid
                con.executemany("INSERT INTO identities VALUES (?,?,?)",
                                [(run_id, int(gid), json.dumps(g.thumbnails.get(int(gid)) or {})) for gid in g.gids])
                con.executemany("INSERT INTO tracklets VALUES (?,?,?,?,?,?,?,?)", zip(
                    [run_id] * len(g), range(len(g)), [g.cameras[c] for c in g.camera.tolist()],
                    g.track_id.tolist(), g.gids[g.ident].tolist(), g.start.tolist(), g.end.tolist(),
                    g.n_boxes.tolist()))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        if old:
            (self.vectors / old[1]).unlink(missing_ok=True)
        return ("replaced" if old else "added"), run_id

    def remove_run(self, ref: str) -> dict:
        run = self.find_run(ref)
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM runs WHERE id=?", (run["id"],))
        (self.vectors / run["file"]).unlink(missing_ok=True)
        return run

    def _collect_garbage(self) -> None:
        """Delete array files no committed run refers to (a crash between writing and committing),
        once they are old enough not to belong to an add in progress."""
        used = {r["file"] for r in self.runs()}
        now = time.time()
        for f in self.vectors.iterdir():
            if f.name.removeprefix(".tmp-") not in used and now - f.stat().st_mtime > STALE_TMP_SECONDS:
                f.unlink(missing_ok=True)

    # ---- reading ---------------------------------------------------------------------------
    def galleries(self, runs: Optional[list[dict]] = None) -> Iterator[Gallery]:
        """A memory-mapped gallery per indexed run (all runs, or the given catalog records)."""
        for r in (self.runs() if runs is None else runs):
            try:
                a = read_arrays(self.vectors / r["file"], r["layout"])
            except FileNotFoundError:           # removed while this query ran
                log.warning("index: run %s disappeared during the search", r["name"])
                continue
            names = tuple(r["attribute_names"])
            yield Gallery(
                run=r["name"], run_dir=Path(r["path"]), cameras=list(r["cameras"]), camera=a["camera"],
                track_id=a["track_id"], ident=a["ident"], gids=a["gids"], start=a["start"], end=a["end"],
                n_boxes=a["n_boxes"], vectors=Vectors(a["codes"], a["scale"]), has_feature=a["has_feature"],
                attributes=a["attrs"] if names else None, has_attributes=a["has_attributes"], attribute_names=names,
                model=r["model"], thumbnails=_Thumbnails(self.db, r["id"]), run_id=r["id"])

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

Integrity: each run's catalog row records the size and CRC-32 of its array file and a SHA-256 of the row
itself. A query checks every run it reads first; a damaged run (file missing, cut short, bytes changed,
row changed) stops the query with a UserError that names the run and the command that adds it again
(no partial results, no silently changed scores); 'mcmt index add' replaces a damaged run even when the
run folder is unchanged. A catalog that was emptied or cannot be read is refused, never silently
replaced by a new one (that would orphan every run's vectors).
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
from pipeline.runfolder.layout import CACHE_DIR, IDENTITIES_FILE, TRACKLETS_NPZ
from pipeline.search.arrayfile import check_file, file_digest, read_arrays, write_arrays
from pipeline.search.gallery import Gallery, Vectors, load_run, quantize
from pipeline.search.model import check_comparable

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL, name TEXT NOT NULL, added REAL NOT NULL,
    content TEXT NOT NULL, file TEXT NOT NULL, layout TEXT NOT NULL, model TEXT NOT NULL, cameras TEXT NOT NULL,
    attribute_names TEXT NOT NULL, n_tracklets INTEGER NOT NULL, n_identities INTEGER NOT NULL,
    size INTEGER, crc32 INTEGER, checksum TEXT);
CREATE TABLE IF NOT EXISTS identities(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, global_id INTEGER NOT NULL,
    thumbnails TEXT NOT NULL, PRIMARY KEY(run_id, global_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracklets(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, row INTEGER NOT NULL, camera TEXT NOT NULL,
    track_id INTEGER NOT NULL, global_id INTEGER NOT NULL, start_time REAL NOT NULL, end_time REAL NOT NULL,
    n_boxes INTEGER NOT NULL, PRIMARY KEY(run_id, row)) WITHOUT ROWID;
"""
VERSION = "3"                     # 3: size, crc32, checksum per run (2 is upgraded in place)
ROW_FIELDS = ("path", "name", "added", "content", "file", "layout", "model", "cameras", "attribute_names",
              "n_tracklets", "n_identities", "size", "crc32")    # what a run row's checksum covers
COLUMNS = {"camera": "<i2", "track_id": "<i8", "ident": "<i4", "start": "<f8", "end": "<f8", "n_boxes": "<i4",
           "has_feature": "?", "has_attributes": "?"}          # per-tracklet columns of a run's array file
STALE_TMP_SECONDS = 3600          # unreferenced array files older than this are debris of a crash


def content_hash(run_dir: Path) -> str:
    """Changes when the run's identities or tracklets change (e.g. after 'mcmt associate')."""
    run_dir = Path(run_dir)
    h = hashlib.sha256((run_dir / IDENTITIES_FILE).read_bytes())
    for p in sorted(run_dir.glob(f"{CACHE_DIR}/*/{TRACKLETS_NPZ}")):
        st = p.stat()
        h.update(f"{p.parent.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def row_checksum(row) -> str:
    """SHA-256 of a run's catalog row (the stored text of ``ROW_FIELDS``)."""
    return hashlib.sha256(json.dumps([row[f] for f in ROW_FIELDS]).encode()).hexdigest()


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
            self._create(create)
        version = self._version()
        if version == "2":
            self._upgrade()
        elif version != VERSION:
            raise UserError(f"{self.path} is a search index of another mcmt version ({version}, this one reads "
                            f"{VERSION}); make a new one with 'mcmt index add RUN --index NEW_FOLDER'")

    def _create(self, create: bool) -> None:
        """A new catalog, made aside and linked into place (a concurrent creator finds it whole)."""
        if self.vectors.is_dir() and any(self.vectors.glob("*.bin")):
            raise self._lost_catalog("it is missing")
        if not create:
            raise UserError(f"no search index at {self.path}; create one with 'mcmt index add RUN --index "
                            f"{self.path}'")
        if self.path.exists() and any(p.name != "vectors" for p in self.path.iterdir()):
            raise UserError(f"{self.path} exists and is not a search index; choose another --index folder")
        self.vectors.mkdir(parents=True, exist_ok=True)
        tmp = self.vectors / f".tmp-{uuid.uuid4().hex}.sqlite"     # debris of a crash: collected later
        try:
            with closing(self._connect(tmp)) as con, con:
                con.executescript(SCHEMA)
                con.execute("INSERT INTO meta VALUES ('version', ?)", (VERSION,))
            try:
                os.link(tmp, self.db)
            except FileExistsError:           # made by a concurrent 'mcmt index add'
                pass
        finally:
            tmp.unlink(missing_ok=True)

    def _lost_catalog(self, why: str) -> UserError:
        n = sum(1 for f in self.vectors.glob("*.bin")) if self.vectors.is_dir() else 0
        return UserError(f"the catalog {self.db} of the search index is damaged ({why}), so its {n} run(s) of "
                         f"vectors cannot be read; move {self.path} aside and add the runs again: "
                         f"mcmt index add RUN [RUN ...] --index {self.path}")

    def _version(self) -> str:
        try:
            with closing(self._connect()) as con:
                if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone():
                    row = con.execute("SELECT value FROM meta WHERE key='version'").fetchone()
                    if row:
                        return row[0]
        except sqlite3.DatabaseError as exc:
            raise self._lost_catalog(f"sqlite: {exc}") from exc
        raise self._lost_catalog("it is empty" if self.db.stat().st_size == 0 else "it holds no catalog")

    def _upgrade(self) -> None:
        """Version 2 -> 3: record the size and CRC-32 of each run's array file as it is now."""
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0] == "2":
                    for col in ("size INTEGER", "crc32 INTEGER", "checksum TEXT"):
                        con.execute(f"ALTER TABLE runs ADD COLUMN {col}")
                    con.row_factory = sqlite3.Row
                    for r in con.execute("SELECT * FROM runs").fetchall():
                        f = self.vectors / r["file"]
                        size, crc = file_digest(f) if f.is_file() else (None, None)
                        row = {**dict(r), "size": size, "crc32": crc}
                        con.execute("UPDATE runs SET size=?, crc32=?, checksum=? WHERE id=?",
                                    (size, crc, row_checksum(row), r["id"]))
                    con.execute("UPDATE meta SET value=? WHERE key='version'", (VERSION,))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _connect(self, db: Optional[Path] = None) -> sqlite3.Connection:
        con = sqlite3.connect(db or self.db, timeout=60, isolation_level=None)   # transactions: explicit BEGIN
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA journal_mode=WAL")
        return con

    # ---- catalog ---------------------------------------------------------------------------
    def runs(self) -> list[dict]:
        """The catalog's run records; ``damage`` says what is wrong with a record whose row changed."""
        try:
            with closing(self._connect()) as con:
                con.row_factory = sqlite3.Row
                rows = con.execute("SELECT * FROM runs ORDER BY id").fetchall()
            return [{**dict(r), "model": json.loads(r["model"]), "cameras": json.loads(r["cameras"]),
                     "attribute_names": json.loads(r["attribute_names"]), "layout": json.loads(r["layout"]),
                     "damage": None if r["checksum"] == row_checksum(r) else "its catalog row was changed"}
                    for r in rows]
        except (sqlite3.DatabaseError, ValueError) as exc:     # ValueError: a damaged JSON column
            raise self._lost_catalog(f"{type(exc).__name__}: {exc}") from exc

    def check(self, run: dict, full: bool = True) -> Optional[str]:
        """None when ``run``'s row and array file are as written, else what is wrong; ``full=False``
        leaves out the checksum of the file's bytes (sizes only: no read)."""
        return run["damage"] or check_file(self.vectors / run["file"], run["layout"], run["size"],
                                           run["crc32"] if full else None)

    def damage_message(self, run: dict, why: str) -> str:
        """One line: the damaged run and the command that adds it again (or removes it)."""
        fix = f"add it again with 'mcmt index add {run['path']} --index {self.path}'"
        if not (Path(run["path"]) / IDENTITIES_FILE).is_file():
            fix = f"its run folder is gone: remove it with 'mcmt index remove {run['id']} --index {self.path}'"
        return f"run {run['name']!r} (id {run['id']}) of the index {self.path} is damaged: {why}; {fix}"

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
        digest = content_hash(run_dir) if (run_dir / IDENTITIES_FILE).is_file() else ""
        old = next((r for r in self.runs() if r["path"] == str(run_dir)), None)
        if old and digest and old["content"] == digest and self.check(old) is None:
            return "unchanged", old
        g = load_run(run_dir)
        return self.add_gallery(g, str(run_dir), run_dir.name, digest)

    def add_gallery(self, g: Gallery, path: str, name: str, digest: str) -> tuple[str, dict]:
        """Index a gallery under ``path`` (the key: the same path again replaces it)."""
        if g.vectors is None:
            raise UserError(f"run {name!r} has no appearance features (made with --reid none): nothing to index")
        stored = self._write_arrays(g)
        try:
            status, run_id = self._commit(g, path, name, digest, stored)
        except BaseException:
            (self.vectors / stored["file"]).unlink(missing_ok=True)
            raise
        self._collect_garbage()
        return status, next(r for r in self.runs() if r["id"] == run_id)

    def _write_arrays(self, g: Gallery) -> dict:
        """The run's array file (written under a temporary name, then renamed): its catalog fields
        ``file`` (name), ``layout``, ``size`` and ``crc32``."""
        name = f"{uuid.uuid4().hex}.bin"
        tmp = self.vectors / f".tmp-{name}"
        codes, scale = quantize(g.vectors.rows(slice(None)))
        attrs = (np.zeros((len(g), 0), np.uint8) if g.attributes is None else
                 np.round(np.clip(g.attribute_columns(range(len(g.attribute_names))), 0, 1) * 255).astype(np.uint8))
        arrays = {"codes": codes, "scale": scale, "attrs": attrs, "gids": np.asarray(g.gids, "<i8"),
                  **{c: np.asarray(getattr(g, c), dt) for c, dt in COLUMNS.items()}}
        try:
            layout = write_arrays(tmp, arrays)
            size, crc = file_digest(tmp)
            os.rename(tmp, self.vectors / name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return {"file": name, "layout": layout, "size": size, "crc32": crc}

    def _commit(self, g: Gallery, path: str, name: str, digest: str, stored: dict) -> tuple[str, int]:
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")            # one writer at a time; readers go on (WAL)
            try:
                for (other, model) in con.execute("SELECT name, model FROM runs WHERE path != ?", (path,)):
                    check_comparable(g.model, json.loads(model), f"run {name!r}", f"the index {self.path} "
                                     f"(e.g. run {other!r})")
                old = con.execute("SELECT id, file FROM runs WHERE path=?", (path,)).fetchone()
                if old:
                    con.execute("DELETE FROM runs WHERE id=?", (old[0],))
                row = dict(path=path, name=name, added=time.time(), content=digest, file=stored["file"],
                           layout=json.dumps(stored["layout"]), model=json.dumps(g.model),
                           cameras=json.dumps(g.cameras), attribute_names=json.dumps(list(g.attribute_names)),
                           n_tracklets=len(g), n_identities=len(g.gids), size=stored["size"], crc32=stored["crc32"])
                row.update(id=old[0] if old else None, checksum=row_checksum(row))   # a replaced run keeps its id
                cur = con.execute(f"INSERT INTO runs({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                  tuple(row.values()))
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
    def _checked(self, runs: list[dict]) -> list[dict]:
        """``runs`` once each is checked: a damaged run is a UserError naming it (one line per run);
        a run removed meanwhile is left out."""
        ok, bad, current = [], [], None
        for r in runs:
            why = self.check(r)
            if why and not r["damage"] and not (self.vectors / r["file"]).exists():
                current = {x["id"]: x["file"] for x in self.runs()} if current is None else current
                if current.get(r["id"]) != r["file"]:
                    continue                    # removed or replaced by another process during this query
            if why:
                bad.append(self.damage_message(r, why))
            ok.append(r)
        if bad:
            raise UserError("\n".join(bad))
        return ok

    def galleries(self, runs: Optional[list[dict]] = None) -> Iterator[Gallery]:
        """A memory-mapped gallery per indexed run (all runs, or the given catalog records), after
        checking all of them (see the module docstring)."""
        for r in self._checked(self.runs() if runs is None else runs):
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

#!/usr/bin/env python
"""Why the search index is SQLite + memory-mapped numpy: the same million tracklets in other stores.

Each backend holds N embeddings (--dim, L2-normalised) with a camera and a time span per row, and
answers the same queries: the 10 best inner products over all rows, and over the rows of 2 of 8
cameras in a 10-minute window. Also timed: appending 10,000 rows, and the size on disk.

  numpy-int8    what pipeline.search.index does: int8 codes + per-row scale, memory-mapped .npy files
                (one set per 10,000-row run), scored block by block with numpy
  numpy-f32     the same with float32 files (4x the bytes, no dequantisation)
  sqlite-blob   the int8 codes as BLOBs in one SQLite file (one per run), read on every query
  duckdb        FLOAT[dim] column, array_inner_product + ORDER BY ... LIMIT (exact scan)
  lancedb       Lance table, brute-force search (no ANN index: building one takes minutes here)

DuckDB and LanceDB are not dependencies of mcmt; install them anywhere and pass --extra-path:

  pip install --target /tmp/pkgs duckdb lancedb
  python bench/search_backends.py --rows 1000000 --dim 512 --extra-path /tmp/pkgs
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUN = 10_000


def data(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for s in range(0, n, RUN):
        x = rng.standard_normal((min(RUN, n - s), dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        t0 = rng.uniform(0, 3600, len(x))
        yield x, rng.integers(0, 8, len(x)).astype(np.int16), t0, t0 + rng.uniform(1, 60, len(x))


def top10(scores: np.ndarray) -> np.ndarray:
    k = min(10, len(scores))
    idx = np.argpartition(-scores, k - 1)[:k]
    return idx[np.argsort(-scores[idx])]


class NumpyStore:
    def __init__(self, root: Path, dtype: str):
        self.root, self.dtype, self.parts = root, dtype, 0
        root.mkdir(parents=True)

    def add(self, x, cam, t0, t1):
        from pipeline.search.gallery import quantize

        d = self.root / str(self.parts)
        d.mkdir()
        if self.dtype == "int8":
            codes, scale = quantize(x)
            np.save(d / "codes.npy", codes)
            np.save(d / "scale.npy", scale)
        else:
            np.save(d / "codes.npy", x)
        np.save(d / "meta.npy", np.rec.fromarrays([cam, t0, t1], names="cam,t0,t1"))
        self.parts += 1

    def query(self, q, filt: bool):
        from pipeline.search.gallery import Vectors

        best = []
        for k in range(self.parts):
            d = self.root / str(k)
            v = Vectors(np.load(d / "codes.npy", mmap_mode="r"),
                        np.load(d / "scale.npy", mmap_mode="r") if self.dtype == "int8" else None)
            if filt:                                   # as pipeline.search.rank: score only the kept rows
                m = np.load(d / "meta.npy", mmap_mode="r")
                keep = np.flatnonzero(np.isin(m["cam"], (1, 2)) & (m["t1"] >= 600) & (m["t0"] <= 1200))
                s = np.full(len(m), -np.inf, np.float32)
                s[keep] = v.dot(q, keep)
            else:
                s = v.dot(q)
            i = top10(s)
            best += [(float(s[j]), k * RUN + int(j)) for j in i]
        return sorted(best, reverse=True)[:10]


class SqliteBlobStore:
    def __init__(self, root: Path):
        root.mkdir(parents=True)
        self.con = sqlite3.connect(root / "v.sqlite")
        self.con.execute("CREATE TABLE runs(id INTEGER PRIMARY KEY, codes BLOB, scale BLOB, cam BLOB, t0 BLOB, "
                         "t1 BLOB)")

    def add(self, x, cam, t0, t1):
        from pipeline.search.gallery import quantize

        codes, scale = quantize(x)
        with self.con:
            self.con.execute("INSERT INTO runs(codes, scale, cam, t0, t1) VALUES (?,?,?,?,?)",
                             (codes.tobytes(), scale.tobytes(), cam.tobytes(), t0.tobytes(), t1.tobytes()))

    def query(self, q, filt: bool):
        from pipeline.search.gallery import Vectors

        best = []
        for rid, codes, scale, cam, t0, t1 in self.con.execute("SELECT * FROM runs"):
            s = Vectors(np.frombuffer(codes, np.int8).reshape(-1, len(q)), np.frombuffer(scale, np.float32)).dot(q)
            if filt:
                m = (np.isin(np.frombuffer(cam, np.int16), (1, 2)) & (np.frombuffer(t1) >= 600)
                     & (np.frombuffer(t0) <= 1200))
                s[~m] = -np.inf
            best += [(float(s[j]), (rid - 1) * RUN + int(j)) for j in top10(s)]
        return sorted(best, reverse=True)[:10]


def arrow_table(x, cam, t0, t1, offset):
    import pyarrow as pa

    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
    return pa.table({"id": pa.array(np.arange(offset, offset + len(x))), "cam": pa.array(cam), "t0": pa.array(t0),
                     "t1": pa.array(t1), "v": vec})


class DuckStore:
    def __init__(self, root: Path, dim: int):
        import duckdb

        root.mkdir(parents=True)
        self.con, self.dim, self.n = duckdb.connect(str(root / "v.duckdb")), dim, 0
        self.con.execute(f"CREATE TABLE t(id BIGINT, cam SMALLINT, t0 DOUBLE, t1 DOUBLE, v FLOAT[{dim}])")

    def add(self, x, cam, t0, t1):
        tbl = arrow_table(x, cam, t0, t1, self.n)   # noqa: F841 (read by DuckDB by name)
        self.con.execute("INSERT INTO t SELECT * FROM tbl")
        self.n += len(x)

    def query(self, q, filt: bool):
        where = "WHERE cam IN (1, 2) AND t1 >= 600 AND t0 <= 1200" if filt else ""
        return self.con.execute(f"SELECT array_inner_product(v, ?::FLOAT[{self.dim}]) AS s, id FROM t {where} "
                                "ORDER BY s DESC LIMIT 10", [q.tolist()]).fetchall()


class LanceStore:
    def __init__(self, root: Path):
        import lancedb

        self.db, self.tbl, self.n = lancedb.connect(str(root)), None, 0

    def add(self, x, cam, t0, t1):
        t = arrow_table(x, cam, t0, t1, self.n)
        self.n += len(x)
        if self.tbl is None:
            self.tbl = self.db.create_table("t", data=t)
        else:
            self.tbl.add(t)

    def query(self, q, filt: bool):
        s = self.tbl.search(q, vector_column_name="v").metric("dot").limit(10)
        if filt:
            s = s.where("cam IN (1, 2) AND t1 >= 600 AND t0 <= 1200", prefilter=True)
        return s.to_arrow()


def size(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def bench(name, make, rows, dim, work: Path) -> dict:
    store = make(work / name)
    t0 = time.perf_counter()
    for part in data(rows - RUN, dim):
        store.add(*part)
    build = time.perf_counter() - t0
    extra = next(data(RUN, dim, seed=99))
    t0 = time.perf_counter()
    store.add(*extra)
    add = time.perf_counter() - t0
    q = extra[0][5] + 0.1 * extra[0][6]
    out = {"backend": name, "build s": build, "add 10k s": add, "GB": size(work / name)}
    for label, filt in (("query s", False), ("filtered query s", True)):
        store.query(q, filt)                                # warm: page cache, plans
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            store.query(q, filt)
            times.append(time.perf_counter() - t0)
        out[label] = float(np.median(times))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--backends", nargs="+", default=["numpy-int8", "numpy-f32", "sqlite-blob", "duckdb", "lancedb"])
    ap.add_argument("--extra-path", help="folder with duckdb / lancedb installed (appended to sys.path)")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.extra_path:
        sys.path.append(args.extra_path)
    makers = {"numpy-int8": lambda p: NumpyStore(p, "int8"), "numpy-f32": lambda p: NumpyStore(p, "f32"),
              "sqlite-blob": SqliteBlobStore, "duckdb": lambda p: DuckStore(p, args.dim), "lancedb": LanceStore}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mcmt-backends-"))
    rows = []
    try:
        for name in args.backends:
            try:
                rows.append(bench(name, makers[name], args.rows, args.dim, work))
            except ImportError as exc:
                print(f"{name}: skipped ({exc})")
            shutil.rmtree(work / name, ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    head = list(rows[0])
    print(f"\n{args.rows:,} rows x {args.dim} dims (top 10 by inner product; filtered: 2 of 8 cameras, 10 min)")
    print("  ".join(f"{h:>16}" for h in head))
    for r in rows:
        print("  ".join(f"{r[h]:>16.3f}" if isinstance(r[h], float) else f"{r[h]:>16}" for h in head))


if __name__ == "__main__":
    main()

"""What each file of a finished stage must hold (rows, bytes, SHA-256), recorded in the stage's json when
the stage is written and checked on every read. A file that disagrees with its record makes its stage
unfinished (the next run recomputes it); it is never used silently. Also the CSV rows of the stage
cache: written at full float32 precision, read back only when they are what was written.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

_CHUNK = 1 << 20
_VERIFIED: dict[tuple, Optional[str]] = {}     # (path, size, mtime, record) -> problem: a file is hashed once


def file_record(path: Path) -> dict:
    """{"rows": lines, "bytes": size, "sha256": hex} of a file, read once."""
    h, rows, size = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
            rows += block.count(b"\n")
            size += len(block)
    return {"rows": rows, "bytes": size, "sha256": h.hexdigest()}


def stage_manifest(folder: Path, names: tuple[str, ...]) -> dict:
    """{file name: record} of the named files of a stage folder."""
    return {name: file_record(Path(folder) / name) for name in names}


def check_file(path: Path, record: Mapping) -> Optional[str]:
    """None when ``path`` holds what ``record`` says, else what is wrong (naming the file)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return f"{path} is missing"
    memo = (str(path), st.st_size, st.st_mtime_ns, record.get("sha256"), record.get("rows"))
    if memo not in _VERIFIED:
        _VERIFIED[memo] = _problem(path, st.st_size, record)
    return _VERIFIED[memo]


def _problem(path: Path, size: int, record: Mapping) -> Optional[str]:
    if "bytes" in record and size != record["bytes"]:
        return f"{path} holds {size} bytes, the stage recorded {record['bytes']}"
    if "sha256" not in record and "rows" not in record:
        return None
    try:
        actual = file_record(path)
    except OSError as exc:
        return f"{path} cannot be read ({os.strerror(exc.errno) if exc.errno else exc})"
    if "rows" in record and actual["rows"] != record["rows"]:
        return f"{path} has {actual['rows']} rows, the stage recorded {record['rows']}"
    if "sha256" in record and actual["sha256"] != record["sha256"]:
        return f"{path} does not hold what the stage wrote (checksum differs)"
    return None


def check_manifest(folder: Path, manifest: Mapping[str, Mapping]) -> Optional[str]:
    """The first problem of the files a stage manifest lists, or None."""
    for name, record in manifest.items():
        problem = check_file(Path(folder) / name, record)
        if problem:
            return problem
    return None


# ---- the stage CSVs --------------------------------------------------------------------------
def format_rows(rows: np.ndarray) -> bytes:
    """Rows (N, C) as CSV: the frame number as an integer (exact at any video length), the rest %.9g
    (every float32 value read back exactly)."""
    if not len(rows):
        return b""
    buf = io.StringIO()
    np.savetxt(buf, rows, fmt=["%d"] + ["%.9g"] * (rows.shape[1] - 1), delimiter=",")
    return buf.getvalue().encode()


def parse_rows(data: bytes, cols: int, path: Path) -> np.ndarray:
    """(N, cols) float64 of CSV bytes; ValueError naming ``path`` when they are not such rows."""
    if not data.strip():
        return np.zeros((0, cols), np.float64)
    try:
        rows = np.loadtxt(io.StringIO(data.decode("ascii")), delimiter=",", ndmin=2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not CSV of numbers ({exc})") from None
    if rows.shape[1] != cols:
        raise ValueError(f"{path} has {rows.shape[1]} columns, expected {cols}")
    return rows


def valid_prefix(path: Path, meta: Mapping, cols: int) -> tuple[np.ndarray, Optional[str]]:
    """(rows (N, cols), None) of the prefix of an append-only CSV that its stage json vouches for (its
    ``rows``, ``bytes`` and ``sha256``), or (no rows, what is wrong)."""
    empty = np.zeros((0, cols))
    if "sha256" not in meta:
        return empty, f"{path} has no record of its rows (written by an older mcmt)"
    try:
        with open(path, "rb") as f:
            data = f.read(int(meta["bytes"]))
    except OSError:
        return empty, f"{path} is missing"
    if len(data) != int(meta["bytes"]) or hashlib.sha256(data).hexdigest() != meta["sha256"]:
        return empty, f"{path} does not hold the {meta['rows']} rows the stage recorded (cut or overwritten)"
    try:
        rows = parse_rows(data, cols, path)
    except ValueError as exc:
        return empty, str(exc)
    if len(rows) != int(meta["rows"]):
        return empty, f"{path} has {len(rows)} rows, the stage recorded {meta['rows']}"
    return rows, None

"""MOTChallenge text files: ``frame,id,x,y,w,h,conf,-1,-1,-1`` (1-based frames and ids).

``read_mot`` accepts comma or whitespace separated files with 6 to 10 columns (missing
columns are filled: conf 1, the rest -1) and returns a float64 array (N, 10);
``write_mot`` writes such rows atomically (tmp file then ``os.replace``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_text
from core.errors import UserError

_SPLIT = re.compile(r"[,\s]+")


def read_numeric_rows(path: str | Path, lo: int, hi: int, what: str, columns: str) -> list[list[float]]:
    """Numbers of a comma- or space-separated text file, one list per line with ``lo``..``hi``
    values; blank lines and ``#`` comments are skipped; problems raise UserError with the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in _SPLIT.split(line) if p]
        if not lo <= len(parts) <= hi:
            raise UserError(f"{path}:{lineno}: expected {lo} to {hi} values ({columns}), "
                            f"got {len(parts)}: {line[:80]!r}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise UserError(f"{path}:{lineno}: not a number in {line[:80]!r}") from None
    return rows


def read_mot(path: str | Path) -> np.ndarray:
    """Read a MOTChallenge file -> (N, 10) float64 rows sorted by (frame, id); (0, 10) if empty."""
    values = read_numeric_rows(path, 6, 10, "MOTChallenge", "frame,id,x,y,w,h,conf,...")
    rows = [v + [1.0, -1.0, -1.0, -1.0][len(v) - 6:] for v in values]
    if not rows:
        return np.zeros((0, 10), dtype=np.float64)
    out = np.asarray(rows, dtype=np.float64)  # (N, 10)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def write_mot(path: str | Path, rows: np.ndarray) -> Path:
    """Write (N, >=6) rows as MOTChallenge text (frame and id as integers), atomically."""
    path = Path(path)
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        rows = np.zeros((0, 10), dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 6:
        raise ValueError(f"write_mot needs rows (N, >=6): frame,id,x,y,w,h[,...], got shape {rows.shape}")
    if rows.shape[1] < 10:
        pad = np.tile(np.array([1.0, -1.0, -1.0, -1.0]), (len(rows), 1))[:, rows.shape[1] - 6:]
        rows = np.concatenate([rows, pad], axis=1)
    lines = [f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{r[6]:.4g},"
             f"{r[7]:.4g},{r[8]:.4g},{r[9]:.4g}\n" for r in rows[:, :10]]
    return atomic_write_text(path, "".join(lines))

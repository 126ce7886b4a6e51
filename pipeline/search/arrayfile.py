"""Several numpy arrays in one file, read back memory-mapped with no per-array parsing.

``write_arrays(path, {name: array})`` writes the raw bytes of each array (64-byte aligned) and returns
the layout ``{name: [offset, dtype, shape]}`` (small JSON, kept by the caller, e.g. in a catalog);
``read_arrays(path, layout)`` maps the file once and returns read-only views. One map per file instead
of one ``np.load`` per array keeps the fixed cost of opening many runs small.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Mapping

import numpy as np

ALIGN = 64


def write_arrays(path, arrays: Mapping[str, np.ndarray]) -> dict:
    """Write ``arrays`` to ``path`` (flushed to disk) and return their layout."""
    layout, pos = {}, 0
    with open(path, "wb") as fh:
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            pad = -pos % ALIGN
            fh.write(b"\0" * pad)
            pos += pad
            layout[name] = [pos, a.dtype.str, list(a.shape)]
            fh.write(a.tobytes())
            pos += a.nbytes
        fh.flush()
        os.fsync(fh.fileno())
    return layout


def read_arrays(path, layout: Mapping[str, list]) -> dict[str, np.ndarray]:
    """Read-only views of the arrays of ``layout`` in ``path`` (one memory map)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    out = {}
    for name, (offset, dtype, shape) in layout.items():
        count = int(np.prod(shape, dtype=np.int64))
        out[name] = np.frombuffer(mm, dtype=np.dtype(dtype), count=count, offset=offset if count else 0).reshape(shape)
    return out

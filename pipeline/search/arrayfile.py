"""Several numpy arrays in one file, read back memory-mapped with no per-array parsing.

``write_arrays(path, {name: array})`` writes the raw bytes of each array (64-byte aligned) and returns
the layout ``{name: [offset, dtype, shape]}`` (small JSON, kept by the caller, e.g. in a catalog);
``read_arrays(path, layout)`` maps the file once and returns read-only views. One map per file instead
of one ``np.load`` per array keeps the fixed cost of opening many runs small.

``file_digest(path)`` is the file's ``(size, CRC-32)``, recorded by the caller at write time;
``check_file(path, layout, size, crc32)`` says what is wrong with a file that no longer matches (missing,
cut short, grown, bytes changed), or None. CRC-32 rather than SHA-256: a search reads every byte of every
file on each query, and CRC-32 is about three times faster here while catching any accidental damage.
"""
from __future__ import annotations

import mmap
import os
import zlib
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

ALIGN = 64
CHUNK = 1 << 24


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


def layout_size(layout: Mapping[str, list]) -> int:
    """Bytes a file of ``layout`` must hold (the end of its last array)."""
    return max((offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
                for offset, dtype, shape in layout.values()), default=0)


def file_digest(path) -> tuple[int, int]:
    """(size in bytes, CRC-32) of the file at ``path``."""
    crc, size = 0, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    return size, crc


def check_file(path, layout: Mapping[str, list], size: Optional[int], crc32: Optional[int]) -> Optional[str]:
    """None when ``path`` holds what was written, else what is wrong (a few words)."""
    path = Path(path)
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return f"its vectors file {path} is missing"
    need = layout_size(layout) if size is None else size
    if actual < need:
        return f"its vectors file {path} is cut short ({actual:,} of {need:,} bytes)"
    if size is not None and actual != size:
        return f"its vectors file {path} has {actual:,} bytes instead of {size:,}"
    if crc32 is not None and file_digest(path)[1] != crc32:
        return f"its vectors file {path} was changed since it was added (checksum differs)"
    return None


def read_arrays(path, layout: Mapping[str, list]) -> dict[str, np.ndarray]:
    """Read-only views of the arrays of ``layout`` in ``path`` (one memory map)."""
    size = Path(path).stat().st_size
    if size < layout_size(layout):
        raise ValueError(f"{path} is cut short ({size:,} of {layout_size(layout):,} bytes)")
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    out = {}
    for name, (offset, dtype, shape) in layout.items():
        count = int(np.prod(shape, dtype=np.int64))
        out[name] = np.frombuffer(mm, dtype=np.dtype(dtype), count=count, offset=offset if count else 0).reshape(shape)
    return out

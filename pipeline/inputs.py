"""Checks on user-supplied input paths, done before any work starts."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pipeline.errors import UserError


def check_videos(paths: Sequence[str]) -> list[Path]:
    """Every entry must be an existing non-empty file or a folder; else a UserError naming it."""
    out = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise UserError(f"video not found: {p} (check the path given to --videos)")
        if path.is_file() and path.stat().st_size == 0:
            raise UserError(f"video file is empty: {p}")
        out.append(path)
    return out

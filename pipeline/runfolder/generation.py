"""The outputs of one association form one generation: ``generations/<NNNNNN>/`` holds ``mot/``, ``mtmc.txt``,
``identities.json``, ``thumbs/``, ``report.html`` (and ``videos/``) plus ``generation.json``, written last,
which records the checksum of every file and the fingerprint of the tracklets the association read. Only
then is ``current`` (a symlink) switched to it, in one ``os.replace``; the top-level ``mot``,
``identities.json``, ... are symlinks through ``current``. A failed or killed association leaves the
previous generation current and untouched.

Readers go through :func:`outputs_dir`: it resolves ``current`` once and refuses, with one line naming the
file and the command that fixes it, a generation whose tracklets are no longer the ones in the cache (a
later ``mcmt run`` redid a camera's stage and did not finish its association).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

from core.atomic import atomic_write_json, fsync_path
from core.errors import UserError
from pipeline.runfolder.layout import (CURRENT, GENERATION_FILE, GENERATIONS_DIR, IDENTITIES_FILE, OUTPUTS,
                                       TRACK_META, THUMBS_DIR, VIDEOS_DIR, camera_dir, fix_association, fix_run)
from pipeline.runfolder.manifest import check_file, file_record
from pipeline.runfolder.runfile import read_json

_MEDIA = (THUMBS_DIR, VIDEOS_DIR)          # recorded by size only (large, and never parsed back)


# ---- the tracklets a generation was made from ---------------------------------------------------
def tracklet_fingerprint(run_dir: Path, camera: str) -> Optional[str]:
    """A short hash of a camera's finished track stage (its key and the checksums of its files, as
    ``track.json`` records them); None when the stage is not finished."""
    meta = read_json(camera_dir(run_dir, camera) / TRACK_META)
    if not isinstance(meta, dict) or not meta.get("complete"):
        return None
    what = {"key": meta.get("key"), "files": meta["files"]} if "files" in meta else meta
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:20]


def fingerprints(run_dir: Path, cameras: Iterable[str]) -> dict[str, Optional[str]]:
    return {cam: tracklet_fingerprint(run_dir, cam) for cam in cameras}


# ---- writing -------------------------------------------------------------------------------
class Generation:
    """A generation being written: ``dir`` is where the association writes its outputs; :meth:`commit`
    makes it the run's current one. The caller holds the run folder's lock."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        root = self.run_dir / GENERATIONS_DIR
        root.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
        self.number = max(taken, default=0) + 1
        self.dir = root / f"{self.number:06d}"
        self.dir.mkdir()

    def commit(self, tracklets: dict[str, Optional[str]], extra: Optional[dict] = None) -> None:
        """Record every file and the tracklets' fingerprints (``generation.json``, written last), then
        switch ``current`` to this generation in one step."""
        files = {}
        for p in sorted(self.dir.rglob("*")):
            if p.is_file():
                rel = p.relative_to(self.dir).as_posix()
                files[rel] = {"bytes": p.stat().st_size} if rel.split("/")[0] in _MEDIA else file_record(p)
        atomic_write_json(self.dir / GENERATION_FILE, {"generation": self.number, "created": time.time(),
                                                       "tracklets": tracklets, "files": files, **(extra or {})})
        fsync_path(self.dir)
        previous = current_name(self.run_dir)
        if (self.run_dir / CURRENT).is_dir() and not (self.run_dir / CURRENT).is_symlink():
            _discard(self.run_dir, self.run_dir / CURRENT)     # a copy that followed the links (copytree, cp -L)
        _symlink_replace(self.run_dir / CURRENT, os.path.join(GENERATIONS_DIR, self.dir.name))
        fsync_path(self.run_dir)
        link_outputs(self.run_dir)
        collect(self.run_dir, keep={self.dir.name, previous})


def current_name(run_dir: Path) -> Optional[str]:
    """Folder name of the current generation, or None (no association finished yet, or a run folder
    written before generations)."""
    try:
        return Path(os.readlink(Path(run_dir) / CURRENT)).name
    except OSError:
        return None


def current_dir(run_dir: Path) -> Optional[Path]:
    """The current generation's folder: where ``current`` links to, or ``current`` itself when the run
    folder was copied by a tool that followed the links; None before the first generation."""
    run_dir = Path(run_dir)
    name = current_name(run_dir)
    if name is not None:
        return run_dir / GENERATIONS_DIR / name
    return run_dir / CURRENT if (run_dir / CURRENT / GENERATION_FILE).is_file() else None


def link_outputs(run_dir: Path) -> None:
    """The top-level ``mot``, ``identities.json``, ... as symlinks through ``current`` for what the current
    generation holds; outputs of a run folder written before generations are replaced."""
    run_dir = Path(run_dir)
    gen = run_dir / CURRENT
    for name in OUTPUTS:
        top, want = run_dir / name, os.path.join(CURRENT, name)
        if top.is_symlink() and os.readlink(top) == want and (gen / name).exists():
            continue
        if top.is_dir() and not top.is_symlink():
            _discard(run_dir, top)
        if (gen / name).exists():
            _symlink_replace(top, want)
        elif top.is_symlink() or top.exists():
            top.unlink()


def collect(run_dir: Path, keep: set) -> None:
    """Remove generations other than ``keep`` (the current and the previous one): those of finished older
    associations and those a killed association left unfinished."""
    root = Path(run_dir) / GENERATIONS_DIR
    for p in root.iterdir():
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink()


def adopt_legacy(run_dir: Path, cameras: Sequence[str]) -> None:
    """A run folder written before generations (outputs at its top, no ``current``) becomes generation 0,
    recorded as made from the tracklets its cache holds now; nothing to do otherwise."""
    run_dir = Path(run_dir)
    top = run_dir / IDENTITIES_FILE
    if current_dir(run_dir) is not None or top.is_symlink() or not top.is_file():
        return
    root = run_dir / GENERATIONS_DIR
    gen = root / f"{0:06d}"
    shutil.rmtree(gen, ignore_errors=True)
    gen.mkdir(parents=True)
    for name in OUTPUTS:
        if (run_dir / name).exists() and not (run_dir / name).is_symlink():
            os.replace(run_dir / name, gen / name)
    atomic_write_json(gen / GENERATION_FILE, {"generation": 0, "created": time.time(), "adopted": True,
                                              "tracklets": fingerprints(run_dir, cameras), "files": {}})
    _symlink_replace(run_dir / CURRENT, os.path.join(GENERATIONS_DIR, gen.name))
    link_outputs(run_dir)


# ---- reading -------------------------------------------------------------------------------
def outputs_dir(run_dir: Path, verify: Sequence[str] = ()) -> Path:
    """The folder that holds a run's outputs: its current generation, checked against the stage cache
    (and the files named in ``verify`` against their checksums), or the run folder itself when it was
    written before generations. ``verify``: relative paths, or folders ending in "/". UserError with one
    line naming the file and the fixing command."""
    run_dir = Path(run_dir)
    gen = current_dir(run_dir)
    if gen is None:
        return run_dir
    record = read_json(gen / GENERATION_FILE)
    if not isinstance(record, dict):
        raise UserError(f"{gen / GENERATION_FILE} is missing or unreadable: the run folder's outputs cannot be "
                        f"trusted; run '{fix_association(run_dir)}' to rewrite them")
    for cam, recorded in (record.get("tracklets") or {}).items():
        now = tracklet_fingerprint(run_dir, cam)
        where = camera_dir(run_dir, cam) / TRACK_META
        if now is None:
            raise UserError(f"{where}: camera '{cam}' has no finished tracks (a later 'mcmt run' stopped before "
                            f"finishing it), so {run_dir / IDENTITIES_FILE} no longer matches the cache; "
                            f"{fix_run(run_dir)} to finish it")
        if now != recorded:
            raise UserError(f"{run_dir / IDENTITIES_FILE} was made from other tracklets than {where.parent} now "
                            "holds (a later 'mcmt run' redid that camera and stopped before its association); "
                            f"run '{fix_association(run_dir)}' to redo the association")
    files = record.get("files") or {}
    for rel in files:
        if any(rel == v or (v.endswith("/") and rel.startswith(v)) for v in verify):
            problem = check_file(gen / rel, files[rel])
            if problem:
                raise UserError(f"{problem}; run '{fix_association(run_dir)}' to rewrite the run's outputs")
    return gen


# ---- file-system steps -----------------------------------------------------------------------
def _symlink_replace(path: Path, target: str) -> None:
    """``path`` becomes a symlink to ``target`` in one step (a new link renamed over the old entry)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _discard(run_dir: Path, folder: Path) -> None:
    """Move a folder out of the way (one rename) and delete it."""
    trash = Path(run_dir) / GENERATIONS_DIR / f".discard-{folder.name}-{os.getpid()}"
    trash.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)

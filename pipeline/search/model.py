"""Which ReID model made a run's embeddings, and whether two runs' embeddings are comparable.

A model record is a small dict stored with every indexed run::

    {"spec": "default", "name": "default", "path": "/abs/reid/weights/default.pt", "dim": 640,
     "sha256": "...", "attributes": 33}

``sha256`` covers the model file and its same-stem companions (OpenVINO ``.bin``); it is None when the
file cannot be found any more, and then name and dimension decide.
"""
from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import reid
from core.errors import UserError

log = logging.getLogger(__name__)

# reid.encoder.DEFAULT_CHECKPOINT, without importing torch (attribute and index queries need no model)
DEFAULT_CHECKPOINT = Path(reid.__file__).resolve().parent / "weights" / "default.pt"


def resolve_spec(spec: str, run_dir: Optional[Path] = None) -> Optional[Path]:
    """The model file of a ``reid.checkpoint`` value (``default``, a path relative to where the run was
    started, ...); None for ``none`` or a file that is gone."""
    if not spec or str(spec).lower() == "none":
        return None
    if str(spec) == "default":
        return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None
    p = Path(spec).expanduser()
    candidates = [p] if p.is_absolute() else [p] + ([Path(run_dir).resolve().parent / p,
                                                     Path(run_dir).resolve().parent.parent / p] if run_dir else [])
    for c in candidates:
        if c.exists():
            if c.is_dir():
                from reid.external import find_model_file
                c = find_model_file(c)
            return c.resolve()
    return None


def _companions(path: Path) -> list[Path]:
    return sorted(f for f in path.parent.iterdir() if f.is_file() and (f == path or f.name.startswith(path.stem + ".")))


@lru_cache(maxsize=8)
def _sha256(path: str, _stamp: tuple) -> str:
    digest = hashlib.sha256()
    for f in _companions(Path(path)):
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in _companions(Path(path)))
    return _sha256(str(path), stamp)


def model_record(spec: str, dim: int, attribute_names: Sequence[str], run_dir: Optional[Path] = None) -> dict:
    path = resolve_spec(spec, run_dir)
    name = "default" if str(spec) == "default" else Path(str(spec)).stem
    return {"spec": str(spec), "name": name, "path": str(path) if path else None, "dim": int(dim),
            "sha256": file_sha256(path) if path else None, "attributes": len(attribute_names)}


def run_model(run_dir: Path, tracklets: Sequence) -> dict:
    """The model record of a run folder (run.json's reid.checkpoint, the dimension of its features)."""
    from pipeline.runfolder.layout import CACHE_DIR, TRACKLETS_NPZ
    from pipeline.runfolder.runfile import run_settings

    spec = str((run_settings(run_dir).get("reid") or {}).get("checkpoint", "default"))
    dim = next((t.features.shape[1] for t in tracklets if t.has_features), 0)
    names = next((t.attribute_names for t in tracklets if t.attribute_names), ())
    rec = model_record(spec, dim, names, run_dir)
    path = rec["path"]
    if path and tracklets:
        made = max(p.stat().st_mtime for p in Path(run_dir).glob(f"{CACHE_DIR}/*/{TRACKLETS_NPZ}"))
        if Path(path).stat().st_mtime > made:
            log.warning("the ReID model %s was changed after run %s was made: its embeddings may not match the "
                        "run's; rerun 'mcmt run' (or pass --reid with the model the run used)", path, run_dir)
    return rec


def same_model(a: dict, b: dict) -> bool:
    if int(a.get("dim", 0)) != int(b.get("dim", 0)):
        return False
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"]
    return a.get("name") == b.get("name")


def describe(rec: dict) -> str:
    sha = (rec.get("sha256") or "")[:12]
    return f"{rec.get('name')} ({rec.get('dim')}-d{', sha256 ' + sha if sha else ''})"


def check_comparable(a: dict, b: dict, what_a: str, what_b: str) -> None:
    """UserError when embeddings of ``a`` and ``b`` cannot be compared."""
    if not same_model(a, b):
        raise UserError(f"{what_a} was made with ReID model {describe(a)}, {what_b} with {describe(b)}: their "
                        "embeddings are not comparable; use a separate index (--index OTHER) or redo the run with "
                        f"--reid {b.get('spec') if b.get('spec') == 'default' else b.get('path') or b.get('spec')}")


def load_encoder(rec: dict, override: Optional[str] = None, device: str = "cpu"):
    """The ReIDEncoder that made ``rec``'s embeddings (``override``: another path to the same model)."""
    from reid.encoder import ReIDEncoder

    if not rec.get("dim"):
        raise UserError("this run has no appearance features (made with --reid none): search by --attributes, or "
                        "redo the run with a ReID model")
    if override:
        path = resolve_spec(override)
        if path is None:
            raise UserError(f"--reid {override}: model file not found")
    else:
        path = Path(rec["path"]) if rec.get("path") else None
        if path is None or not path.exists():
            raise UserError(f"the ReID model of this run ({rec.get('spec')}) is not found here; pass its file "
                            "with --reid")
    if override and rec.get("sha256") and file_sha256(path) != rec["sha256"]:
        raise UserError(f"--reid {override} is not the model the run/index was made with ({describe(rec)}): "
                        "embeddings would not be comparable")
    enc = ReIDEncoder.from_checkpoint(path, device=device)
    if enc.dim != int(rec["dim"]):
        raise UserError(f"the ReID model {path} gives {enc.dim}-d embeddings, the run/index holds {rec['dim']}-d "
                        "ones: not the model the run was made with; pass it with --reid")
    return enc

"""AI City multi-camera tracking files (``mtmc.txt``).

One row per box, all cameras in one file:
``camera_id obj_id frame_id xmin ymin width height xworld yworld`` (space separated; readers
also accept commas). ``camera_id`` and ``frame_id`` are 1-based, ``obj_id`` is the GLOBAL
identity; ``xworld yworld`` are -1 when unknown.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pipeline.atomic import atomic_write_text
from pipeline.mot_io import read_numeric_rows
from pipeline.errors import UserError

MTMC_COLUMNS = ("camera_id", "obj_id", "frame_id", "xmin", "ymin", "width", "height", "xworld", "yworld")
_SPLIT = re.compile(r"[,\s]+")


def read_mtmc(path: str | Path) -> np.ndarray:
    """Read an AI City file; (N, 9) float64. Missing world columns are filled with -1.

    Blank lines and lines starting with ``#`` are skipped; an empty file gives (0, 9).
    """
    values = read_numeric_rows(path, 7, 9, "multi-camera", " ".join(MTMC_COLUMNS))
    rows = [v + [-1.0] * (9 - len(v)) for v in values]
    if not rows:
        return np.zeros((0, 9), np.float64)
    return np.asarray(rows, np.float64)  # (N, 9)


def format_mtmc(rows: np.ndarray) -> str:
    """Text of an AI City file: integer ids/frames/boxes rounded to 2 decimals, world coords 4."""
    rows = np.asarray(rows, np.float64).reshape(-1, 9)
    lines = [
        f"{int(r[0])} {int(r[1])} {int(r[2])} {r[3]:.2f} {r[4]:.2f} {r[5]:.2f} {r[6]:.2f} "
        f"{r[7]:.4f} {r[8]:.4f}"
        for r in rows
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def write_mtmc(path: str | Path, rows: np.ndarray) -> Path:
    """Write (N, 9) rows atomically (tmp file then rename), sorted by camera, frame, id."""
    path = Path(path)
    rows = np.asarray(rows, np.float64)
    if rows.size and (rows.ndim != 2 or rows.shape[1] != 9):
        raise ValueError(f"write_mtmc expects (N, 9) rows ({' '.join(MTMC_COLUMNS)}), got {rows.shape}")
    rows = rows.reshape(-1, 9)
    order = np.lexsort((rows[:, 1], rows[:, 2], rows[:, 0]))
    return atomic_write_text(path, format_mtmc(rows[order]))


def mot_to_mtmc(per_camera: Mapping[str, np.ndarray], camera_order: Sequence[str]) -> np.ndarray:
    """Join per-camera MOTChallenge rows (N, 10) into AI City rows (M, 9).

    ``camera_id`` is the 1-based index of the camera in ``camera_order``; MOT columns 7-8
    (world x, y in MOT15 ground truth, else -1) become ``xworld yworld``.
    """
    out = []
    for cam_idx, name in enumerate(camera_order, 1):
        mot = np.asarray(per_camera.get(name, np.zeros((0, 10))), np.float64).reshape(-1, 10)
        cam = np.full((len(mot), 1), float(cam_idx))
        out.append(np.hstack([cam, mot[:, [1, 0]], mot[:, 2:6], mot[:, 7:9]]))  # (n, 9)
    return np.vstack(out) if out else np.zeros((0, 9))


def mtmc_to_mot(rows: np.ndarray, camera_order: Sequence[str]) -> dict[str, np.ndarray]:
    """Split AI City rows (N, 9) into per-camera MOTChallenge rows (n, 10) keyed by camera name."""
    rows = np.asarray(rows, np.float64).reshape(-1, 9)
    out = {}
    for cam_idx, name in enumerate(camera_order, 1):
        r = rows[rows[:, 0] == cam_idx]
        mot = np.full((len(r), 10), -1.0)
        mot[:, 0], mot[:, 1] = r[:, 2], r[:, 1]
        mot[:, 2:6] = r[:, 3:7]
        mot[:, 6] = 1.0
        mot[:, 7:9] = r[:, 7:9]
        out[name] = mot
    return out


def _camera_names_near(path: Path, n: int) -> list[str]:
    """Camera names for AI City ids 1..n: identities.json "cameras" next to the file, else "1".."n"."""
    ident = path.parent / "identities.json"
    if ident.is_file():
        try:
            names = [c["name"] for c in json.loads(ident.read_text()).get("cameras", [])]
        except (ValueError, KeyError, TypeError):
            names = []
        if len(names) >= n:
            return names
    return [str(i) for i in range(1, n + 1)]


def load_tracks(path: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per-camera MOTChallenge rows (n, 10) of a run folder, a ground-truth folder or one file.

    Accepted, first match wins: ``<dir>/mot/<camera>.txt`` (an ``mcmt run`` folder);
    ``<dir>/**/<camera>/gt/gt.txt`` (MOTChallenge / TrackEval sequence folders);
    ``<dir>/mtmc.txt`` or an AI City file given directly (cameras named from a neighbouring
    identities.json, else "1", "2", ...); ``<dir>/<camera>.txt``; a single MOT file (one camera
    named after the file). Returns (camera names in order, {camera: rows}).
    """
    from pipeline.mot_io import read_mot

    path = Path(path)
    if not path.exists():
        raise UserError(f"not found: {path} (give a run folder, a ground-truth folder or a tracking file)")
    if path.is_file():
        if "mtmc" in path.name:
            return _split_mtmc(path)
        return [path.stem], {path.stem: read_mot(path)}
    files = sorted((path / "mot").glob("*.txt"))
    if files:
        names = [f.stem for f in files]
        order = [n for n in _camera_names_near(path / "mtmc.txt", 0) if n in names]
        names = order + [n for n in names if n not in order]
        return names, {f.stem: read_mot(f) for f in files}
    seqs = sorted(path.glob("**/gt/gt.txt"))
    if seqs:
        names = [f.parent.parent.name for f in seqs]
        if len(set(names)) != len(names):
            raise UserError(f"{path}: several sequences share a name ({', '.join(names)}); point --gt at one split")
        return names, {f.parent.parent.name: read_mot(f) for f in seqs}
    if (path / "mtmc.txt").is_file():
        return _split_mtmc(path / "mtmc.txt")
    files = sorted(path.glob("*.txt"))
    if files:
        return [f.stem for f in files], {f.stem: read_mot(f) for f in files}
    raise UserError(f"{path}: no tracking files found; expected mot/<camera>.txt, <camera>/gt/gt.txt, "
                    "mtmc.txt or <camera>.txt")


def _split_mtmc(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    rows = read_mtmc(path)
    n = int(rows[:, 0].max()) if len(rows) else 0
    names = _camera_names_near(path, n)
    return names, mtmc_to_mot(rows, names)


def align_cameras(gt_names: Sequence[str], pred_names: Sequence[str]) -> dict[str, str]:
    """{gt camera: pred camera}: by name, or by position when one side only has AI City numbers."""
    common = [n for n in gt_names if n in set(pred_names)]
    if common:
        return {n: n for n in common}
    numeric = all(n.isdigit() for n in gt_names) or all(n.isdigit() for n in pred_names)
    if numeric:
        return {g: p for g, p in zip(gt_names, pred_names)}
    raise UserError(f"no camera in common between ground truth ({', '.join(gt_names)}) and prediction "
                    f"({', '.join(pred_names)}); name the ground-truth folders after the videos' file stems")


def is_mtmc_input(path: str | Path) -> bool:
    """True when ``load_tracks`` would read ``path`` as an AI City file (no per-camera MOT files)."""
    path = Path(path)
    if path.is_file():
        return "mtmc" in path.name
    return (path.is_dir() and (path / "mtmc.txt").is_file() and not any((path / "mot").glob("*.txt"))
            and not any(path.glob("**/gt/gt.txt")))

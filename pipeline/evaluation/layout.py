"""Where tracks live on disk, found in one place: run folders, MOTChallenge/TrackEval ground-truth
folders, folders of ``<seq>.txt``, single MOT files and AI City ``mtmc.txt`` files (each read once).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import UserError
from pipeline.formats.aicity import mtmc_to_mot, read_mtmc
from pipeline.formats.mot import read_mot
from pipeline.runfolder.layout import IDENTITIES_FILE, MOT_DIR, MTMC_FILE, RUN_FILE


def _camera_names_near(path: Path, n: int) -> list[str]:
    """Camera names for AI City ids 1..n: identities.json "cameras" next to the file, else "1".."n"."""
    ident = path.parent / IDENTITIES_FILE
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
    path = Path(path)
    if not path.exists():
        raise UserError(f"not found: {path} (give a run folder, a ground-truth folder or a tracking file)")
    if path.is_file():
        if "mtmc" in path.name:
            return _split_mtmc(path)
        name = path.parent.parent.name if path.name == "gt.txt" and path.parent.name == "gt" else path.stem
        return [name], {name: read_mot(path)}
    if (path / RUN_FILE).is_file():
        path = _run_outputs(path)
    files = sorted((path / MOT_DIR).glob("*.txt"))
    if files:
        names = [f.stem for f in files]
        order = [n for n in _camera_names_near(path / MTMC_FILE, 0) if n in names]
        names = order + [n for n in names if n not in order]
        return names, {f.stem: read_mot(f) for f in files}
    seqs = sorted(path.glob("**/gt/gt.txt"))
    if seqs:
        names = [f.parent.parent.name for f in seqs]
        if len(set(names)) != len(names):
            raise UserError(f"{path}: several sequences share a name ({', '.join(names)}); point --gt at one split")
        return names, {f.parent.parent.name: read_mot(f) for f in seqs}
    if (path / MTMC_FILE).is_file():
        return _split_mtmc(path / MTMC_FILE)
    files = [f for f in sorted(path.glob("*.txt")) if "mtmc" not in f.stem]
    if files:
        return [f.stem for f in files], {f.stem: read_mot(f) for f in files}
    raise UserError(f"{path}: no tracking files found; expected mot/<camera>.txt, <camera>/gt/gt.txt, "
                    "mtmc.txt or <camera>.txt")


def _run_outputs(run_dir: Path) -> Path:
    """The complete outputs of an ``mcmt run`` folder: its current generation, checked against the stage
    cache and the checksums it records (pipeline/runfolder/generation.py)."""
    from pipeline.runfolder.generation import outputs_dir

    return outputs_dir(run_dir, verify=[MOT_DIR + "/", MTMC_FILE])


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


def pair_sequences(gt_names: Sequence[str], pred_names: Sequence[str]) -> dict[str, str]:
    """{gt sequence: pred sequence}: one on each side pairs whatever the names, else
    ``align_cameras``; a ground-truth sequence without prediction is an error that names it."""
    if len(gt_names) == 1 and len(pred_names) == 1:
        return {gt_names[0]: pred_names[0]}
    mapping = align_cameras(gt_names, pred_names)
    missing = [n for n in gt_names if n not in mapping]
    if missing:
        raise UserError(f"no prediction for sequence(s) {', '.join(missing)}; predictions found: "
                        f"{', '.join(pred_names)}")
    return mapping

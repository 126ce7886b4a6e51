"""Every name in a run folder, in one place (no other module spells them)::

    run.json                  cameras and settings of the per-camera stage (+ the latest association's thresholds)
    run.lock                  held (fcntl.flock) while an 'mcmt run' / 'mcmt associate' writes the folder
    cache/<camera>/           the per-camera stage cache (pipeline/runfolder/cache.py):
        dets.csv detect.json  boxes.csv tracklets.npz tracklets.json track.json thumbs/ chunks/<NNNNN>/
    generations/<NNNNNN>/     the outputs of one association (pipeline/runfolder/generation.py):
        mot/<camera>.txt mtmc.txt identities.json thumbs/ report.html videos/ generation.json
    current                   symlink -> generations/<NNNNNN>, switched atomically once a generation is complete
    mot, mtmc.txt, identities.json, thumbs, report.html, videos
                              symlinks through ``current`` (the user-facing paths)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"
CACHE_DIR = "cache"
GENERATIONS_DIR = "generations"
CURRENT = "current"
GENERATION_FILE = "generation.json"

# outputs of one association (inside a generation; linked at the top of the run folder)
MOT_DIR = "mot"
MTMC_FILE = "mtmc.txt"
IDENTITIES_FILE = "identities.json"
THUMBS_DIR = "thumbs"
REPORT_FILE = "report.html"
VIDEOS_DIR = "videos"
OUTPUTS = (MOT_DIR, MTMC_FILE, IDENTITIES_FILE, THUMBS_DIR, REPORT_FILE, VIDEOS_DIR)

# the stage cache of one camera (or one time chunk of it)
DETS_FILE = "dets.csv"
DETECT_META = "detect.json"
BOXES_FILE = "boxes.csv"
TRACKLETS_NPZ = "tracklets.npz"
TRACKLETS_JSON = "tracklets.json"
TRACK_META = "track.json"
STAGE_SETTINGS = "settings.json"      # the settings that made the finished track stage (named by a refusal)
CHUNKS_DIR = "chunks"
TRACK_FILES = (BOXES_FILE, TRACKLETS_NPZ, TRACKLETS_JSON)


def camera_dir(run_dir: Path, camera: str, chunk: Optional[int] = None) -> Path:
    """``cache/<camera>/``, or ``cache/<camera>/chunks/<NNNNN>/`` of a time chunk."""
    d = Path(run_dir) / CACHE_DIR / camera
    return d if chunk is None else d / CHUNKS_DIR / f"{int(chunk):05d}"


def mot_file(folder: Path, camera: str) -> Path:
    """``mot/<camera>.txt`` of a generation (or of a run folder written before generations)."""
    return Path(folder) / MOT_DIR / f"{camera}.txt"


def video_file(folder: Path, camera: str) -> Path:
    return Path(folder) / VIDEOS_DIR / f"{camera}.mp4"


def thumb_name(gid: int, camera: str, k: int) -> str:
    """Relative path of an identity's k-th thumbnail of a camera, as identities.json lists it."""
    return f"{THUMBS_DIR}/{gid}_{camera}_{k}.jpg"


def cache_thumb_name(track_id: int, k: int) -> str:
    """Name of a tracklet's k-th thumbnail in its camera's ``cache/<camera>/thumbs/``."""
    return f"{int(track_id)}_{k}.jpg"


def fix_association(run_dir: Path) -> str:
    """The command that rewrites a run folder's outputs from its stage cache."""
    return f"mcmt associate --run {run_dir}"


def fix_run(run_dir: Path) -> str:
    return f"rerun 'mcmt run' with --out {run_dir}"

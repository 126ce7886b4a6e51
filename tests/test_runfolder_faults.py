"""Fault injection (issue 32): ``mcmt run`` and ``mcmt associate`` killed with SIGKILL at random points
(fixed seed), then rerun, write the same outputs as a clean run, byte for byte; after every kill a reader
sees either a complete generation equal to a clean one or a refusal, never a mix."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from core.errors import UserError
from pipeline.runfolder.generation import outputs_dir

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VIDEOS = [str(SAMPLES / f"{c}.mp4") for c in ("pets_left", "pets_right")]
RUN = ["run", "--videos", *VIDEOS, "--max-frames", "60", "--reid", "none", "--device", "cpu", "--no-progress", "-q"]
CHANGE = ["--set", "association.short_tracklets=drop", "--set", "association.min_tracklet_length=15"]
RUN_KILLS, ASSOCIATE_KILLS, TRIES = 11, 9, 20      # kills wanted of each command, at most TRIES starts each


def _cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *argv]


def _outputs(folder: Path) -> dict[str, bytes]:
    """mot/*, mtmc.txt and identities.json (without its summary of timings) of a folder of outputs."""
    out = {f"mot/{p.name}": p.read_bytes() for p in sorted((folder / "mot").glob("*.txt"))}
    out["mtmc.txt"] = (folder / "mtmc.txt").read_bytes()
    doc = json.loads((folder / "identities.json").read_text())
    doc.pop("summary")
    out["identities.json"] = json.dumps(doc, sort_keys=True).encode()
    return out


def _seen(run: Path) -> Optional[dict[str, bytes]]:
    """What a reader sees: the outputs of the current generation, or None when it refuses or there is none."""
    try:
        folder = outputs_dir(run, verify=["mot/", "mtmc.txt", "identities.json"])
    except UserError:
        return None
    return _outputs(folder) if (folder / "identities.json").exists() else None


def _start(argv: list[str], run: Path) -> tuple[subprocess.Popen, float]:
    """Start ``mcmt argv`` and wait until it holds the run folder's lock (its inputs are checked, its
    models loaded: from here on it writes); returns the process and the time it took the lock."""
    proc = subprocess.Popen(_cmd(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock, deadline = run / "run.lock", time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        try:
            if lock.read_text().startswith(f"pid {proc.pid}:"):
                break
        except OSError:
            pass
        time.sleep(0.005)
    return proc, time.perf_counter()


def _complete(argv: list[str], run: Path) -> float:
    """Run ``mcmt argv`` to the end; returns the seconds it worked while holding the lock."""
    proc, locked = _start(argv, run)
    assert proc.wait() == 0
    return time.perf_counter() - locked


def _kill_at_random(argv: list[str], run: Path, rng: random.Random, work_seconds: float) -> bool:
    """SIGKILL ``mcmt argv`` a random time after it took the lock; False when it finished first."""
    proc, _ = _start(argv, run)
    time.sleep(rng.uniform(0.0, work_seconds))
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return not finished


def test_killed_runs_and_associations_rerun_to_the_clean_outputs(tmp_path):
    rng = random.Random(32)
    clean, changed = tmp_path / "clean", tmp_path / "changed"
    run_seconds = _complete([*RUN, "--out", str(clean)], clean)
    shutil.copytree(clean, changed, symlinks=True)
    assoc_seconds = _complete(["associate", "--run", str(changed), *CHANGE], changed)
    want, want_changed = _outputs(clean), _outputs(changed)
    assert want != want_changed and any(want[k] for k in want if k.startswith("mot/"))

    run, kills = tmp_path / "run", {"run": 0, "associate": 0}
    for _ in range(TRIES):
        killed = _kill_at_random([*RUN, "--out", str(run)], run, rng, run_seconds)
        kills["run"] += killed
        run_seconds *= 1.0 if killed else 0.5                   # less left to do: kill sooner
        assert _seen(run) in (None, want)                       # a complete, clean generation or a refusal
        if kills["run"] >= RUN_KILLS:
            break
    _complete([*RUN, "--out", str(run)], run)
    assert _outputs(run) == want

    for _ in range(TRIES):
        killed = _kill_at_random(["associate", "--run", str(run), *CHANGE], run, rng, assoc_seconds)
        kills["associate"] += killed
        assoc_seconds *= 1.0 if killed else 0.5
        assert _seen(run) in (want, want_changed)               # the previous generation or the new one, whole
        if kills["associate"] >= ASSOCIATE_KILLS:
            break
    _complete(["associate", "--run", str(run), *CHANGE], run)
    assert _outputs(run) == want_changed
    assert kills == {"run": RUN_KILLS, "associate": ASSOCIATE_KILLS}, kills
    assert len(os.listdir(run / "generations")) <= 2            # killed associations leave no debris behind

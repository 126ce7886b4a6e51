"""Run one benchmark measurement in a child process (clean timing and peak memory per job)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(script: str, args: list[str], env: dict[str, str] | None = None) -> dict:
    """``python SCRIPT --child ARGS...`` in the repository root (with ``env`` added to the environment);
    returns the last JSON line it prints."""
    res = subprocess.run([sys.executable, script, "--child", *args], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **env} if env else None)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        raise RuntimeError(f"child {args[0]} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return json.loads(lines[-1])

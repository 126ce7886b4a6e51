"""One writer per run folder: ``run.lock`` is held with ``fcntl.flock`` while an ``mcmt run`` or ``mcmt
associate`` writes the folder. The kernel releases the lock when the process ends, however it ends
(kill -9 included), so a lock is never stale; the file keeps the holder's pid and command for the message.

Ray workers of an ``mcmt run`` write their units' caches without taking the lock themselves: the driver holds
it from before it plans until every task it started has ended, so its lock covers them. A worker checks
(:func:`check_holder`) that the lock file still names the run that started it before it writes anything, so a
task that outlives its driver (retried after the driver died, say) never writes into a folder that another
``mcmt`` now holds.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

from core.errors import UserError
from pipeline.runfolder.layout import LOCK_FILE


class RunLock:
    """``with RunLock(run_dir, "mcmt run"):`` holds the run folder's lock, or raises UserError naming the
    process that holds it."""

    def __init__(self, run_dir: Path, command: str = ""):
        self.path = Path(run_dir) / LOCK_FILE
        self.command = command or " ".join(["mcmt", *sys.argv[1:3]])
        self._fd = -1

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(f"{self.path.parent} is being written by another mcmt ({holder}); wait for it to "
                            "finish or give another --out (the lock is released when that process ends)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {self.command}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def holder_of(run_dir: Path) -> str:
    """What ``run.lock`` says about its holder ('' when no one holds it or the file is missing)."""
    try:
        return (Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def held_here(run_dir: Path) -> str:
    """The holder line of ``run_dir``'s lock when this process holds it (what its Ray workers check), else ''."""
    line = holder_of(run_dir)
    return line if line.startswith(f"pid {os.getpid()}:") else ""


def check_holder(run_dir: Path, holder: str) -> None:
    """UserError unless ``run_dir``'s lock is still held by ``holder`` (the line :func:`held_here` gave the
    driver): a Ray task calls it before writing into the run folder."""
    now = holder_of(run_dir)
    if now != holder:
        raise UserError(f"{run_dir} is no longer held by the mcmt run that started this task ({holder}) but "
                        f"{'by ' + now if now else 'by no one'}; this task wrote nothing (rerun the command to "
                        "continue)")


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown: it is starting"

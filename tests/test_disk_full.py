"""A full disk (issue 32, D12): one line naming the file being written, no tracebacks from destructors.
/dev/full stands in for the full disk: every write to it fails with ENOSPC."""
from __future__ import annotations

import errno
import gc
import os
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


def _fill(path: str, n: int = 1 << 16) -> None:
    with open("/dev/full", "w") as fh:      # what a full disk does to any write of ``path``'s content
        fh.write("x" * n)


def test_an_atomic_write_on_a_full_disk_names_the_target(tmp_path):
    from core.atomic import atomic_write

    target = tmp_path / "identities.json"
    with pytest.raises(OSError) as exc:
        atomic_write(target, _fill)
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_the_command_line_names_the_file_a_full_disk_stopped(tmp_path, capsys, monkeypatch):
    """'mcmt index add' whose vectors file hits a full disk: one line with the path, exit 1, no traceback."""
    import pipeline.search.index as index_mod
    from pipeline.cli import main
    from test_search import SPEC, make_run_folder

    real = index_mod.write_arrays
    monkeypatch.setattr(index_mod, "write_arrays", lambda path, arrays: real("/dev/full", arrays))
    run = make_run_folder(tmp_path / "run", SPEC)
    assert main(["index", "add", str(run), "--index", str(tmp_path / "db")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("mcmt index: error: no space left on device while writing /dev/full (No space left on device); "
                   "free some space and run the same command again")


def test_a_tracklet_store_on_a_full_disk_dies_quietly(monkeypatch):
    from pipeline.run.tracklet_store import TrackletStore

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    store = TrackletStore("cam", 10.0, box_path="/dev/full")
    store.add_tracks(0, np.array([[0, 0, 10, 20, 1, 0.9, 0, 0]], np.float64))   # buffered, not yet written
    del store
    gc.collect()
    assert unraisable == []

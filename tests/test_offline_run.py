"""The README's main command works without a network: ``mcmt run --videos A B --out DIR`` with the
embedded default detector and the shipped ReID checkpoint, every socket refused."""
from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import REPO


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a name or open a connection fails (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network disabled by the test")

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_main_command_runs_offline_with_the_embedded_detector(tmp_path, no_network, capsys, monkeypatch):
    import torch

    from pipeline.cli import main
    from pipeline.run.detectors.runtime import available_cores
    from reid.encoder import ReIDEncoder

    seen = []                                     # torch threads inside the ReID worker thread
    real_embed = ReIDEncoder.embed

    def embed(self, crops):
        seen.append(torch.get_num_threads())
        return real_embed(self, crops)

    monkeypatch.setattr(ReIDEncoder, "embed", embed)
    before = torch.get_num_threads()
    videos = [str(REPO / "samples" / f"pets_{s}.mp4") for s in ("left", "right")]
    out = tmp_path / "demo"
    assert main(["run", "--videos", *videos, "--out", str(out), "--max-frames", "20", "--no-progress",
                 "--device", "cpu"]) == 0
    assert "mcmt run: 2 cameras, 40 frames" in capsys.readouterr().out
    assert no_network == []                                       # nothing even tried the network
    run = json.loads((out / "run.json").read_text())
    assert run["stats"]["detector"] == "default"
    assert run["stats"]["detected_frames"] == 40
    reid_threads = max(1, available_cores() // 2)            # auto: no more threads than cores in total
    assert run["stats"]["threads"] == {"detector": max(1, available_cores() - reid_threads), "reid": reid_threads}
    assert seen
    assert set(seen) == {reid_threads}
    assert torch.get_num_threads() == before                 # restored after the run
    assert sorted(p.name for p in (out / "mot").iterdir()) == ["pets_left.txt", "pets_right.txt"]
    rows = [ln.split(",") for ln in (out / "mot" / "pets_right.txt").read_text().splitlines()]
    assert rows
    assert all(len(r) == 10 and 1 <= int(float(r[0])) <= 20 for r in rows)  # MOT rows, 20 frames
    idents = json.loads((out / "identities.json").read_text())["identities"]
    assert idents
    assert {c for i in idents for c in i["cameras"]} <= {"pets_left", "pets_right"}


def test_a_released_name_offline_is_a_clear_error(tmp_path, no_network, monkeypatch, capsys):
    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)                                   # no yolo11n.pt lying around
    code = main(["run", "--videos", str(REPO / "samples" / "pets_left.mp4"), "--out", str(tmp_path / "x"),
                 "--detector", "yolo11n.pt", "--max-frames", "2", "--no-progress", "--reid", "none",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert "yolo11n.pt" in err
    assert "--detector default" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("cores, det, reid, expect", [
    (2, 0, 0, (1, 1)), (16, 0, 0, (8, 8)), (1, 0, 0, (1, 1)), (3, 0, 0, (2, 1)),
    (2, 2, 2, (2, 2)), (8, 0, 2, (6, 2)),
])
def test_thread_rules(monkeypatch, cores, det, reid, expect):
    import pipeline.run.detectors.runtime as runtime
    from pipeline.commands.run import detector_threads, reid_threads

    monkeypatch.setattr(runtime, "available_cores", lambda: cores)
    r = reid_threads(reid)
    assert (detector_threads(det, r), r) == expect
    assert detector_threads(0, 0) == cores                    # no ReID on the CPU: all cores detect

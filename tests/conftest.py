"""Shared fixtures: the real data folder ``../shared`` (or $MCMT_SHARED), skipped cleanly when absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never reach the network: keep ultralytics from probing its hub.
os.environ.setdefault("YOLO_OFFLINE", "1")


def shared_root() -> Path:
    return Path(os.environ.get("MCMT_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not (root / "data").is_dir():
        pytest.skip(f"shared data not found at {root} (set MCMT_SHARED)")
    return root


def shared_path(*parts: str) -> Path:
    """Path under the shared folder; skips the calling test when it does not exist."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared file not found: {path}")
    return path


@pytest.fixture(scope="session", autouse=True)
def _limit_threads():
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        pass
    yield

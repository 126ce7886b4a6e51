"""Camera topology: which camera-to-camera transitions are possible and how long they take.

A topology file is optional. Without one, the only hard constraint of the association is
that two tracklets of the same camera that overlap in time are different people. With one,
the association also knows (see ``configs/topology_example.yaml``):

- ``cameras``: every camera name (the video file stem unless named). Required.
- ``time_offsets``: ``{camera: seconds}`` added to that camera's tracklet times before any
  time check (use it, or ``video.offsets`` of the run config, not both).
- ``overlapping_views``: pairs ``[a, b]`` of cameras that see a common area; a person may be
  in both at once. Any other two cameras never see the same person at the same time.
- ``transitions``: the allowed direct moves ``{from, to, min_time, max_time, bidirectional}``
  in seconds from leaving ``from`` to appearing in ``to`` (``max_time`` may be omitted or null:
  no upper bound; ``min_time`` defaults to 0).
- ``unlisted_transitions``: ``forbid`` (default: only the listed moves happen) or ``allow``
  (an unlisted move is allowed with any travel time).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.config import read_yaml
from core.errors import ConfigError

_TOP_KEYS = ("cameras", "time_offsets", "overlapping_views", "transitions", "unlisted_transitions")
_TRANSITION_KEYS = ("from", "to", "min_time", "max_time", "bidirectional")


@dataclass(frozen=True)
class CameraTopology:
    cameras: tuple[str, ...]
    time_offsets: Mapping[str, float]                      # camera -> seconds
    transitions: Mapping[tuple[str, str], tuple[float, float]]  # (from, to) -> (min, max); max may be inf
    overlapping: frozenset[frozenset[str]]                 # unordered pairs of cameras
    allow_unlisted: bool = False

    def offset(self, camera: str) -> float:
        return float(self.time_offsets.get(camera, 0.0))

    def views_overlap(self, a: str, b: str) -> bool:
        return a == b or frozenset((a, b)) in self.overlapping

    def transition(self, a: str, b: str) -> tuple[float, float] | None:
        """(min, max) travel time of the direct move a -> b, or None when it is not allowed."""
        if (a, b) in self.transitions:
            return self.transitions[(a, b)]
        return (0.0, np.inf) if self.allow_unlisted else None

    def index(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Camera index (into ``self.cameras``) of each name; a camera not listed is a ConfigError."""
        pos = {c: i for i, c in enumerate(self.cameras)}
        missing = sorted({n for n in names if n not in pos})
        if missing:
            raise ConfigError(
                f"camera topology does not list camera(s) {', '.join(map(repr, missing))}; "
                f"listed cameras: {', '.join(self.cameras)}. Add them under 'cameras:' in the topology file")
        return np.array([pos[n] for n in names], dtype=np.int64)

    def matrices(self) -> dict[str, np.ndarray]:
        """Per camera pair (C, C): ``overlap`` bool, ``allowed`` bool, ``tmin``/``tmax`` of the
        direct move, and ``reach`` = shortest possible travel time over any path (inf: unreachable)."""
        c = len(self.cameras)
        overlap = np.eye(c, dtype=bool)
        allowed = np.zeros((c, c), dtype=bool)
        tmin = np.zeros((c, c))
        tmax = np.full((c, c), np.inf)
        for i, a in enumerate(self.cameras):
            for j, b in enumerate(self.cameras):
                if i == j:
                    continue
                overlap[i, j] = self.views_overlap(a, b)
                t = self.transition(a, b)
                if t is not None:
                    allowed[i, j] = True
                    tmin[i, j], tmax[i, j] = t
        return {"overlap": overlap, "allowed": allowed, "tmin": tmin, "tmax": tmax,
                "reach": _shortest_times(overlap, allowed, tmin)}


def _shortest_times(overlap: np.ndarray, allowed: np.ndarray, tmin: np.ndarray) -> np.ndarray:
    """Floyd-Warshall over cameras: least total min-travel-time from a to b; (C, C)."""
    d = np.where(allowed, tmin, np.inf)          # (C, C)
    d[overlap] = 0.0                             # same area (and the diagonal): no travel
    for k in range(d.shape[0]):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    return d


def load_topology(path: str | Path) -> CameraTopology:
    """Read and check a topology YAML; errors name the file and the bad key."""
    return topology_from_dict(read_yaml(path), source=str(path))


def topology_from_dict(data: Mapping[str, Any], source: str = "<topology>") -> CameraTopology:
    _check_keys(data, _TOP_KEYS, source, "")
    cams = data.get("cameras")
    if not isinstance(cams, list) or not cams or not all(isinstance(c, (str, int)) for c in cams):
        raise ConfigError(f"{source}: 'cameras' must be a non-empty list of camera names")
    cameras = tuple(str(c) for c in cams)
    if len(set(cameras)) != len(cameras):
        raise ConfigError(f"{source}: 'cameras' lists a camera twice: {list(cameras)}")
    known = set(cameras)

    def cam(value: Any, key: str) -> str:
        if str(value) not in known:
            raise ConfigError(f"{source}: '{key}' names camera {value!r}, which is not in 'cameras' "
                              f"({', '.join(cameras)})")
        return str(value)

    offsets_raw = data.get("time_offsets") or {}
    if not isinstance(offsets_raw, Mapping):
        raise ConfigError(f"{source}: 'time_offsets' must be a mapping camera: seconds")
    offsets = {cam(k, f"time_offsets.{k}"): _number(v, source, f"time_offsets.{k}")
               for k, v in offsets_raw.items()}

    overlapping = set()
    for i, pair in enumerate(data.get("overlapping_views") or []):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(f"{source}: 'overlapping_views[{i}]' must be a pair [camera_a, camera_b]")
        overlapping.add(frozenset((cam(pair[0], f"overlapping_views[{i}]"),
                                   cam(pair[1], f"overlapping_views[{i}]"))))

    transitions: dict[tuple[str, str], tuple[float, float]] = {}
    for i, tr in enumerate(data.get("transitions") or []):
        key = f"transitions[{i}]"
        if not isinstance(tr, Mapping):
            raise ConfigError(f"{source}: '{key}' must be a mapping with keys {', '.join(_TRANSITION_KEYS)}")
        _check_keys(tr, _TRANSITION_KEYS, source, key)
        if "from" not in tr or "to" not in tr:
            raise ConfigError(f"{source}: '{key}' needs both 'from' and 'to'")
        a, b = cam(tr["from"], f"{key}.from"), cam(tr["to"], f"{key}.to")
        if a == b:
            raise ConfigError(f"{source}: '{key}' goes from {a!r} to itself; list only moves between cameras")
        lo = _number(tr.get("min_time", 0.0), source, f"{key}.min_time")
        hi = np.inf if tr.get("max_time") is None else _number(tr["max_time"], source, f"{key}.max_time")
        if lo < 0 or hi < lo:
            raise ConfigError(f"{source}: '{key}' needs 0 <= min_time <= max_time, got {lo} and {hi}")
        bidi = tr.get("bidirectional", False)
        if not isinstance(bidi, bool):
            raise ConfigError(f"{source}: '{key}.bidirectional' must be true or false")
        for pair in ((a, b), (b, a)) if bidi else ((a, b),):
            if pair in transitions:
                raise ConfigError(f"{source}: '{key}' repeats the move {pair[0]} -> {pair[1]}")
            transitions[pair] = (lo, hi)

    unlisted = data.get("unlisted_transitions", "forbid")
    if unlisted not in ("forbid", "allow"):
        raise ConfigError(f"{source}: 'unlisted_transitions' must be 'forbid' or 'allow', got {unlisted!r}")
    return CameraTopology(cameras, offsets, transitions, frozenset(overlapping), unlisted == "allow")


def _check_keys(data: Mapping, valid: tuple[str, ...], source: str, prefix: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: '{prefix or '<top>'}' must be a mapping")
    unknown = sorted(str(k) for k in set(data) - set(valid))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"{source}: unknown key '{where}'; valid keys: {', '.join(valid)}")


def _number(value: Any, source: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{source}: '{key}' must be a number of seconds, got {value!r}")
    return float(value)

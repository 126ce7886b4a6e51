"""MARS loader (video ReID, Zheng et al. 2016): image samples grouped into tracklets.

Layout::

    root/bbox_train/PPPP/PPPPCcTttttFfff.jpg   person PPPP, camera c, tracklet tttt, frame fff
    root/bbox_test/PPPP/...                    test identities (PPPP = 0000 distractor, 00-1 junk)
    root/info/{test_name.txt, tracks_test_info.mat, query_IDX.mat}   optional: official protocol

Every :class:`~reid.data.base.Sample` carries ``tracklet``: a unique integer per
(folder, person, camera, tracklet number). ``train`` is ``bbox_train``. ``query``/``gallery``:

- with ``info/`` (official): query tracklets = rows ``query_IDX`` of ``tracks_test_info`` (start,
  end, pid, camera; 1-based rows of ``test_name.txt``), gallery = all other test tracklets;
- without it: from ``test_folder``: for every person seen by at least two cameras, its first
  tracklet (lowest camera) is a query; all other tracklets are gallery. ``test_folder="auto"``
  (default) is ``bbox_test`` when it exists, else ``bbox_train`` with a warning (the small
  ``mars-mini`` copy has only ``bbox_train``: evaluation then runs on training identities).

``max_per_tracklet`` > 0 keeps that many evenly spaced frames of each tracklet.
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from core.errors import UserError
from reid.data.base import ReIDData, Sample, require_dir, require_images

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^(-?\d+|00-1)C(\d+)T(\d+)F(\d+)")


def parse_name(name: str) -> tuple[int, int, int, int] | None:
    """(pid, camera, tracklet number, frame) from ``PPPPCcTttttFfff.jpg``; None if it does not match."""
    m = NAME_RE.match(name)
    if not m:
        return None
    pid = -1 if "-" in m.group(1) else int(m.group(1))
    return pid, int(m.group(2)), int(m.group(3)), int(m.group(4))


def read_folder(folder: Path, first_tracklet: int = 0) -> list[Sample]:
    """Samples of a ``bbox_*`` folder; tracklet ids numbered from ``first_tracklet`` in sorted order."""
    rows, bad = [], []
    for p in require_images(folder, "mars", recursive=True):
        parsed = parse_name(p.name)
        (bad.append(p.name) if parsed is None else rows.append((parsed, p)))
    if bad:
        raise UserError(f"mars: {len(bad)} file(s) under {folder} are not named PPPPCcTttttFfff.jpg "
                        f"(e.g. {bad[0]!r})")
    keys = sorted({(pid, cam, t) for (pid, cam, t, _), _ in rows})
    tid = {k: first_tracklet + i for i, k in enumerate(keys)}
    rows.sort(key=lambda r: (r[0][0], r[0][1], r[0][2], r[0][3]))
    return [Sample(str(p), pid, cam, None, tid[(pid, cam, t)]) for (pid, cam, t, _), p in rows]


def subsample(samples: list[Sample], max_per_tracklet: int) -> list[Sample]:
    """At most ``max_per_tracklet`` evenly spaced samples per tracklet (0 = keep all)."""
    if max_per_tracklet <= 0:
        return samples
    groups: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.tracklet].append(s)
    out = []
    for t in sorted(groups):
        g = groups[t]
        idx = np.unique(np.linspace(0, len(g) - 1, min(len(g), max_per_tracklet)).round().astype(int))
        out.extend(g[i] for i in idx)
    return out


def default_protocol(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """Query = the first tracklet (lowest camera, then number) of each person (pid > 0) seen by at
    least two cameras; gallery = every other tracklet (so each query has a cross-camera match)."""
    first: dict[int, tuple[int, int]] = {}  # pid -> (camera, tracklet id) of its first tracklet
    cams: dict[int, set[int]] = defaultdict(set)
    for s in samples:
        if s.pid > 0:
            cams[s.pid].add(s.camid)
            first[s.pid] = min(first.get(s.pid, (s.camid, s.tracklet)), (s.camid, s.tracklet))
    queries = {first[p][1] for p, c in cams.items() if len(c) >= 2}
    return [s for s in samples if s.tracklet in queries], [s for s in samples if s.tracklet not in queries]


def official_protocol(root: Path, test_dir: Path, first_tracklet: int) -> tuple[list[Sample], list[Sample]]:
    """Query / gallery from ``info/`` (tracks_test_info.mat, query_IDX.mat, test_name.txt)."""
    import scipy.io

    info = root / "info"
    names = [n.strip() for n in (info / "test_name.txt").read_text().splitlines() if n.strip()]
    tracks = np.asarray(scipy.io.loadmat(str(info / "tracks_test_info.mat"))["track_test_info"], np.int64)
    q_idx = np.ravel(scipy.io.loadmat(str(info / "query_IDX.mat"))["query_IDX"]).astype(np.int64) - 1
    is_query = np.zeros(len(tracks), dtype=bool)
    is_query[q_idx] = True
    query, gallery = [], []
    for t, (start, end, pid, cam) in enumerate(tracks):
        for name in names[start - 1:end]:
            s = Sample(str(test_dir / name[:4] / name), int(pid), int(cam), None, first_tracklet + t)
            (query if is_query[t] else gallery).append(s)
    return query, gallery


def load_mars(root: str | Path, test_folder: str = "auto", max_per_tracklet: int = 0) -> ReIDData:
    """MARS as image samples with tracklet ids (see the module docstring for the protocols)."""
    root = require_dir(Path(root).expanduser(), "data root", "mars")
    if test_folder == "auto":
        test_folder = "bbox_test" if (root / "bbox_test").is_dir() else "bbox_train"
    train_dir, test_dir = root / "bbox_train", root / test_folder
    if not train_dir.is_dir() and not test_dir.is_dir():
        raise UserError(f"mars: {root} has neither bbox_train/ nor {test_folder}/ "
                        "(expected bbox_*/PPPP/PPPPCcTttttFfff.jpg)")
    train = read_folder(train_dir) if train_dir.is_dir() else []
    first = (max(s.tracklet for s in train) + 1) if train else 0
    info = root / "info"
    official = all((info / f).is_file() for f in ("test_name.txt", "tracks_test_info.mat", "query_IDX.mat"))
    if official and test_folder == "bbox_test" and test_dir.is_dir():
        query, gallery = official_protocol(root, test_dir, first)
        protocol = "official"
    elif test_dir.is_dir():
        query, gallery = default_protocol(read_folder(test_dir, first))
        protocol = f"first tracklet of each multi-camera person in {test_folder}"
        if test_dir == train_dir:
            log.warning("mars: query/gallery come from the training folder (test_folder=%r)", test_folder)
    else:
        raise UserError(f"mars: test folder {test_dir} not found (test_folder={test_folder!r}; "
                        "use 'bbox_test', 'bbox_train' or 'auto')")
    train, query, gallery = (subsample(x, int(max_per_tracklet)) for x in (train, query, gallery))
    return ReIDData("mars", train, query, gallery, None, str(root),
                    {"protocol": protocol, "num_tracklets": len({s.tracklet for s in query + gallery})})

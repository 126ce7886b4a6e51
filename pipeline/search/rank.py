"""Rank the identities of galleries by appearance, attributes or both, under camera and time filters.

Scores (higher is better):

- appearance: cosine similarity between the query embedding and the identity's best-matching
  tracklet, in [-1, 1], over ALL its tracklets: an identity is one person as associated across
  cameras, so a photo that matches the person well in one camera finds them in another where
  they look different (PETS two-camera sample, ``bench/search.py``: other-camera top-1 47.9 -> 52.1
  with the default model, 52.1 -> 63.5 with Intel 0286); ``Result.best_match`` names that tracklet;
- attributes: probability that all query attributes hold (:mod:`.attributes`), computed on the
  identity's box-weighted mean attribute probabilities over the tracklets that pass the filters;
- both: ``(1 + cosine) / 2 * probability``.

Filters keep tracklets seen by one of ``cameras`` that overlap ``[t_from, t_to]`` (seconds); an
identity is a result only through such tracklets, and its cameras, first/last seen and listed
tracklets are theirs. Rows of the example (``exclude``) count for nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from core.errors import UserError
from pipeline.search.attributes import Term, joint_probability, term_columns
from pipeline.search.gallery import Gallery

SPARSE = 0.25        # below this fraction of rows kept by the filters, only those rows are scored


@dataclass(frozen=True)
class Query:
    embedding: Optional[np.ndarray] = None      # (D,) L2-normalised, None: no appearance part
    terms: tuple[Term, ...] = ()                # attribute terms, empty: no attribute part
    cameras: tuple[str, ...] = ()               # empty: every camera
    t_from: Optional[float] = None
    t_to: Optional[float] = None
    exclude: Mapping = field(default_factory=dict)   # gallery key -> row indices left out (the example)
    top: int = 10

    def __post_init__(self):
        if self.embedding is None and not self.terms:
            raise UserError("nothing to search for: give --image, --example and/or --attributes")
        if self.top < 1:
            raise UserError(f"--top must be >= 1, got {self.top}")
        if self.t_from is not None and self.t_to is not None and self.t_to < self.t_from:
            raise UserError(f"--to {self.t_to} is before --from {self.t_from}")


@dataclass
class Result:
    run: str
    identity: int                     # global id, as in mot/<camera>.txt
    score: float
    appearance: Optional[float]       # cosine similarity of the best tracklet (any camera, any time)
    attributes: Optional[float]       # P(all attributes hold)
    cameras: list[str]
    first_seen: float
    last_seen: float
    tracklets: list[dict]
    thumbnails: dict                  # camera -> [paths relative to run_dir]
    run_dir: Optional[str] = None
    best_match: Optional[dict] = None  # {"camera", "track_id"} of the tracklet giving ``appearance``
    where: Optional[list] = None      # [[t, X, Y], ...] on the ground within first/last seen (calibrated runs)

    def to_dict(self) -> dict:
        d = {"identity": self.identity, "score": round(self.score, 5), "cameras": self.cameras,
             "first_seen": round(self.first_seen, 3), "last_seen": round(self.last_seen, 3),
             "appearance": None if self.appearance is None else round(self.appearance, 5),
             "attributes": None if self.attributes is None else round(self.attributes, 5),
             "best_match": self.best_match, "run": self.run, "tracklets": self.tracklets}
        if self.where is not None:
            d["where"] = self.where
        return d


def gallery_key(g: Gallery):
    return g.run_id if g.run_id is not None else g.run


def usable_rows(g: Gallery, q: Query) -> np.ndarray:
    """(T,) rows that are not the example's (``q.exclude``)."""
    m = np.ones(len(g), bool)
    ex = q.exclude.get(gallery_key(g))
    if ex is not None and len(ex):
        m[np.asarray(ex, np.int64)] = False
    return m


def row_mask(g: Gallery, q: Query) -> np.ndarray:
    """(T,) rows that pass the camera/time filters, minus the excluded ones."""
    m = usable_rows(g, q)
    if q.cameras:
        m &= np.isin(g.camera, g.camera_codes(q.cameras))
    if q.t_from is not None:
        m &= np.asarray(g.end) >= q.t_from
    if q.t_to is not None:
        m &= np.asarray(g.start) <= q.t_to
    return m


def _identity_attributes(g: Gallery, rows: np.ndarray, terms: Sequence[Term]) -> tuple[np.ndarray, np.ndarray]:
    """(I,) joint probability of the box-weighted mean attributes over ``rows``, (I,) has-attributes."""
    cols = term_columns(terms)
    n_ids = len(g.gids)
    idx = g.ident[rows]
    w = np.asarray(g.n_boxes[rows], np.float64)
    wsum = np.bincount(idx, weights=w, minlength=n_ids)
    a = g.attribute_columns(cols, rows)                                   # (R, c)
    means = np.stack([np.bincount(idx, weights=w * a[:, j], minlength=n_ids) for j in range(len(cols))], axis=1)
    means /= np.maximum(wsum, 1e-12)[:, None]
    return joint_probability(means, _local_terms(terms, cols)), wsum > 0


def _local_terms(terms: Sequence[Term], cols: list[int]) -> list[Term]:
    """The terms with their columns renumbered into ``cols`` (the only columns read)."""
    return [Term(t.group, tuple(cols.index(c) for c in t.columns), t.labels, t.negate) for t in terms]


def score_identities(g: Gallery, q: Query, mask: np.ndarray):
    """(I,) score, appearance, attribute probability and presence of every identity; (T,) tracklet
    similarities (or None), and the rows shown (``mask``, with features when appearance counts).
    Every tracklet of an identity shown may give it its appearance score, except the example's."""
    n_ids = len(g.gids)
    present = np.zeros(n_ids, bool)
    app = attr = sim = None
    if q.embedding is not None:
        if g.vectors is None:
            raise UserError(f"run {g.run!r} has no appearance features (made with --reid none): search it by "
                            "--attributes only")
        mask = mask & g.has_feature
        shown = np.zeros(n_ids, bool)
        shown[g.ident[mask]] = True
        evidence = g.has_feature & shown[g.ident] & usable_rows(g, q)   # every tracklet of the identities shown
        keep = np.flatnonzero(evidence)
        if len(keep) < SPARSE * len(g):          # a selective filter: score only the rows it needs
            sim = np.full(len(g), -np.inf, np.float32)
            sim[keep] = g.vectors.dot(q.embedding, keep)
        else:
            sim = g.vectors.dot(q.embedding)
            sim[~evidence] = -np.inf
        app = np.full(n_ids, -np.inf, np.float32)
        np.maximum.at(app, g.ident[evidence], sim[evidence])
        present |= np.isfinite(app)
    if q.terms:
        if g.attributes is None:
            raise UserError(f"run {g.run!r}: its ReID model ({g.model.get('name')}) predicts no attributes; "
                            "attribute search needs a model with attributes (e.g. --reid default)")
        rows = np.flatnonzero(mask & g.has_attributes)
        attr, has = _identity_attributes(g, rows, q.terms)
        present = has if q.embedding is None else present & has
    if app is not None and attr is not None:
        score = (1.0 + app) / 2.0 * attr
    else:
        score = app if app is not None else attr
    return np.where(present, score, -np.inf), app, attr, present, sim, mask


def _tracklets(g: Gallery, rows: np.ndarray, q: Query, sim: Optional[np.ndarray]) -> list[dict]:
    out = []
    probs = None
    if q.terms:
        cols = term_columns(q.terms)
        probs = joint_probability(g.attribute_columns(cols, rows), _local_terms(q.terms, cols))
    for k, r in enumerate(rows):
        s_app = float(sim[r]) if sim is not None else None
        s_att = float(probs[k]) if probs is not None and g.has_attributes[r] else None
        score = (s_app if s_att is None else s_att if s_app is None else (1 + s_app) / 2 * s_att)
        out.append({"camera": g.cameras[int(g.camera[r])], "track_id": int(g.track_id[r]),
                    "start_time": round(float(g.start[r]), 3), "end_time": round(float(g.end[r]), 3),
                    "n_boxes": int(g.n_boxes[r]), "score": None if score is None else round(score, 5)})
    return sorted(out, key=lambda t: (t["start_time"], t["camera"]))


@dataclass
class _Scored:
    """One gallery's identity scores for a query, kept until the best over all galleries are known."""

    g: Gallery
    score: np.ndarray
    app: Optional[np.ndarray]
    attr: Optional[np.ndarray]
    sim: Optional[np.ndarray]
    mask: np.ndarray
    best: np.ndarray                  # identity indices, best first (at most q.top)


def _score_gallery(g: Gallery, q: Query) -> _Scored:
    score, app, attr, present, sim, mask = score_identities(g, q, row_mask(g, q))
    cand = np.flatnonzero(present)
    if len(cand) > q.top:                   # keep all that tie with the top-th score, then sort
        kth = np.partition(score[cand], len(cand) - q.top)[len(cand) - q.top]
        cand = cand[score[cand] >= kth]
    best = cand[np.lexsort((g.gids[cand], -score[cand]))][:q.top]
    return _Scored(g, score, app, attr, sim, mask, best)


def _result(s: _Scored, i: int, q: Query) -> Result:
    g = s.g
    rows = np.flatnonzero((g.ident == i) & s.mask)
    trs = _tracklets(g, rows, q, s.sim)
    cams = list(dict.fromkeys(t["camera"] for t in trs))
    gid = int(g.gids[i])
    best = None
    if s.sim is not None:
        own = np.flatnonzero(g.ident == i)
        r = int(own[np.argmax(s.sim[own])])
        best = {"camera": g.cameras[int(g.camera[r])], "track_id": int(g.track_id[r])}
    return Result(
        run=g.run, identity=gid, score=float(s.score[i]),
        appearance=None if s.app is None else float(s.app[i]), attributes=None if s.attr is None else float(s.attr[i]),
        cameras=cams, first_seen=(first := min(t["start_time"] for t in trs)),
        last_seen=(last := max(t["end_time"] for t in trs)),
        where=_where(g.trajectories.get(gid), first, last),
        tracklets=trs, thumbnails={c: v for c, v in (g.thumbnails.get(gid) or {}).items() if c in cams},
        run_dir=str(g.run_dir) if g.run_dir else None, best_match=best)


def _where(trajectory: Optional[list], first: float, last: float, slack: float = 0.5) -> Optional[list]:
    """The identity's ground trajectory samples between ``first`` and ``last`` seen (None without one)."""
    if not trajectory:
        return None
    return [p for p in trajectory if first - slack <= p[0] <= last + slack]


def rank(galleries: Iterable[Gallery], q: Query) -> list[Result]:
    """The ``q.top`` best identities over one or several galleries (runs), best first; ties: earlier
    gallery, then lower global id first. Details (tracklets, thumbnails) only for those."""
    scored = [_score_gallery(g, q) for g in galleries if len(g)]
    cands = [(-float(s.score[i]), k, int(s.g.gids[i]), int(i)) for k, s in enumerate(scored) for i in s.best]
    return [_result(scored[k], i, q) for _, k, _, i in sorted(cands)[:q.top]]


def example_rows(g: Gallery, spec: str) -> np.ndarray:
    """Rows of ``CAMERA:ID`` (global id seen by that camera), ``ID`` (every tracklet of a global id) or
    ``CAMERA:tN`` (local track N of that camera); UserError names what exists."""
    cam, sep, ref = str(spec).rpartition(":")
    ref = ref.strip()
    local = ref.startswith("t")
    try:
        num = int(ref[1:] if local else ref)
    except ValueError:
        raise UserError(f"--example {spec!r}: expected CAMERA:ID, ID or CAMERA:tTRACK "
                        f"(e.g. {g.cameras[0]}:3)") from None
    m = np.ones(len(g), bool)
    if sep:
        if cam not in g.cameras:
            raise UserError(f"--example {spec!r}: no camera {cam!r} in run {g.run!r}; cameras: {', '.join(g.cameras)}")
        m &= g.camera == g.cameras.index(cam)
    elif local:
        raise UserError(f"--example {spec!r}: a local track id needs its camera, e.g. {g.cameras[0]}:{ref}")
    m &= (g.track_id == num) if local else (g.gids[g.ident] == num)
    rows = np.flatnonzero(m)
    if not len(rows):
        what = f"track {num}" if local else f"identity {num}"
        raise UserError(f"--example {spec!r}: {what} is not in run {g.run!r}{' camera ' + cam if sep else ''}")
    return rows


def example_embedding(g: Gallery, rows: np.ndarray) -> np.ndarray:
    """Box-weighted mean embedding of some rows, L2-normalised (D,)."""
    if g.vectors is None or not g.has_feature[rows].any():
        raise UserError(f"the example has no appearance features in run {g.run!r}; use --attributes")
    rows = rows[g.has_feature[rows]]
    f = (g.vectors.rows(rows) * g.n_boxes[rows, None].astype(np.float32)).sum(0)
    return (f / max(float(np.linalg.norm(f)), 1e-12)).astype(np.float32)

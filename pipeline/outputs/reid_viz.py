"""Pictures of a ReID model's work: ranked lists (paper Fig. 3) and attribute panels (Fig. 4).

``write_reid_visualizations(out_dir, distmat, query, gallery, ...)`` writes

- ``ranked/q<index>.png``: one per shown query: the query (blue border) then its top-k gallery
  images, green border = same identity, red = different, rank and distance under each. The
  queries are ``num_queries`` chosen with a fixed seed plus the worst-ranked ones (first true
  match furthest down the list).
- ``attributes/g<index>.png``: for ``num_queries`` gallery images (same seed), the crop beside
  its predicted attributes with probabilities, wrong ones in red when ground truth exists.
  Skipped with a note when the model predicts no attributes (external ONNX/OpenVINO models).
- ``index.html``: all pictures, with each query's rank of its first true match.

The gallery filtering follows the Market-1501 protocol used by ``reid.metrics.evaluate_rank``:
images of the query's identity from the query's camera and junk images (pid -1) are not shown.
"""
from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from core.atomic import atomic_write_bytes
from pipeline.outputs import draw
from reid.metrics import first_match_ranks, kept_gallery

log = logging.getLogger(__name__)

def select_queries(ranks: np.ndarray, num_queries: int, num_worst: int, seed: int) -> list[tuple[int, str]]:
    """[(query index, "random" | "worst")]: seeded random queries, then the worst-ranked others.

    Only queries with a valid match are chosen (all queries when none has one).
    """
    ranks = np.asarray(ranks)
    pool = np.flatnonzero(ranks > 0)
    if len(pool) == 0:
        pool = np.arange(len(ranks))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(pool, size=min(num_queries, len(pool)), replace=False))
    rest = np.setdiff1d(pool, chosen)
    worst = rest[np.argsort(-ranks[rest], kind="stable")][:max(num_worst, 0)]
    return [(int(i), "random") for i in chosen] + [(int(i), "worst") for i in worst]


def attribute_items(probs: np.ndarray, targets: np.ndarray | None = None, schema=None,
                    names: Sequence[str] = ()) -> list[draw.AttrItem]:
    """Readable predicted attributes of one image, with wrong ones marked.

    With a schema: binary groups read "female 0.93" or "no hat 0.82" (probability of the
    predicted value), multi-class groups "upper_color: white 0.88"; ``targets`` is (num_groups,)
    with -1 = unknown. Without a schema every column of ``probs`` is a binary attribute named by
    ``names`` and ``targets`` is (A,).
    """
    p = np.asarray(probs, np.float64).ravel()
    if schema is None:
        names = list(names) or [f"attr{i}" for i in range(len(p))]
        groups = [(n, (), slice(i, i + 1)) for i, n in enumerate(names)]
    else:
        groups = [(g.name, g.classes, s) for g, s in zip(schema.groups, schema.group_slices())]
    t = None if targets is None else np.asarray(targets).ravel()
    if t is not None and len(t) != len(groups):
        log.warning("attribute targets have %d entries, expected %d: not marking wrong ones", len(t), len(groups))
        t = None
    items = []
    for gi, (name, classes, s) in enumerate(groups):
        truth = None if t is None or t[gi] < 0 else int(t[gi])
        if not classes:
            pred = int(p[s.start] >= 0.5)
            text, prob = (name, p[s.start]) if pred else (f"no {name}", 1.0 - p[s.start])
        else:
            pred = int(np.argmax(p[s]))
            text, prob = f"{name}: {classes[pred]}", p[s.start + pred]
        items.append(draw.AttrItem(text, float(prob), None if truth is None else pred != truth))
    return items


def _load(sample, size=draw.TILE_SIZE) -> np.ndarray:
    return draw.read_image(sample.path, size)


def _ranked_picture(qi: int, distmat: np.ndarray, query, gallery, g_pids, g_camids, topk: int,
                    rank: int, reason: str) -> np.ndarray:
    q = query[qi]
    keep = kept_gallery(q.pid, q.camid, g_pids, g_camids)                     # (G,)
    order = np.argsort(distmat[qi], kind="stable")                            # (G,)
    kept = order[keep[order]]                                                  # (K,) ranked
    top, shown_ranks = kept[:topk], list(range(1, min(topk, len(kept)) + 1))
    if rank > topk:                                   # also show the first true match, far down
        top, shown_ranks = np.append(top, kept[rank - 1]), shown_ranks + [rank]
    rank_txt = f"first true match at rank {rank}" if rank > 0 else "no true match in gallery"
    title = f"query {qi} (id {q.pid}, cam {q.camid}, {reason}): {rank_txt}"
    return draw.ranked_row(
        _load(q), [_load(gallery[j]) for j in top], [g_pids[j] == q.pid for j in top],
        [distmat[qi, j] for j in top], query_lines=["query", f"id {q.pid} c{q.camid}"],
        gallery_lines=[[f"id {g_pids[j]} c{g_camids[j]}"] for j in top], title=title, ranks=shown_ranks)


def write_reid_visualizations(out_dir, distmat: np.ndarray, query: Sequence, gallery: Sequence, *,
                              num_queries: int = 8, topk: int = 10, seed: int = 0,
                              attr_probs: np.ndarray | None = None, attr_names: Sequence[str] = (),
                              attr_targets: np.ndarray | None = None, schema=None,
                              num_worst: int | None = None) -> Path:
    """Write ranked-list and attribute PNGs plus ``index.html`` under ``out_dir``; returns the index path.

    ``distmat`` (Q, G) distances between ``query`` and ``gallery`` Samples (``path``, ``pid``,
    ``camid``). ``attr_probs`` (G, A) gallery attribute probabilities or None / (G, 0) when the
    model has none; ``attr_targets`` (G, num_groups) int, -1 unknown (default: ``Sample.attrs``);
    ``schema`` an AttributeSchema (or its dict). ``num_worst`` defaults to ``num_queries // 2``.
    """
    distmat = np.asarray(distmat, np.float64)
    if distmat.shape != (len(query), len(gallery)):
        raise ValueError(f"distmat shape {distmat.shape} does not match {len(query)} queries x "
                         f"{len(gallery)} gallery images")
    out = Path(out_dir)
    q_pids = np.array([s.pid for s in query]); q_cams = np.array([s.camid for s in query])
    g_pids = np.array([s.pid for s in gallery]); g_cams = np.array([s.camid for s in gallery])
    ranks = first_match_ranks(distmat, q_pids, g_pids, q_cams, g_cams)        # (Q,)
    num_worst = max(1, num_queries // 2) if num_worst is None else num_worst
    shown = []
    for qi, reason in select_queries(ranks, num_queries, num_worst, seed):
        rel = f"ranked/q{qi:05d}.png"
        img = _ranked_picture(qi, distmat, query, gallery, g_pids, g_cams, topk, int(ranks[qi]), reason)
        draw.write_image(out / rel, img)
        shown.append((qi, reason, int(ranks[qi]), rel))
    attrs, note = _write_attribute_pictures(out, gallery, num_queries, seed, attr_probs, attr_names,
                                            attr_targets, schema)
    index = out / "index.html"
    atomic_write_bytes(index, _index_html(query, ranks, shown, attrs, note).encode("utf-8"))
    log.info("ReID visualisations: %d ranked lists, %d attribute pictures -> %s", len(shown), len(attrs), index)
    return index


def _write_attribute_pictures(out: Path, gallery, num: int, seed: int, attr_probs, attr_names,
                              attr_targets, schema) -> tuple[list[tuple[int, str, str]], str]:
    """Attribute PNGs for ``num`` seeded gallery images; returns ([(index, rel path, "k/n wrong")], note)."""
    if attr_probs is None or np.asarray(attr_probs).size == 0:
        return [], "This model predicts no attributes (e.g. an external ONNX/OpenVINO embedding): " \
                   "attribute pictures skipped."
    probs = np.asarray(attr_probs, np.float64).reshape(len(gallery), -1)       # (G, A)
    if isinstance(schema, dict):
        from reid.schema import AttributeSchema
        schema = AttributeSchema.from_dict(schema)
    if schema is not None and schema.num_outputs != probs.shape[1]:
        log.warning("attribute probabilities have %d columns but schema %r has %d outputs (pass the "
                    "model's schema, e.g. encoder.schema): drawing columns as binary, nothing marked wrong",
                    probs.shape[1], schema.name, schema.num_outputs)
        schema, attr_targets = None, np.full((len(gallery), probs.shape[1]), -1)
    if len(attr_names) != probs.shape[1]:
        attr_names = ()
    rng = np.random.default_rng(seed + 1)
    picks = np.sort(rng.choice(len(gallery), size=min(num, len(gallery)), replace=False))
    done = []
    for gi in picks:
        s = gallery[gi]
        tgt = attr_targets[gi] if attr_targets is not None else getattr(s, "attrs", None)
        items = attribute_items(probs[gi], tgt, schema, attr_names)
        n_wrong = sum(1 for it in items if it.wrong)
        known = sum(1 for it in items if it.wrong is not None)
        title = f"gallery {gi} (id {s.pid}, cam {s.camid})" + (f": {n_wrong}/{known} wrong" if known else "")
        rel = f"attributes/g{int(gi):05d}.png"
        draw.write_image(out / rel, draw.attribute_panel(_load(s, (256, 128)), items, title=title))
        done.append((int(gi), rel, f"{n_wrong}/{known} wrong" if known else "no ground truth"))
    return done, "" if schema is not None or attr_names else "Attribute names unknown: columns numbered."


def _index_html(query, ranks: np.ndarray, shown, attrs, note: str) -> str:
    valid = ranks > 0
    r1 = float((ranks[valid] == 1).mean()) * 100 if valid.any() else float("nan")
    rows = "\n".join(
        f"<tr><td>{qi}</td><td>{html.escape(str(query[qi].pid))}</td><td>{html.escape(reason)}</td>"
        f"<td class=\"rank\">{rank if rank > 0 else 'none'}</td><td><img src=\"{rel}\" alt=\"query {qi}\"></td></tr>"
        for qi, reason, rank, rel in shown)
    att = "\n".join(f"<div class=\"att\"><img src=\"{rel}\" alt=\"gallery {gi}\"><br>gallery {gi}: "
                    f"{html.escape(wrong)}</div>" for gi, rel, wrong in attrs)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ReID visualisation</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{padding:4px;vertical-align:middle}}
table{{border-collapse:collapse}} tr{{border-bottom:1px solid #ddd}} .att{{display:inline-block;margin:6px}}
.note{{color:#955}}</style></head><body>
<h1>ReID ranked lists</h1>
<p>{int(valid.sum())} of {len(ranks)} queries have a true match in the gallery; rank-1 over them:
{r1:.1f}%. Green border: same identity as the query; red: a different one.</p>
<table><tr><th>query</th><th>id</th><th>chosen</th><th>first true match</th><th>query and top-k</th></tr>
{rows}
</table>
<h1>Attribute predictions</h1>
{f'<p class="note">{html.escape(note)}</p>' if note else ''}
{att}
</body></html>
"""

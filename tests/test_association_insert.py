"""Tracklets that a link skips go back in between (association.insert_links, linking step 5): the unit
rule, and the real handoffs of the two-camera sample's ground truth (samples/gt) with the first second
of each entry into the right camera cut off as its own piece, degraded as at a blurred view's border."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.association.associate import associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.association.linking import insert_links
from pipeline.tracklet import Tracklet

CFG = AssociationConfig(link_threshold=0.3, threshold=0.2, same_camera_threshold=None, insert_links=True)
SAMPLE_GT = Path(__file__).resolve().parents[1] / "samples" / "gt" / "mtmc.txt"
FPS = 7.0          # samples/gt frame numbers: the sample clips' frames


def test_the_skipped_piece_goes_back_in_between():
    # candidates 0 -> 1, 0 -> 2, 1 -> 2; the matching linked 0 -> 2 and left 1 free
    i, j = np.array([0, 0, 1]), np.array([1, 2, 2])
    dist, thr = np.array([0.25, 0.1, 0.4]), np.full(3, 0.3)
    nxt = np.array([2, -1, -1])
    out, added = insert_links(i, j, dist, thr, nxt, cap=0.5)
    assert added == 1 and out.tolist() == [1, 2, -1]
    assert insert_links(i, j, dist, thr, nxt, cap=0.35)[1] == 0                 # 1 -> 2 past the cap
    assert insert_links(i, j, np.array([0.31, 0.1, 0.4]), thr, nxt, cap=0.5)[1] == 0   # 0 -> 1 past the threshold
    assert insert_links(i, j, dist, thr, nxt, cap=0.5, ok=np.array([True, True, False]))[1] == 0   # zones
    assert insert_links(i, j, dist, thr, np.array([2, 3, -1, -1]), cap=0.5)[1] == 0   # 1 is linked on: not free


def test_one_piece_per_link_and_one_link_per_piece_closest_first():
    # links 0 -> 3 and 4 -> 5; pieces 1 and 2 both fit between 0 and 3, piece 2 better; piece 1 also fits 4 -> 5
    i = np.array([0, 0, 0, 1, 2, 4, 4, 1])
    j = np.array([3, 1, 2, 3, 3, 5, 1, 5])
    dist = np.array([0.1, 0.2, 0.1, 0.4, 0.35, 0.1, 0.28, 0.45])
    nxt = np.array([3, -1, -1, -1, 5, -1])
    out, added = insert_links(i, j, dist, np.full(len(i), 0.3), nxt, cap=0.5)
    assert added == 2
    assert out[0] == 2 and out[2] == 3            # 0 -> 2 -> 3 (summed 0.45 against 0.6 through 1)
    assert out[4] == 1 and out[1] == 5            # 1 goes to the other link


def test_a_chain_left_apart_goes_back_in_between():
    """0 -> 3 skips the chain 1 -> 2 (a visit the tracker broke in two): 0 -> 1 -> 2 -> 3 when 0 -> 1 is
    within the threshold and 2 -> 3 within the cap."""
    i, j = np.array([0, 0, 1, 2]), np.array([3, 1, 2, 3])
    dist, thr = np.array([0.1, 0.25, 0.05, 0.4]), np.full(4, 0.3)
    out, added = insert_links(i, j, dist, thr, np.array([3, 2, -1, -1]), cap=0.5)
    assert added == 1 and out.tolist() == [1, 2, 3, -1]
    assert insert_links(i, j, dist, thr, np.array([3, 2, -1, -1]), cap=0.35)[1] == 0     # 2 -> 3 past the cap


def unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def trk(cam, tid, rows, feat):
    """A tracklet of ground-truth rows (camera, person, frame, x, y, w, h) with one feature."""
    boxes = np.column_stack([rows[:, 3], rows[:, 4], rows[:, 3] + rows[:, 5], rows[:, 4] + rows[:, 6]]).astype(np.float32)
    f0, f1 = int(rows[0, 2]), int(rows[-1, 2])
    return Tracklet(cam, tid, f0, f1, f0 / FPS, f1 / FPS, n_boxes=len(rows), features=feat[None],
                    weights=np.ones(1, np.float32), first_box=boxes[0], last_box=boxes[-1])


def sample_pieces(seed=0, halves=False):
    """One tracklet per visit of a person to a camera of the sample's ground truth (a gap of 1 s or more
    starts a new visit), but a visit to the right camera within 10 s of the person's left-camera visit
    loses its first second to a piece of its own. Features: the left visits show the person's look a,
    the right visits c (distance 0.1 from a), the pieces b on the other side of a (distance 0.25 from a,
    0.61 from c: past the link threshold 0.3, as a blurred view's border gives); with ``halves`` a piece of
    4 rows or more is two tracklets (the tracker broke it too). Returns (tracklets, truth, piece mask)."""
    rows = np.loadtxt(SAMPLE_GT)
    rng = np.random.default_rng(seed)
    looks = {}
    for p in np.unique(rows[:, 1]).astype(int):
        e1, e2 = np.linalg.qr(rng.normal(size=(16, 2)))[0].T
        looks[p] = {"a": unit(e1), "c": unit(0.9 * e1 + np.sqrt(1 - 0.81) * e2),
                    "b": unit(0.75 * e1 - np.sqrt(1 - 0.5625) * e2)}
    out, truth, piece, left_end = [], [], [], {}
    for (c, p) in sorted({(int(r[0]), int(r[1])) for r in rows}):
        r = rows[(rows[:, 0] == c) & (rows[:, 1] == p)]
        r = r[np.argsort(r[:, 2])]
        look = looks[p]
        for v in np.split(r, np.flatnonzero(np.diff(r[:, 2]) >= FPS) + 1):
            if c == 1:
                out.append(trk("pets_left", len(out), v, look["a"]))
                truth.append(p), piece.append(False)
                left_end.setdefault(p, []).append(v[-1, 2] / FPS)
                continue
            t0 = v[0, 2] / FPS
            entered = any(0 < t0 - t <= 10 for t in left_end.get(p, []))
            head = v[v[:, 2] < v[0, 2] + FPS] if entered else v[:0]
            if entered and 2 <= len(head) < len(v) - 2:
                cut = len(head) // 2 if halves and len(head) >= 4 else len(head)
                for part in (head[:cut], head[cut:]):
                    if len(part):
                        out.append(trk("pets_right", len(out), part, look["b"]))
                        truth.append(p), piece.append(True)
                v = v[len(head):]
            out.append(trk("pets_right", len(out), v, look["c"]))
            truth.append(p), piece.append(False)
    return out, np.array(truth), np.array(piece)


@pytest.mark.parametrize("halves", [False, True])
def test_pieces_of_the_samples_real_handoffs_go_back_to_their_person(halves):
    """A piece (or, ``halves``, a piece broken in two and linked as a chain) between a person's visits to the
    two cameras goes back in between."""
    if not SAMPLE_GT.is_file():
        pytest.skip("samples/gt/mtmc.txt is missing")
    ts, truth, piece = sample_pieces(halves=halves)
    assert piece.sum() >= 6
    on = associate_detailed(ts, CFG)
    off = associate_detailed(ts, replace(CFG, insert_links=False))

    def with_person(ids):       # pieces sharing an identity with the rest of their person
        return sum(int(((ids == ids[k]) & (truth == truth[k]) & ~piece).any()) for k in np.flatnonzero(piece))

    assert with_person(off.global_ids) == 0                        # the matching skips every piece
    first = piece & ~np.r_[False, piece[:-1] & (truth[:-1] == truth[1:])]     # one per visit's piece(s)
    assert on.stats["links_inserted"] >= first.sum() - 1
    assert with_person(on.global_ids) >= piece.sum() - 2
    for ids in (on.global_ids, off.global_ids):                    # no identity holds two people
        assert all(len(set(truth[ids == g].tolist())) == 1 for g in np.unique(ids))

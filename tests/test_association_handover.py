"""Handovers inside one camera (pipeline/association/constraints.py ``handover_starts``): a track that starts
on part of a person in the frame where that person's own track ends is the same person, not someone seen at
the same time."""
from __future__ import annotations

import numpy as np

from pipeline.association.associate import associate_detailed
from pipeline.association.config import AssociationConfig
from pipeline.association.constraints import HANDOVER_GAP, handover_starts, overlapping_pairs, tracklet_times
from pipeline.tracklet import Tracklet

FPS = 7.0
FULL = [148.8, 105.4, 186.7, 223.8]        # the blurred PETS09 camera's case (bench sample~blur-strong):
LEGS = [156.0, 150.7, 181.3, 225.3]        # the person's weak full box and the lower-body box a new track took


def trk(cam, tid, f0, f1, feat, first, last):
    f = np.atleast_2d(np.asarray(feat, np.float32))
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    return Tracklet(cam, tid, f0, f1, f0 / FPS, f1 / FPS, n_boxes=f1 - f0 + 1, features=f,
                    weights=np.ones(len(f), np.float32), first_box=np.asarray(first, np.float32),
                    last_box=np.asarray(last, np.float32))


def box_at(x):
    return [x, 100.0, x + 40.0, 220.0]


def test_a_track_taken_over_in_its_last_frame_starts_just_after_it():
    feat = np.ones(8)
    a = trk("c", 1, 10, 50, feat, box_at(20), FULL)
    b = trk("c", 2, 50, 90, feat, LEGS, box_at(300))
    start = handover_starts([a, b])
    assert start[0] == a.start_time and start[1] == a.end_time + HANDOVER_GAP
    cam, s, e = tracklet_times([a, b])
    assert len(overlapping_pairs(cam, s, e)[0]) == 0            # no longer "two people at once"
    # not a handover: boxes side by side, two frames shared, another camera, b over before a
    for other in (trk("c", 2, 50, 90, feat, box_at(400), box_at(300)),
                  trk("c", 2, 49, 90, feat, LEGS, box_at(300)),
                  trk("d", 2, 50, 90, feat, LEGS, box_at(300)),
                  trk("c", 2, 50, 50, feat, LEGS, LEGS)):
        assert handover_starts([a, other])[1] == other.start_time
    a_late = trk("c", 1, 50, 50, feat, FULL, FULL)                # a starts there too: no earlier track
    assert handover_starts([a_late, b])[1] == b.start_time


def _scene(legs_box):
    """Camera c: five people walking at once (free negatives for the calibration) for 40 s; person 0's track
    ends at frame 200 and a new track goes on from that frame with ``legs_box``, person 0's look. Returns
    (tracklets, truth)."""
    rng = np.random.default_rng(3)
    looks = rng.normal(size=(5, 32)) + 1.5
    out, truth = [], []
    for p in range(5):
        f = looks[p] + 0.15 * rng.normal(size=(4, 32))
        if p == 0:
            out.append(trk("c", 1, 0, 200, f, box_at(20), FULL))
            g = looks[0] + 0.15 * rng.normal(size=(4, 32))
            out.append(trk("c", 2, 200, 280, g, legs_box, box_at(500)))
            truth += [0, 0]
        else:
            out.append(trk("c", 10 + p, 0, 280, f, box_at(100 * p), box_at(100 * p + 50)))
            truth.append(p)
    return out, np.array(truth)


def test_the_two_pieces_of_a_handover_are_one_identity():
    """With the later piece's first box inside the earlier one's last box the pieces are linked; with the same
    looks and times but a box elsewhere in the view they stay two people (seen at once in one camera)."""
    cfg = AssociationConfig()
    ts, truth = _scene(LEGS)
    res = associate_detailed(ts, cfg)
    ids = res.global_ids
    assert ids[0] == ids[1] and len(set(ids.tolist())) == 5 and res.stats["handovers"] == 1
    ts, truth = _scene(box_at(420))
    res = associate_detailed(ts, cfg)
    ids = res.global_ids
    assert ids[0] != ids[1] and len(set(ids.tolist())) == 6 and res.stats["handovers"] == 0

"""Handoffs that fit where and when the run's own handoffs happen (linking step 4, ``handoff_geometry``).

A person who walks from one view into the next leaves the first by one place and enters the second by
another, a few seconds later; every handoff between the same two cameras repeats that (the sample:
out at the right border, in at the left one, at about the height they left, 1-5 s later). The
confident links of step 2 (appearance within the link threshold) show it for each ordered pair of
cameras with at least ``MIN_HANDOFFS`` of them: the median move from exit foot point to entry foot
point and the median gap, each with a robust spread (1.4826 x MAD, at least ``POSITION_FLOOR`` of
the view and ``GAP_FLOOR`` seconds). An end and a start left free whose move and gap lie within
``GATE_Z`` spreads of that, each coordinate (x, y, gap), are a handoff that fits; such candidates
are matched one to one up to a looser appearance limit than the link threshold (the ``quantile`` of
the free negatives), the closest first. Where a camera blurs, compresses or recolours, one person's
two views drift past the link threshold although where and when they cross says handoff; the gate
keeps the strangers who happen to be close in appearance but left by another side, at another
height or at another time out.

No model, and nothing changes, for a pair of cameras with fewer than ``MIN_HANDOFFS`` links or fewer
than ``MIN_PAIR_SHARE`` of the links leaving the first camera (a few chance links to a far camera are
no route), nor where the handoffs keep to no place and time (the gate would pass more than
``MAX_FIT_SHARE`` of the pair's other candidates: people enter anywhere). And where people also leave
and enter by the places the handoffs use, the free ends and starts that fit are mostly strangers: a
pair whose fitting candidates look like that (:func:`looks_like_strangers`) gets no links either.
"""
from __future__ import annotations

import numpy as np

MIN_HANDOFFS = 4          # confident links of one ordered camera pair needed to learn where it hands off
POSITION_FLOOR = 0.1      # least spread of an exit -> entry move (fraction of the view)
GAP_FLOOR = 1.5           # least spread of the gap (s)
GATE_Z = 2.5              # a candidate fits when each coordinate lies within this many spreads
MAX_FIT_SHARE = 0.5       # a model whose gate passes more of its pair's other candidates says nothing
MIN_PAIR_SHARE = 0.1      # a modelled pair holds at least this share of the links leaving its first camera
MAX_STRANGER_SHARE = 0.5  # expected strangers among the links a camera pair would get: at most this share
MAD_SCALE = 1.4826        # median absolute deviation -> standard deviation of a normal


def _robust(values: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column median and spread (1.4826 x MAD, at least ``floor``) of (n, k) values."""
    med = np.median(values, axis=0)
    return med, np.maximum(MAD_SCALE * np.median(np.abs(values - med), axis=0), floor)


def learn_models(nxt: np.ndarray, cam: np.ndarray, entry: np.ndarray, exit_: np.ndarray, start: np.ndarray,
                 end: np.ndarray) -> dict:
    """{(camera a, camera b): (centre (3,), spread (3,))} of the move (dx, dy) and gap of the links
    ``nxt`` from a to b, for pairs with at least MIN_HANDOFFS links with known foot points."""
    src = np.flatnonzero(nxt >= 0)
    dst = nxt[src]
    cross = cam[src] != cam[dst]
    src, dst = src[cross], dst[cross]
    move = entry[dst] - exit_[src]
    good = np.isfinite(move).all(1)
    src, dst, move = src[good], dst[good], move[good]
    models = {}
    leaving = np.bincount(cam[src], minlength=int(cam.max(initial=0)) + 1)
    for a, b in {(int(cam[s]), int(cam[d])) for s, d in zip(src, dst)}:
        sel = (cam[src] == a) & (cam[dst] == b)
        if sel.sum() < max(MIN_HANDOFFS, MIN_PAIR_SHARE * leaving[a]):
            continue
        m_med, m_spread = _robust(move[sel], POSITION_FLOOR)
        g_med, g_spread = _robust((start[dst[sel]] - end[src[sel]])[:, None], GAP_FLOOR)
        models[(a, b)] = (np.concatenate([m_med, g_med]), np.concatenate([m_spread, g_spread]))
    return models


def fits(i: np.ndarray, j: np.ndarray, models: dict, cam: np.ndarray, entry: np.ndarray, exit_: np.ndarray,
         start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(P,) bool: candidate i -> j belongs to a camera pair with a model and fits it (module docstring)."""
    ok = np.zeros(len(i), bool)
    for (a, b), (centre, spread) in models.items():
        sel = np.flatnonzero((cam[i] == a) & (cam[j] == b))
        if not len(sel):
            continue
        obs = np.column_stack([entry[j[sel]] - exit_[i[sel]], start[j[sel]] - end[i[sel]]])
        with np.errstate(invalid="ignore"):
            ok[sel] = (np.abs(obs - centre) <= GATE_Z * spread).all(1)
    return ok


def gate(i: np.ndarray, j: np.ndarray, nxt: np.ndarray, cam: np.ndarray, entry: np.ndarray, exit_: np.ndarray,
         start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, int]:
    """(P,) bool: candidate i -> j fits its camera pair's handoffs as the links ``nxt`` show them
    (:func:`learn_models`, :func:`fits`), and the number of camera pairs modelled. A model whose gate
    passes more than MAX_FIT_SHARE of its pair's candidates that are not links tells nothing (people
    enter anywhere): its candidates do not fit."""
    models = learn_models(nxt, cam, entry, exit_, start, end)
    ok = fits(i, j, models, cam, entry, exit_, start, end)
    pairs = 0
    for a, b in models:
        pair = (cam[i] == a) & (cam[j] == b)
        others = pair & (nxt[i] != j)
        if others.any() and ok[others].mean() > MAX_FIT_SHARE:
            ok[pair] = False
        else:
            pairs += 1
    return ok, pairs


def looks_like_strangers(fit: np.ndarray, below: np.ndarray, cam_i: np.ndarray, cam_j: np.ndarray,
                         quantile: float) -> np.ndarray:
    """(P,) bool: the candidate's camera pair is refused. Of its ``fit`` candidates (free ends and starts
    that fit), strangers fall ``below`` the appearance cap (the ``quantile`` of the known different
    people) at the rate ``quantile`` and above it at 1 - quantile; the ones above (assumed all
    strangers: the pair's own handoffs lie below) thus tell how many strangers to expect below,
    (above) x quantile / (1 - quantile). A pair where more than MAX_STRANGER_SHARE of the candidates
    below would be strangers is refused: where people leave and enter by the places the handoffs use
    (a side door between two views), the free ends and starts are mostly strangers, a quarter of whom
    look as close as the cap."""
    refused = np.zeros(len(fit), bool)
    for a, b in {(int(x), int(y)) for x, y in zip(cam_i[fit], cam_j[fit])}:
        sel = fit & (cam_i == a) & (cam_j == b)
        k = int((sel & below).sum())
        if (int(sel.sum()) - k) * quantile / (1.0 - quantile) > MAX_STRANGER_SHARE * k:
            refused |= sel
    return refused

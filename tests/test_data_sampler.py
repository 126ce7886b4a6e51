"""P x K sampler: batch composition, replacement for small ids, determinism, resume, DDP ranks."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import UserError
from reid.data.sampler import PKSampler

# 6 identities with 1, 2, 4, 5, 8, 9 images: 29 samples, pids deliberately not 0..C-1
COUNTS = {10: 1, 20: 2, 30: 4, 40: 5, 50: 8, 60: 9}
PIDS = np.repeat(list(COUNTS), list(COUNTS.values()))


def _batches(sampler):
    return np.array(list(iter(sampler))).reshape(-1, sampler.batch_size)


def test_batches_hold_p_ids_times_k_images():
    s = PKSampler(PIDS, p=3, k=4, seed=0)
    # chunks of 4: 1 + 1 + 1 + 2 + 2 + 3 = 10 -> 10 // 3 = 3 batches of 12
    assert (s.num_batches, len(s), s.batch_size) == (3, 36, 12)
    batches = _batches(s)
    assert batches.shape == (3, 12)
    for b in batches:
        groups = PIDS[b].reshape(3, 4)  # K consecutive images of one identity
        assert (groups == groups[:, :1]).all()
        assert len(set(groups[:, 0])) == 3
        for g in b.reshape(3, 4):
            n = COUNTS[PIDS[g[0]]]
            if n >= 4:  # enough images: no repeats inside a chunk
                assert len(set(g.tolist())) == 4
            else:  # fewer than K: drawn with replacement from its own images
                assert set(g.tolist()) <= set(np.flatnonzero(PIDS == PIDS[g[0]]).tolist())


def test_epoch_covers_the_large_identities():
    s = PKSampler(PIDS, p=2, k=4, seed=3)
    seen = np.concatenate([_batches(s).ravel() for _ in range(3)])
    assert set(np.flatnonzero(PIDS == 60).tolist()) <= set(seen.tolist())


def test_seeded_deterministic_and_resume_bit_exact():
    a, b = PKSampler(PIDS, 2, 4, seed=7), PKSampler(PIDS, 2, 4, seed=7)
    assert (_batches(a) == _batches(b)).all()  # same seed, same epoch 0
    epoch1 = _batches(a)
    assert not np.array_equal(epoch1, _batches(PKSampler(PIDS, 2, 4, seed=7)))  # epochs differ
    state = b.state_dict()
    assert state["epoch"] == 1
    resumed = PKSampler(PIDS, 2, 4, seed=0)
    resumed.load_state_dict(state)
    assert (_batches(resumed) == epoch1).all()
    assert not np.array_equal(_batches(PKSampler(PIDS, 2, 4, seed=8)), _batches(PKSampler(PIDS, 2, 4, seed=7)))
    with pytest.raises(UserError, match="cannot resume"):
        PKSampler(PIDS[:-1], 2, 4).load_state_dict(state)


def test_distributed_ranks_split_the_global_plan():
    pids = np.repeat(np.arange(20), 4)  # 20 ids x 4 images: 20 chunks, P=2 -> 10 global batches
    full = PKSampler(pids, 2, 4, seed=1).plan(0)
    r0, r1 = PKSampler(pids, 2, 4, seed=1, rank=0, world_size=2), PKSampler(pids, 2, 4, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) == 5 * 8
    assert (_batches(r0) == full[0::2]).all()
    assert (_batches(r1) == full[1::2]).all()
    assert sorted(np.concatenate([full[0::2], full[1::2]]).ravel().tolist()) == list(range(80))  # each image once


def test_too_few_identities_is_a_user_error():
    with pytest.raises(UserError, match="fewer than P=8"):
        PKSampler(PIDS, p=8, k=4)
    with pytest.raises(UserError, match="too small"):
        PKSampler(np.arange(4), p=2, k=4, world_size=4)

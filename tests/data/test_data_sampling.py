"""One seed derivation and one bucketing sampler: pure functions of (train.seed, epoch), unchanged from 0.1."""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.data.sampling import bucketed_batches, epoch_permutation, epoch_sample
from rnnkit.seeds import Purpose, derive_seed


def test_per_epoch_seeds_keep_the_form_of_rnnkit_0_1():
    # published runs replay batch for batch: the per-epoch streams are the ones 0.1 drew
    for seed, epoch in ((1234, 0), (141, 7), (0, 499)):
        assert derive_seed(seed, epoch) == seed * 1_000_003 + epoch
        assert derive_seed(seed, epoch, purpose=Purpose.BUCKETS) == seed * 1_000_003 + epoch + 7_919
    seeds = {derive_seed(1, e, b, purpose=p) for e in range(3) for b in range(50) for p in Purpose}
    assert len(seeds) == 3 * 50 * len(Purpose)  # distinct streams
    assert 0 <= derive_seed(2**32 - 1, 2**31, 2**31, purpose=Purpose.RANK) < 2**63  # any RNG accepts it


def _old_batch_plan(order, lengths, bs, k, seed, epoch):
    """rnnkit 0.1's ClassificationTask.batch_plan, verbatim."""
    batches = []
    for i in range(0, order.size, bs * k):
        chunk = order[i : i + bs * k]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[j : j + bs] for j in range(0, chunk.size, bs)]
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 7_919)
    return [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]


def test_bucketed_batches_cover_each_example_once_and_match_the_classifier_order_of_0_1():
    lengths = np.random.default_rng(0).integers(1, 60, size=1003)
    for seed, epoch in ((1234, 0), (7, 3)):
        order = epoch_permutation(lengths.size, seed, epoch)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        assert np.array_equal(order, torch.randperm(lengths.size, generator=g).numpy())
        batches = bucketed_batches(order, lengths, 32, 20, seed, epoch)
        assert len(batches) == -(-lengths.size // 32)
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(lengths.size))
        old = _old_batch_plan(order, lengths, 32, 20, seed, epoch)
        assert all(np.array_equal(a, b) for a, b in zip(batches, old, strict=True))
        # similar lengths share a batch: far less padding than a plain random cut
        pad = sum(int(lengths[b].max()) * b.size - int(lengths[b].sum()) for b in batches)
        plain = bucketed_batches(order, lengths, 32, 0, seed, epoch)
        assert pad < 0.5 * sum(int(lengths[b].max()) * b.size - int(lengths[b].sum()) for b in plain)
    assert all(np.array_equal(a, b) for a, b in zip(bucketed_batches(order, lengths, 32, 20, 7, 3), batches))


def test_class_balanced_sampling_is_reproducible():
    w = np.array([1.0, 1.0, 10.0, 10.0])
    a, b = epoch_sample(w, 5, 2), epoch_sample(w, 5, 2)
    assert np.array_equal(a, b) and a.size == 4 and not np.array_equal(a, epoch_sample(w, 5, 3))

"""Epoch orders for tasks that batch independent examples: shuffled, optionally bucketed by length.

One implementation for text classification and sequence to sequence, so both batch the same way and both keep
the rule that makes resume exact: an epoch's batches are a pure function of (train.seed, epoch) (and the data).
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.seeds import Purpose, derive_seed


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """A random order of ``n`` examples for one epoch."""
    g = torch.Generator().manual_seed(derive_seed(seed, epoch))
    return torch.randperm(n, generator=g).numpy()


def epoch_sample(weights: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """``len(weights)`` example indices drawn with replacement, example i with probability ~ weights[i]
    (class-balanced sampling)."""
    g = torch.Generator().manual_seed(derive_seed(seed, epoch))
    p = torch.as_tensor(weights, dtype=torch.float64)
    return torch.multinomial(p, p.numel(), replacement=True, generator=g).numpy()


def bucketed_batches(
    order: np.ndarray, lengths: np.ndarray | None, batch_size: int, bucket: int, seed: int, epoch: int
) -> list[np.ndarray]:
    """Cut an epoch's example ``order`` into batches of ``batch_size``.

    With ``bucket = K > 0`` and per-example ``lengths``, each run of K batches of the order is sorted by length
    before being cut, and the batches are shuffled again: batches hold sequences of similar length, so little
    time goes into padding, while every epoch still sees a new random order. ``bucket = 0`` (or no lengths)
    keeps the order as it is. The number of batches is ceil(len(order) / batch_size) either way.
    """
    bs = batch_size
    if lengths is None or bucket <= 0:
        return [order[i : i + bs] for i in range(0, order.size, bs)]
    batches = []
    for i in range(0, order.size, bs * bucket):
        chunk = order[i : i + bs * bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[j : j + bs] for j in range(0, chunk.size, bs)]
    g = torch.Generator().manual_seed(derive_seed(seed, epoch, purpose=Purpose.BUCKETS))
    return [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]

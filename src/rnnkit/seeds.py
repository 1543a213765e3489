"""Seeds derived from the run's seed: one function, so every random stream of a run is a pure function of
``(train.seed, epoch, ...)`` and a resumed run draws exactly what an uninterrupted one would.

Each stream has a *purpose* (an offset) so two streams of one epoch never share a seed. The form
``seed * 1_000_003 + epoch + purpose`` is the one rnnkit 0.1 used for its per-epoch batch orders; it is kept so
runs and published figures made with it replay batch for batch. Further counters (a batch number) are folded in
the same way, and the result is kept within the 63 bits every RNG here accepts (torch, numpy, random).
"""

from __future__ import annotations

from enum import IntEnum

_MULT = 1_000_003  # a prime: consecutive seeds and epochs do not collide for any realistic run
_MASK = (1 << 63) - 1


class Purpose(IntEnum):
    """What a derived seed drives; the values are offsets (0 and 7_919 are those of rnnkit 0.1)."""

    ORDER = 0  # an epoch's example order (shuffling, windows, variable BPTT lengths)
    BUCKETS = 7_919  # the order of an epoch's length-bucketed batches
    INPUT_NOISE = 15_485_863  # per-batch input noise that must not depend on the global RNG (punctuation dropout)
    DECODER = 32_452_843  # per-batch decoder draws (teacher forcing, sampled softmax)
    RANK = 49_979_687  # a distributed rank's own dropout stream


def derive_seed(seed: int, *counters: int, purpose: Purpose = Purpose.ORDER) -> int:
    """The seed of one stream: ``derive_seed(train.seed, epoch)``, ``derive_seed(seed, epoch, batch, purpose=...)``.

    A pure function of its arguments, non-negative and below 2**63.
    """
    x = int(seed)
    for c in counters:
        x = x * _MULT + int(c)
    return (x + int(purpose)) & _MASK

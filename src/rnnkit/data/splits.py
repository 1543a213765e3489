"""Reproducible stratified splits: a pure function of (labels, groups, fractions, seed).

Nothing is stored: evaluating a run rebuilds exactly the split it was trained with from the same data and the
seed in its config, so test examples are never trained on. Examples sharing a group key (e.g. the same message
text appearing twice) always land in the same split, so a duplicate of a test example is not trained on either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence

import numpy as np

from rnnkit.errors import UserError


def stratified_split(
    labels: Sequence[int] | np.ndarray, fractions: dict[str, float], seed: int, groups: Sequence[Hashable] | None = None
) -> dict[str, np.ndarray]:
    """Indices per split, stratified by label. ``fractions`` maps held-out split names to shares (e.g.
    ``{"valid": 0.1, "test": 0.1}``); everything else is ``train``. Each class keeps at least one training
    group. With ``groups``, the unit of splitting is the group (labelled by its first member's label).
    Returns sorted int64 index arrays for ``train`` and every named split."""
    labels = np.asarray(labels, dtype=np.int64)
    total = sum(fractions.values())
    if any(f < 0 for f in fractions.values()) or total >= 1:
        raise UserError(f"split fractions must be >= 0 and sum to less than 1, got {fractions}")
    if groups is None:
        unit_of = np.arange(labels.size)
        unit_label = labels
    else:
        if len(groups) != labels.size:
            raise ValueError("groups and labels differ in length")
        first: dict[Hashable, int] = {}
        unit_of = np.empty(labels.size, dtype=np.int64)
        firsts: list[int] = []
        for i, g in enumerate(groups):
            u = first.setdefault(g, len(first))
            if u == len(firsts):
                firsts.append(i)
            unit_of[i] = u
        unit_label = labels[np.asarray(firsts, dtype=np.int64)] if firsts else labels[:0]
    rng = np.random.default_rng(seed)
    assign = np.zeros(unit_label.size, dtype=np.int64)  # 0 = train, k = k-th named split
    names = list(fractions)
    for c in np.unique(unit_label):  # sorted, so the random stream is consumed in a fixed order
        units = np.flatnonzero(unit_label == c)
        units = units[rng.permutation(units.size)]
        start = 0
        for k, name in enumerate(names, start=1):
            n = min(int(round(units.size * fractions[name])), max(units.size - 1 - start, 0))
            assign[units[start : start + n]] = k
            start += n
    per_example = assign[unit_of]
    out = {"train": np.flatnonzero(per_example == 0)}
    for k, name in enumerate(names, start=1):
        out[name] = np.flatnonzero(per_example == k)
    return out


def digest(*chunks: bytes | str | np.ndarray) -> str:
    """A short sha256 of the data a split was drawn from, stored with a run to detect changed data at eval."""
    h = hashlib.sha256()
    for c in chunks:
        if isinstance(c, np.ndarray):
            c = np.ascontiguousarray(c).tobytes()
        elif isinstance(c, str):
            c = c.encode("utf-8")
        h.update(len(c).to_bytes(8, "little"))
        h.update(c)
    return h.hexdigest()[:16]

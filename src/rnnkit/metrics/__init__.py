"""Metrics computed the same way everywhere (training records, `rnnkit eval`, benchmarks, the tuner)."""

from __future__ import annotations

import math

MAX_LOG = 700.0  # exp(709) overflows a float64; report inf rather than crash or print nan


def perplexity(mean_nll: float) -> float:
    """exp of the mean per-token negative log-likelihood, guarded against overflow and NaN."""
    if math.isnan(mean_nll):
        return float("nan")
    return math.exp(mean_nll) if mean_nll < MAX_LOG else float("inf")


def bits_per_char(mean_nll: float) -> float:
    return mean_nll / math.log(2)

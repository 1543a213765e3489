"""Forecast combination: the two candidates with the lowest rolling-origin backtest error, weighted by it.

Why a combination and not the single best on validation: which method wins a short validation stretch is noisy,
and the forecasting competitions keep finding that combining a few good methods beats choosing one and guards
against any one failing (Makridakis et al. 2018/2020, M4; Kourentzes, Barrow & Petropoulos 2019, "forecast
pooling": keep a small pool of the best by validation error and combine it). The weights are Bates & Granger's
(1969): inversely proportional to each member's mean squared backtest error, so a member clearly better than the
other dominates and near-equals share.

Why two and not three: a backtest of a few origins ranks the top candidates well enough, but the third is often
one that fitted the validation stretch by chance, and its weight then pulls the combination off. On the series no
default was tuned on (benchmarks/own_data_forecast.py, its own suite and ``--suite wide``) the best two gave the
same typical error as the best three and a lower worst case. Which candidates may enter a pool is the caller's
choice (the forecast task pools the network and the fitted models: ``rnnkit.tasks.forecast.POOLED``).

Errors and weights are per column (each series chooses its own pool, as statsforecast's per-series model choice).
"""

from __future__ import annotations

import math

import numpy as np

POOL = 2  # members of the combination: the two candidates with the lowest backtest RMSE


def pool_weights(errors: dict[str, np.ndarray], pool: int = POOL) -> dict[str, list[float]]:
    """``errors``: candidate -> backtest RMSE per column (k,) -> candidate -> weight per column (k,), summing to
    1 over candidates for every column; zero outside each column's pool of the ``pool`` lowest errors (ties by
    name order). Non-finite errors never enter a pool; a zero error takes the whole weight."""
    names = list(errors)
    if not names:
        return {}
    e = np.stack([np.asarray(errors[n], dtype=np.float64) for n in names])  # (candidates, k)
    w = np.zeros_like(e)
    for j in range(e.shape[1]):
        ok = [i for i in np.argsort(e[:, j], kind="stable") if math.isfinite(e[i, j])][:pool]
        if not ok:
            continue
        exact = [i for i in ok if e[i, j] == 0]
        inv = np.array([1.0 if exact else 1.0 / e[i, j] ** 2 for i in (exact or ok)])
        w[exact or ok, j] = inv / inv.sum()
    return {n: [float(v) for v in w[i]] for i, n in enumerate(names) if np.any(w[i] > 0)}


def combine(forecasts: dict[str, np.ndarray], weights: dict[str, list[float]]) -> np.ndarray:
    """The weighted combination of forecasts (..., k) with per-column weights (``pool_weights``)."""
    parts = [np.asarray(w, dtype=np.float64) * forecasts[n] for n, w in weights.items()]
    return np.sum(parts, axis=0)

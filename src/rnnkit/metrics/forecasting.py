"""Forecast accuracy and the baselines every forecast is judged against, computed one way everywhere.

Arrays are ``(windows, horizon, k)`` in original units. RMSE and MAE pool every window, step and column; MASE
divides each column's MAE by that column's in-sample seasonal-naive MAE on the training split (Hyndman & Koehler
2006), then averages over columns, so MASE < 1 means better than the seasonal-naive method was in-sample.

Actual values that are NaN are no target (a panel's series of different spans are NaN before they start, see
``rnnkit.data.timeseries``): every figure is over the finite ones. A NaN forecast of a finite value stays NaN.
"""

from __future__ import annotations

import math

import numpy as np

BASELINES = ("naive", "seasonal_naive", "drift", "mean")


def _known(y: np.ndarray, *forecasts: np.ndarray) -> tuple[np.ndarray, ...]:
    """The entries where the actual value is known (flattened), of y and each forecast."""
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y)
    if ok.all():
        return (y, *(np.asarray(f, dtype=np.float64) for f in forecasts))
    return (y[ok], *(np.broadcast_to(np.asarray(f, dtype=np.float64), y.shape)[ok] for f in forecasts))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    y, yhat = _known(y, yhat)
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    y, yhat = _known(y, yhat)
    return float(np.mean(np.abs(y - yhat)))


def mape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute percentage error (%), over the actual values that are not zero (nan if all are)."""
    y, yhat = _known(y, yhat)
    nz = y != 0
    if not nz.any():
        return float("nan")
    return float(np.mean(np.abs((y[nz] - yhat[nz]) / y[nz])) * 100)


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE (%): mean of 2|e| / (|y| + |yhat|), a term with both zero counting as 0."""
    y, yhat = _known(y, yhat)
    den = np.abs(y) + np.abs(yhat)
    terms = np.where(den > 0, 2 * np.abs(y - yhat) / np.where(den > 0, den, 1), 0.0)
    return float(np.mean(terms) * 100)


def mase_scale(train: np.ndarray, season: int) -> np.ndarray:
    """Per column: the in-sample MAE of the seasonal-naive forecast y[t - m] on the training values (n, k).

    Falls back to the naive (m = 1) scale when the training split is not longer than one season.
    """
    m = season if 1 <= season < train.shape[0] else 1
    diffs = np.abs(train[m:] - train[:-m])
    with np.errstate(invalid="ignore"):
        return np.nanmean(diffs, axis=0) if np.isnan(diffs).any() else np.mean(diffs, axis=0)


def mase(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> float:
    err = np.abs(y - yhat)
    axes = tuple(range(y.ndim - 1))
    if np.isfinite(y).all():
        per_col = np.mean(err, axis=axes)  # (k,)
    else:  # over each column's known values; a NaN forecast of one stays NaN
        known = np.isfinite(y)
        per_col = np.sum(np.where(known, err, 0.0), axis=axes) / np.maximum(np.sum(known, axis=axes), 1)
        per_col = np.where(np.any(known & ~np.isfinite(err), axis=axes), np.nan, per_col)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = per_col / np.asarray(scale, dtype=np.float64)
    return float(np.mean(ratios)) if np.all(np.isfinite(ratios)) else float("nan")


def point_metrics(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    return {
        "rmse": rmse(y, yhat),
        "mae": mae(y, yhat),
        "mape": mape(y, yhat),
        "smape": smape(y, yhat),
        "mase": mase(y, yhat, scale),
    }


def pinball(y: np.ndarray, q_forecast: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of a ``q``-quantile forecast: q (y - f) where y is above, (1 - q) (f - y)."""
    y, q_forecast = _known(y, q_forecast)
    diff = y - q_forecast
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def interval_pinball(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> float:
    """A central ``level`` interval scored as its two quantiles: the mean of their pinball losses (original units;
    lower is better, and it rewards a narrow interval only where it still covers)."""
    return 0.5 * (pinball(y, lower, (1 - level) / 2) + pinball(y, upper, (1 + level) / 2))


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside their prediction interval."""
    y, lower, upper = _known(y, lower, upper)
    return float(np.mean((y >= lower) & (y <= upper)))


# -- baselines -------------------------------------------------------------------------------------------------
def naive_forecast(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated: (B, horizon, k)."""
    return np.repeat(values[origins - 1][:, None, :], horizon, axis=1)


def seasonal_naive_forecast(values: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """y[o + h - m * ceil((h + 1) / m)] for step h (0-based): the same season's last observed value."""
    m = max(int(season), 1)
    h = np.arange(horizon)
    lag = m * np.ceil((h + 1) / m).astype(np.int64)  # (horizon,)
    idx = origins[:, None] + h[None, :] - lag[None, :]
    if idx.min(initial=0) < 0:
        raise ValueError(f"seasonal naive needs {m} steps of history before every origin")
    return values[idx]


def drift_forecast(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The random walk with drift: the last value plus h times the average step since the first (Hyndman &
    Athanasopoulos, FPP 5.2); the last value where there is a single point. (Each column from its own first
    value: a panel's shorter series start later.)"""
    start = np.argmax(np.isfinite(values), axis=0)  # (k,)
    first, last = values[start, np.arange(values.shape[1])][None, :], values[origins - 1]
    slope = (last - first) / np.maximum(origins[:, None] - 1 - start[None, :], 1)  # (B, k)
    h = np.arange(1, horizon + 1, dtype=np.float64)
    return last[:, None, :] + h[None, :, None] * slope[:, None, :]


def mean_forecast(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The mean of all history before the origin, repeated (of each column's known values)."""
    known = np.isfinite(values)
    csum = np.cumsum(np.where(known, values, 0.0), axis=0)
    count = np.cumsum(known, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = csum[origins - 1] / count[origins - 1]
    return np.repeat(means[:, None, :], horizon, axis=1)


def baseline_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    return {
        "naive": naive_forecast(values, origins, horizon),
        "seasonal_naive": seasonal_naive_forecast(values, origins, horizon, season),
        "drift": drift_forecast(values, origins, horizon),
        "mean": mean_forecast(values, origins, horizon),
    }


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile: 1.645 for a 90% interval."""
    from statistics import NormalDist

    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    # from the lower tail: 0.5 + level / 2 rounds to 1.0 for a level a hair below 1 (the upper tail's inv_cdf fails)
    return -NormalDist().inv_cdf((1 - level) / 2)


def finite_or_none(x: float) -> float | None:
    return x if isinstance(x, float) and math.isfinite(x) else None

"""Forecast metrics and baselines on hand-made series whose answers are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit.metrics.forecasting import (
    baseline_forecasts,
    coverage,
    mape,
    mase,
    mase_scale,
    mean_forecast,
    naive_forecast,
    point_metrics,
    seasonal_naive_forecast,
    smape,
    z_value,
)


def test_naive_on_a_linear_series_is_off_by_slope_times_steps():
    y = (3.0 * np.arange(40) + 1)[:, None]  # slope 3
    origins = np.array([20, 25, 30])
    f = naive_forecast(y, origins, 4)
    assert f.shape == (3, 4, 1) and np.all(f[:, :, 0] == y[origins - 1])
    truth = y[origins[:, None] + np.arange(4)]
    errors = (truth - f)[..., 0]
    assert np.all(errors == 3.0 * np.arange(1, 5))  # h steps ahead: 3 h too low
    m = point_metrics(truth, f, mase_scale(y[:20], 1))
    assert math.isclose(m["mae"], 3.0 * 2.5) and math.isclose(m["rmse"], 3.0 * math.sqrt((1 + 4 + 9 + 16) / 4))
    assert math.isclose(m["mase"], 2.5)  # in-sample naive MAE on train is the slope, 3


def test_seasonal_naive_repeats_last_season_and_is_exact_on_a_periodic_series():
    season = np.array([5.0, 1.0, 7.0, 2.0])
    y = np.tile(season, 10)[:, None]
    origins = np.array([8, 13, 22])
    f = seasonal_naive_forecast(y, origins, 9, 4)  # horizon longer than two seasons
    truth = y[origins[:, None] + np.arange(9)]
    assert np.array_equal(f, truth)
    # the exact indices: step h (0-based) takes y[o + h - 4 * ceil((h + 1) / 4)]
    ramp = np.arange(30, dtype=float)[:, None]
    g = seasonal_naive_forecast(ramp, np.array([10]), 6, 4)[0, :, 0]
    assert g.tolist() == [6, 7, 8, 9, 6, 7]
    with pytest.raises(ValueError, match="history"):
        seasonal_naive_forecast(ramp, np.array([2]), 3, 4)
    assert np.array_equal(seasonal_naive_forecast(ramp, np.array([10]), 3, 1), naive_forecast(ramp, np.array([10]), 3))


def test_mean_baseline_is_the_mean_of_all_history():
    y = np.array([1.0, 2, 3, 4, 10, 20])[:, None]
    f = mean_forecast(y, np.array([4, 5]), 2)
    assert f[:, :, 0].tolist() == [[2.5, 2.5], [4.0, 4.0]]
    assert set(baseline_forecasts(y, np.array([4]), 2, 2)) == {"naive", "seasonal_naive", "drift", "mean"}
    # the drift: the last value plus h times the average step since the first (from 1 to 4 in 3 steps: 1 a step)
    assert baseline_forecasts(y, np.array([4, 6]), 2, 2)["drift"][:, :, 0].tolist() == [[5.0, 6.0], [23.8, 27.6]]


def test_mase_formula():
    train = np.array([[1.0, 10], [3, 10], [2, 14], [6, 10], [4, 12]])
    # season 2: |2-1|, |6-3|, |4-2| -> 2 for column 0; |14-10|, |10-10|, |12-14| -> 2 for column 1
    scale = mase_scale(train, 2)
    assert scale.tolist() == [2.0, 2.0]
    y = np.array([[[5.0, 11]], [[7, 13]]])
    yhat = np.array([[[4.0, 11]], [[9, 9]]])
    # MAE per column: (1 + 2) / 2 = 1.5 and (0 + 4) / 2 = 2 -> MASE (1.5 / 2 + 2 / 2) / 2
    assert math.isclose(mase(y, yhat, scale), (0.75 + 1.0) / 2)
    assert mase_scale(train, 10).tolist() == mase_scale(train, 1).tolist()  # season >= train length: naive scale
    assert math.isnan(mase(y, yhat, np.array([0.0, 2.0])))


def test_percentage_errors_and_coverage():
    y = np.array([100.0, 0.0, 50.0])
    yhat = np.array([110.0, 0.0, 40.0])
    assert math.isclose(mape(y, yhat), (10 + 20) / 2)  # zero actuals are skipped
    assert math.isclose(smape(y, yhat), (20 / 210 + 0 + 20 / 90) * 100 / 3)
    assert math.isnan(mape(np.zeros(3), yhat))
    assert coverage(y, y - 1, y + 1) == 1.0 and coverage(y, y + 1, y + 2) == 0.0
    assert math.isclose(z_value(0.9), 1.6448536, rel_tol=1e-6)


def test_z_value_for_levels_up_to_a_hair_below_one():
    from statistics import NormalDist

    from rnnkit.metrics.forecasting import z_value

    assert abs(z_value(0.9) - NormalDist().inv_cdf(0.95)) < 1e-12
    assert 8 < z_value(0.9999999999999999) < 9  # 0.5 + level / 2 rounds to 1.0 there

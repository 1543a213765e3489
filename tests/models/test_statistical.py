"""The statistical forecasters against statsmodels itself, and the season read from the time index and the data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rnnkit.data.timeseries import infer_season, time_frequency
from rnnkit.models.statistical import AR, ETS, DampedETS

AIRLINE = "timeseries/airline-passengers.csv"


@pytest.fixture(scope="module")
def airline(data_dir):
    return np.loadtxt(data_dir / AIRLINE, delimiter=",", skiprows=1, usecols=1)


def test_ets_is_statsmodels_holt_winters_with_the_lowest_aicc(airline):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = airline[:60]
    fitted = ETS.fit(y, 12)
    aicc = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for trend, damped, seasonal in ETS.structures(len(y), 12, positive=True):
            res = ExponentialSmoothing(
                y,
                trend=trend,
                damped_trend=damped,
                seasonal=seasonal,
                seasonal_periods=12 if seasonal else None,
                initialization_method="estimated",
            ).fit()
            aicc[(trend, damped, seasonal)] = (res.aicc, res)
    best = min(aicc, key=lambda k: aicc[k][0])
    assert (fitted.trend, fitted.damped, fitted.seasonal) == best
    np.testing.assert_allclose(fitted.forecast(y, 12), aicc[best][1].forecast(12), rtol=1e-10)
    # backtesting from later origins filters the data with the fitted parameters: the last origin's forecast is
    # the forecast from the whole history
    origins = np.array([70, 90, 132])
    bt = fitted.backtest(airline, origins, 12)
    np.testing.assert_allclose(bt[-1], fitted.forecast(airline[:132], 12), rtol=1e-10)
    assert bt.shape == (3, 12)
    # refitted on another history: statsmodels' own estimate for that history
    again = fitted.refit(airline[:72])
    assert again.label == fitted.label and again.params != fitted.params


# Monthly shampoo sales, years 1-3 less the last 6 months (Makridakis, Wheelwright & Hyndman 1998; public
# domain): a short trending series where statsmodels' optimiser, started without its grid search, stops at
# another optimum, whose forecast of the 6 months held out has an RMSE 45% above that of the fit
# ``ExponentialSmoothing(...).fit()`` gives (172.9 against 119.5, the "damped Holt" baseline).
SHAMPOO_30 = [
    266.0, 145.9, 183.1, 119.3, 180.3, 168.5, 231.8, 224.5, 192.8, 122.9, 336.5, 185.9, 194.3, 149.5, 210.1,
    273.3, 191.4, 287.0, 226.0, 303.6, 289.9, 421.6, 264.5, 342.3, 339.7, 440.4, 315.9, 439.3, 401.3, 437.4,
]  # fmt: skip


def test_damped_trend_on_a_short_series_is_the_fit_users_get_from_statsmodels():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.array(SHAMPOO_30)
    fitted = DampedETS.fit(y, 12)
    assert (fitted.trend, fitted.damped, fitted.seasonal) == ("add", True, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ExponentialSmoothing(y, trend="add", damped_trend=True, initialization_method="estimated").fit()
    np.testing.assert_allclose(fitted.forecast(y, 6), ref.forecast(6), rtol=1e-8)


def test_ar_order_by_aic_and_forecasts_equal_autoreg(airline):
    from statsmodels.tsa.ar_model import AutoReg

    y = airline[:100]
    fitted = AR.fit(y, 12)
    top = AR.max_lag(len(y), 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aics = {p: AutoReg(y, lags=p, trend="c", hold_back=top).fit().aic for p in range(1, top + 1)}
        ref = AutoReg(y, lags=fitted.p, trend="c").fit().predict(len(y), len(y) + 5)
    assert fitted.p == min(aics, key=aics.__getitem__)
    np.testing.assert_allclose(fitted.forecast(y, 6), ref, rtol=1e-9)
    bt = fitted.backtest(airline, np.array([100, 120]), 6)
    np.testing.assert_allclose(bt[0], ref, rtol=1e-9)


def test_the_season_comes_from_the_time_index_and_the_autocorrelation(airline, data_dir):
    months = [f"{1949 + i // 12}-{i % 12 + 1:02d}" for i in range(len(airline))]
    assert time_frequency(months) == "monthly"
    assert infer_season(airline, months)[0] == 12
    assert time_frequency(["2020-01-01", "2020-04-01", "2020-07-01", "2020-10-01"]) == "quarterly"
    assert time_frequency([str(y) for y in range(1871, 1971)]) == "yearly"
    assert time_frequency(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00"]) == "hourly"
    # the daily temperatures' annual cycle, not the week the index first suggests
    temps = np.loadtxt(data_dir / "timeseries/daily-min-temperatures.csv", delimiter=",", skiprows=1, usecols=1)
    days = [str(d) for d in np.arange("1981-01-01", "1988-01-01", dtype="datetime64[D]")][: len(temps[:2550])]
    assert infer_season(temps[: len(days)], days)[0] == 365
    # a monthly index keeps its calendar's season without the autocorrelation's say-so (as R's frequency(): the
    # models decide), where two years fit; white noise with rows numbered has none; a weekly cycle in numbered
    # rows is found by its autocorrelation
    rng = np.random.default_rng(0)
    m, why = infer_season(rng.normal(size=144).cumsum(), months)
    assert m == 12 and "the models decide" in why
    assert infer_season(rng.normal(size=20).cumsum(), months[:20])[0] == 1  # under two years
    rows = [str(i) for i in range(300)]
    assert infer_season(rng.normal(size=300), rows)[0] == 1
    weekly = np.sin(2 * np.pi * np.arange(300) / 7) + 0.3 * rng.normal(size=300)
    assert infer_season(weekly, rows)[0] == 7


def test_theta_is_statsmodels_theta_model_and_backtests_with_its_parameters(airline):
    from statsmodels.tsa.forecasting.theta import ThetaModel

    from rnnkit.models.statistical import Theta, from_dict

    for season, n in ((12, 100), (1, 60)):
        fitted = Theta.fit(airline[:n], season)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ThetaModel(airline[:n], period=season, deseasonalize=season > 1).fit().forecast(12)
        np.testing.assert_allclose(fitted.forecast(airline[:n], 12), np.asarray(ref), rtol=1e-10)
        # from a later origin: the same parameters, the smoothing run on through the data before it
        bt = fitted.backtest(airline, np.array([n, n + 20]), 12)
        np.testing.assert_allclose(bt[0], np.asarray(ref), rtol=1e-10)
        assert not np.allclose(bt[1], bt[0])
        assert from_dict(fitted.to_dict()) == fitted
    assert Theta.fit(airline[:100], 12).factors and not Theta.fit(airline[:60], 1).factors


def test_the_pool_is_the_two_lowest_errors_weighted_by_inverse_mse():
    from rnnkit.models.combination import combine, pool_weights

    errors = {"a": np.array([1.0, 4.0]), "b": np.array([2.0, 1.0]), "c": np.array([4.0, np.nan]), "d": [3.0, 2.0]}
    w = pool_weights(errors)
    # column 0: a, b (1/1, 1/4 normalised); column 1: b, d (c's error is not finite)
    total0, total1 = 1 + 1 / 4, 1 + 1 / 4
    np.testing.assert_allclose(w["a"], [1 / total0, 0.0])
    np.testing.assert_allclose(w["b"], [(1 / 4) / total0, 1 / total1])
    np.testing.assert_allclose(w["d"], [0.0, (1 / 4) / total1])
    assert "c" not in w
    f = {k: np.full((3, 2), float(i)) for i, k in enumerate("abcd")}
    np.testing.assert_allclose(combine(f, w)[0], [w["b"][0], w["b"][1] + 3 * w["d"][1]])
    assert pool_weights({"a": np.array([0.0]), "b": np.array([1.0])}) == {"a": [1.0]}  # a perfect backtest
    three = pool_weights(errors, pool=3)  # a wider pool on request: column 0 takes d too
    np.testing.assert_allclose(three["d"][0], (1 / 9) / (1 + 1 / 4 + 1 / 9))


def test_damped_ets_is_the_damped_trend_with_the_lowest_aicc(airline):
    from rnnkit.models.statistical import DampedETS, from_dict

    fitted = DampedETS.fit(airline[:60], 12)
    assert fitted.trend == "add" and fitted.damped and fitted.label.startswith("ETS(A,Ad,")
    assert {s[:2] for s in DampedETS.structures(60, 12, True, trend="damped")} == {("add", True)}
    again = from_dict(fitted.to_dict())
    assert isinstance(again, DampedETS) and again == fitted
    np.testing.assert_allclose(again.forecast(airline[:60], 6), fitted.forecast(airline[:60], 6))

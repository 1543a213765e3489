"""Statistical forecasters fitted on a series' own history, by statsmodels: exponential smoothing (ETS / Holt-Winters,
the structure chosen by AICc), the Theta method (Assimakopoulos & Nikolopoulos 2000, the M3 winner: statsmodels'
ThetaModel) and autoregression (AR(p), the order chosen by AIC). They are the baselines every forecast is judged
against, candidates of the combination a forecast can be, and the exponential smoothing an ES-RNN-style hybrid
builds on.

Each works on one column ``y`` (n,) float64 and is used two ways:

* ``fit(y)`` chooses the structure and estimates the parameters on a training history (the task: on its training
  split); ``backtest(values, origins, horizon)`` then forecasts from every origin of a later split with those
  parameters, filtered through the data before each origin - as the neural model, trained once, is evaluated;
* ``fit(y).forecast(y, horizon)`` on the history ``rnnkit forecast`` is given: structure and parameters chosen
  again on it, as a user's own statsmodels call would (``refit`` keeps the structure, re-estimating the
  parameters).

Known-future covariates (``exog``: (n, f), the rows aligned with the values, and for ``forecast`` the forecast
steps' rows after them) enter AR as regressors (ARX, statsmodels' AutoReg with ``exog``); ETS and Theta take no
covariates and ignore them.

The seasonal naive, naive, drift and mean forecasts are one-liners and live in ``rnnkit.metrics.forecasting``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

ETS_MAX_SEASON = 52  # beyond (daily data's 365): no seasonal ETS (its m initial states are not estimable)
AR_MAX_LAG = 60


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """statsmodels warns about convergence and frequencies on every other fit: not the user's business here.
    (Imported first: importing statsmodels adds an "always" filter for its warnings, ahead of ours.)"""
    import statsmodels.tsa.ar_model  # noqa: F401
    import statsmodels.tsa.holtwinters  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- exponential smoothing -----------------------------------------------------------------------------------
@dataclass
class ETS:
    """Holt-Winters exponential smoothing (additive errors): level, optional (damped) trend, optional additive or
    multiplicative season of ``season`` steps; the structure with the lowest AICc on the training history."""

    trend: str | None = None  # None | "add"
    damped: bool = False
    seasonal: str | None = None  # None | "add" | "mul"
    season: int = 1
    params: dict[str, Any] = field(default_factory=dict)  # smoothing, damping and initial states (plain floats)
    TREND: ClassVar[str] = "any"  # the trends ``fit`` tries (see ``structures``)
    KIND: ClassVar[str] = "ets"

    @property
    def label(self) -> str:
        t = {None: "N", "add": "A"}[self.trend] + ("d" if self.damped else "")
        s = {None: "N", "add": "A", "mul": "M"}[self.seasonal]
        return f"ETS(A,{t},{s}{f'[{self.season}]' if self.seasonal else ''})"

    @staticmethod
    def structures(
        n: int, season: int, positive: bool, damped_only: bool = False, trend: str = "any"
    ) -> list[tuple[str | None, bool, str | None]]:
        """The structures tried: every trend (none, additive, damped; ``damped_only``: none or damped;
        ``trend = "damped"``: damped only) with every season the data allow."""
        seasons: list[str | None] = [None]
        if 2 <= season <= ETS_MAX_SEASON and n >= 2 * season + 2:
            seasons += ["add"] + (["mul"] if positive else [])
        trends = [(None, False), ("add", True)] if damped_only else [(None, False), ("add", False), ("add", True)]
        if trend == "damped":
            trends = [("add", True)]
        return [(t, d, s) for t, d in (trends if n >= 8 else [(None, False)]) for s in seasons]

    def _model(self, y: np.ndarray, init: str) -> Any:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        kw: dict[str, Any] = {}
        if init == "known":
            kw = {
                "initial_level": self.params["initial_level"],
                "initial_trend": self.params.get("initial_trend") if self.trend else None,
                "initial_seasonal": self.params.get("initial_seasons") if self.seasonal else None,
            }
        return ExponentialSmoothing(
            y,
            trend=self.trend,
            damped_trend=self.damped,
            seasonal=self.seasonal,
            seasonal_periods=self.season if self.seasonal else None,
            initialization_method=init,
            **kw,
        )

    def _init_method(self, n: int) -> str:
        return "estimated" if self.season <= 24 or not self.seasonal else "heuristic"

    @classmethod
    def fit(
        cls,
        y: np.ndarray,
        season: int,
        multiplicative: bool = True,
        damped_only: bool = False,
        exog: np.ndarray | None = None,
        brute: bool = True,
    ) -> ETS:
        """The structure with the lowest AICc, its parameters estimated on ``y`` (a multiplicative season only
        where ``multiplicative`` and every value is positive; a trend only damped with ``damped_only``).

        ``brute`` starts statsmodels' optimiser from its grid search, as ``ExponentialSmoothing.fit()`` does by
        default: the baselines are then the very fits a user gets from statsmodels (without it, a damped trend
        on a short series can stop in a worse local optimum). The hybrid's smoothing passes False: its
        remainder is modelled by the network, and the grid's start made it worse on the wide suite."""
        best: tuple[float, ETS] | None = None
        positive = multiplicative and bool(np.all(y > 0))
        with _quiet():
            for trend, damped, seasonal in cls.structures(len(y), season, positive, damped_only, cls.TREND):
                cand = cls(trend, damped, seasonal, season if seasonal else 1)
                try:
                    res = cand._model(y, cand._init_method(len(y))).fit(use_brute=brute)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                if not math.isfinite(res.aicc):
                    continue
                cand.params = _plain(res.params)
                if best is None or res.aicc < best[0]:
                    best = (res.aicc, cand)
        if best is None:
            # statsmodels fits nothing to a flat series (or one of values so large their squares overflow): its
            # limit, simple exponential smoothing with alpha = 1 (the naive forecast), is the honest answer
            return cls(None, False, None, 1, {"smoothing_level": 1.0, "initial_level": float(y[0])})
        return best[1]

    def refit(self, y: np.ndarray) -> ETS:
        """The same structure, parameters re-estimated on ``y`` (falling back to no season if ``y`` is short)."""
        if self.seasonal and len(y) < 2 * self.season + 2:
            return ETS(self.trend, self.damped, None, 1).refit(y)
        new = ETS(self.trend, self.damped, self.seasonal, self.season)
        with _quiet():
            new.params = _plain(new._model(y, new._init_method(len(y))).fit().params)
        return new

    def states(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Level, trend and season after each point of ``y`` (which starts where the fitted history started),
        filtered with the fitted parameters."""
        p = self.params
        with _quiet():
            res = self._model(y, "known").fit(
                smoothing_level=p["smoothing_level"],
                smoothing_trend=p.get("smoothing_trend") if self.trend else None,
                smoothing_seasonal=p.get("smoothing_seasonal") if self.seasonal else None,
                damping_trend=p.get("damping_trend") if self.damped else None,
                optimized=False,
            )
        n = len(y)
        return {
            "level": np.asarray(res.level, dtype=np.float64),
            "trend": np.asarray(res.trend, dtype=np.float64) if self.trend else np.zeros(n),
            "season": np.asarray(res.season, dtype=np.float64) if self.seasonal else np.zeros(n),
        }

    def forecasts_from(self, states: dict[str, np.ndarray], origins: np.ndarray, horizon: int) -> np.ndarray:
        """(B, horizon) forecasts from each origin ``o`` (the first unseen index), states of index o - 1."""
        phi = float(self.params.get("damping_trend") or 1.0) if self.damped else 1.0
        h = np.arange(1, horizon + 1)
        damp = np.cumsum(phi ** h.astype(np.float64))  # phi + ... + phi^h
        last = origins - 1
        base = states["level"][last][:, None] + states["trend"][last][:, None] * damp[None, :]
        if not self.seasonal:
            return base
        m = self.season
        idx = last[:, None] + h[None, :] - m * np.ceil(h / m).astype(np.int64)[None, :]
        s = _season_at(states["season"], idx, self.params.get("initial_seasons"))
        return base * s if self.seasonal == "mul" else base + s

    def backtest(
        self, values: np.ndarray, origins: np.ndarray, horizon: int, exog: np.ndarray | None = None
    ) -> np.ndarray:
        return self.forecasts_from(self.states(values[: int(origins.max())]), origins, horizon)

    def forecast(self, y: np.ndarray, horizon: int, exog: np.ndarray | None = None) -> np.ndarray:
        """``horizon`` steps after ``y`` with these parameters (``y`` starts where the fitted history started)."""
        return self.forecasts_from(self.states(y), np.array([len(y)]), horizon)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.KIND,
            "trend": self.trend,
            "damped": self.damped,
            "seasonal": self.seasonal,
            "season": self.season,
            "params": self.params,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ETS:
        return cls(d["trend"], bool(d["damped"]), d["seasonal"], int(d["season"]), dict(d["params"]))


@dataclass
class DampedETS(ETS):
    """Exponential smoothing with a damped trend (Gardner & McKenzie 1985), the season chosen by AICc: the
    "damped" of the M competitions' benchmarks, a forecaster in its own right beside the AICc choice of every
    structure (which may pick an undamped trend or none)."""

    TREND: ClassVar[str] = "damped"
    KIND: ClassVar[str] = "damped"


def _season_at(season: np.ndarray, idx: np.ndarray, initial: Any) -> np.ndarray:
    """Seasonal states at indices that may fall before the first point (then: the initial seasonal states)."""
    if idx.min(initial=0) >= 0:
        return season[idx]
    init = np.asarray(initial if initial is not None else [], dtype=np.float64)
    m = len(init)
    ext = np.concatenate([init, season])
    return ext[np.clip(idx + m, 0, None)]


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None or isinstance(v, (bool, str)):
            out[k] = v
        elif np.ndim(v) == 0:
            x = float(v)
            out[k] = x if math.isfinite(x) else None
        else:
            out[k] = [float(x) for x in np.asarray(v, dtype=np.float64).ravel()]
    return out


# -- the Theta method ----------------------------------------------------------------------------------------
@dataclass
class Theta:
    """The Theta method as statsmodels' ThetaModel fits it (theta = 2: simple exponential smoothing plus half the
    slope of a linear trend, Hyndman & Billah 2003), on data deseasonalised by classical decomposition when its
    seasonality test says so (multiplicative for positive data, as statsmodels chooses)."""

    season: int = 1
    alpha: float = 0.5
    b0: float = 0.0
    method: str = "additive"  # "additive" | "multiplicative": how the seasonal factors apply
    factors: list[float] = field(default_factory=list)  # per position of the period from the series' start

    @property
    def label(self) -> str:
        return f"Theta({'deseasonalised' if self.factors else 'no season'})"

    @classmethod
    def fit(cls, y: np.ndarray, season: int, exog: np.ndarray | None = None) -> Theta:
        from statsmodels.tsa.forecasting.theta import ThetaModel

        period = season if 2 <= season <= ETS_MAX_SEASON and len(y) >= 2 * season else 1
        with _quiet():
            model = ThetaModel(y, period=period, deseasonalize=period > 1)
            res = model.fit()
        factors = [float(v) for v in np.asarray(res._seasonal, dtype=np.float64)] if model.deseasonalize else []
        return cls(period, float(res.params["alpha"]), float(res.params["b0"]), model.method, factors)

    def refit(self, y: np.ndarray) -> Theta:
        return Theta.fit(y, self.season)

    def backtest(
        self, values: np.ndarray, origins: np.ndarray, horizon: int, exog: np.ndarray | None = None
    ) -> np.ndarray:
        """(B, horizon) from every origin with these parameters: the deseasonalised series smoothed with ``alpha``
        (started at its first value, as ThetaModel does), the trend term of a history of ``o`` points, and the
        season put back by position (``values`` start where the fitted history started)."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        y = np.asarray(values[: int(origins.max())], dtype=np.float64)
        mul = self.method.startswith("mul")
        f = np.asarray(self.factors, dtype=np.float64)
        pos = np.arange(len(y)) % max(len(f), 1)
        d = (y / f[pos] if mul else y - f[pos]) if f.size else y
        with _quiet():
            level = (
                ExponentialSmoothing(d, initial_level=d[0], initialization_method="known")
                .fit(smoothing_level=self.alpha, optimized=False)
                .level
            )
        level = np.asarray(level, dtype=np.float64)
        a = self.alpha
        h = np.arange(horizon, dtype=np.float64)[None, :]
        n = origins.astype(np.float64)[:, None]
        trend = self.b0 * (h + (1 / a - (1 - a) ** n / a if a > 0 else 0.0))
        out = level[origins - 1][:, None] + 0.5 * trend
        if f.size:
            s = f[(origins[:, None] + np.arange(horizon)[None, :]) % len(f)]
            out = out * s if mul else out + s
        return out

    def forecast(self, y: np.ndarray, horizon: int, exog: np.ndarray | None = None) -> np.ndarray:
        return self.backtest(y, np.array([len(y)]), horizon)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "theta",
            "season": self.season,
            "alpha": self.alpha,
            "b0": self.b0,
            "method": self.method,
            "factors": list(self.factors),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Theta:
        return cls(int(d["season"]), float(d["alpha"]), float(d["b0"]), str(d["method"]), list(d["factors"]))


# -- autoregression ------------------------------------------------------------------------------------------
@dataclass
class AR:
    """AR(p) with a constant, ``p`` chosen by AIC up to ``max_lag``, fitted by least squares (statsmodels'
    AutoReg); with known-future covariates, ARX(p): also a linear regression on them."""

    p: int = 1
    const: float = 0.0
    coefs: list[float] = field(default_factory=list)  # coefs[i] multiplies y[t - 1 - i]
    beta: list[float] = field(default_factory=list)  # multiplies the covariates at t

    @property
    def label(self) -> str:
        return f"{'ARX' if self.beta else 'AR'}({self.p})"

    @staticmethod
    def max_lag(n: int, season: int) -> int:
        """Two seasons and one step for a short season (AR(25) for monthly data), one season and a step up to
        ``AR_MAX_LAG``, 24 otherwise; never more than a third of the history."""
        cap = 2 * season + 1 if 1 < season <= 24 else season + 1 if 24 < season < AR_MAX_LAG else 24
        return int(max(1, min(max(cap, 12), n // 3)))

    @classmethod
    def fit(cls, y: np.ndarray, season: int, exog: np.ndarray | None = None) -> AR:
        from statsmodels.tsa.ar_model import AutoReg

        top = cls.max_lag(len(y), season)
        best: tuple[float, int] | None = None
        with _quiet():
            for p in range(1, top + 1):  # one sample for every order (hold_back), so the AICs compare
                aic = AutoReg(y, lags=p, trend="c", hold_back=top, exog=exog).fit().aic
                if math.isfinite(aic) and (best is None or aic < best[0]):
                    best = (aic, p)
        return cls(best[1] if best else 1).refit(y, exog)

    def refit(self, y: np.ndarray, exog: np.ndarray | None = None) -> AR:
        from statsmodels.tsa.ar_model import AutoReg

        p = int(max(1, min(self.p, len(y) // 3)))
        with _quiet():
            params = np.asarray(AutoReg(y, lags=p, trend="c", exog=exog).fit().params, dtype=np.float64)
        return AR(p, float(params[0]), [float(c) for c in params[1 : p + 1]], [float(b) for b in params[p + 1 :]])

    def backtest(
        self, values: np.ndarray, origins: np.ndarray, horizon: int, exog: np.ndarray | None = None
    ) -> np.ndarray:
        """(B, horizon): the recursion from every origin at once (origins need p points before them; ARX: the
        covariates' rows up to the last origin's horizon)."""
        p = self.p
        lags = values[origins[:, None] + np.arange(-p, 0)[None, :]]  # (B, p), oldest first
        coefs = np.asarray(self.coefs, dtype=np.float64)[::-1]  # oldest first
        beta = np.asarray(self.beta, dtype=np.float64)
        if beta.size and (exog is None or exog.shape[0] < int(origins.max()) + horizon):
            raise ValueError(f"{self.label} needs its covariates for every forecast step")
        out = np.empty((len(origins), horizon))
        for j in range(horizon):
            nxt = self.const + lags @ coefs
            if beta.size:
                nxt = nxt + exog[origins + j] @ beta  # type: ignore[index]
            out[:, j] = nxt
            lags = np.concatenate([lags[:, 1:], nxt[:, None]], axis=1)
        return out

    def forecast(self, y: np.ndarray, horizon: int, exog: np.ndarray | None = None) -> np.ndarray:
        """``exog``: the covariates of ``y``'s rows and of the ``horizon`` after them (ARX)."""
        return self.backtest(y, np.array([len(y)]), horizon, exog)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ar", "p": self.p, "const": self.const, "coefs": list(self.coefs), "beta": list(self.beta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AR:
        beta = [float(b) for b in d.get("beta") or []]
        return cls(int(d["p"]), float(d["const"]), [float(c) for c in d["coefs"]], beta)


STATISTICAL: dict[str, Any] = {"ets": ETS, "damped": DampedETS, "theta": Theta, "ar": AR}
Statistical = ETS | DampedETS | Theta | AR


def from_dict(d: dict[str, Any]) -> Statistical:
    return STATISTICAL[d["kind"]].from_dict(d)  # type: ignore[attr-defined]

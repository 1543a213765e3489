"""Time-series forecasting: ``lookback`` steps in, ``horizon`` steps out, judged against the statistical baselines.

Data: any CSV with a time column and one or more value columns (``data.path``, ``data.time_column``,
``data.value_columns``), or the built-in synthetic series (``data.path = []``, shaped by ``data.synthetic_*``). The
series is split chronologically into train / valid / test; a window belongs to the split that holds all of its
targets, and its inputs may reach back into the preceding history (as they would when forecasting for real). The
transform, the scaler, the exponential smoothing and the statistical baselines are fitted on the training split
only. Every metric is computed in the original units over rolling origins: every step (``data.stride``) of the split
at which a whole horizon still fits.

The default model (``model.arch = "hybrid"``) follows ES-RNN (Smyl 2018, the winner of M4): exponential smoothing
(Holt-Winters, its structure chosen by AICc, fitted on the training split) gives each series' level, trend and
season; an LSTM reads the window's remainder - the values less their season, relative to the last level - and
forecasts the correction to the smoothing's forecast. Its output layer starts at zero, so an untrained model *is*
the exponential smoothing, and early stopping on validation keeps the correction only as far as it helps. (Smyl
learned the smoothing coefficients jointly with the network, per series; here statsmodels estimates them first.)

Beside the model every evaluation reports the statistical baselines fitted on the same history (naive, seasonal
naive, drift, mean; ETS, Theta and AR(p) by statsmodels: ``rnnkit.models.statistical``) and the ensemble. The
ensemble is chosen by rolling-origin backtesting: every candidate forecasts from every origin of the validation
split (several origins, at least five on a short series), and the two of the model, ETS, damped ETS, Theta and AR
with the lowest RMSE there are combined, weighted by their inverse mean squared error
(``rnnkit.models.combination``: the M4 lesson that a few good methods combined beat any one chosen). The naive,
seasonal naive and drift forecasts are reported beside them but not pooled: the fitted models nest them (ETS with
alpha 1 is the naive, seasonal ETS the seasonal naive, Theta a drift line) and take that form only where the
training split says so, where a short backtest lets a naive forecast in by the luck of a few origins. The model
is in the pool only where it earned it; at forecast time the pool is chosen again over the history's last
origins. ``rnnkit forecast`` gives the ensemble by default (``model.forecaster = "auto"``), says what is in it,
and says when the model lost to a baseline; every candidate can be asked for.

Covariates: ``data.past_covariates`` (known up to each origin) and ``data.future_covariates`` (known ahead; a
forecast needs them for its steps: rows after the series with the value empty) are read by the model beside the
series, the known-future ones over the horizon too, and by AR as regressors (ARX). Many series in one file
(``data.series_column``) train one global model that reads each series alone; series of different spans are
aligned at their ends (the splits are every series' last points) and NaN before they start: no window reaches
there, every figure is over the known values.

Keys left unset (``rnnkit train forecast --set data.path=FILE``) are chosen from the series (``rnnkit.tasks.auto``):
the season from the time index and the autocorrelation, the transform, the lookback, the splits of a short series,
the model's size, the optimiser, the learning rate and the budget with early stopping.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import MAX_COUNT, MAX_SEED, ConfigError, RunConfig, key
from rnnkit.data import timeseries
from rnnkit.data.text import find_data_file
from rnnkit.data.timeseries import (
    Scaler,
    Series,
    apply_transform,
    infer_season,
    invert_transform,
    read_series_csv,
    split_bounds,
    starts,
    synthetic_series,
    time_frequency,
    window_origins,
)
from rnnkit.errors import UserError
from rnnkit.metrics.forecasting import (
    baseline_forecasts,
    coverage,
    finite_or_none,
    interval_pinball,
    mase_scale,
    point_metrics,
    seasonal_naive_forecast,
    z_value,
)
from rnnkit.models import forecaster
from rnnkit.models.combination import POOL, combine, pool_weights
from rnnkit.models.forecaster import Forecaster, forecast_loss, quantile_loss
from rnnkit.models.statistical import AR, ETS, DampedETS, Statistical, Theta, from_dict
from rnnkit.seeds import derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.auto import auto_key
from rnnkit.tasks.base import MEMORY_DIR, Task

SYNTHETIC = {"sine": "t sin(t) / 3 + 2 sin(5t) (+ noise) at t = 0, step, 2 step, ... (Geron's textbook series)"}
TRANSFORMS = {
    "auto": "log when every training value is positive and they span more than a factor of 2, else none",
    "none": "the values as they are",
    "log": "log values: multiplicative growth and seasonality become additive (values must be > 0)",
}
WINDOW_NORMS = {
    "none": "as scaled",
    "last": "minus the window's last value (removes level and trend)",
    "standard": "minus the window's mean, over its standard deviation (reversible instance "
    "normalisation, for series whose level or amplitude drifts beyond the training range)",
}
STRATEGIES = {"direct": "all horizon steps at once", "recursive": "a one-step model fed its own forecasts"}
ARCHS = {
    "auto": "hybrid",
    "hybrid": "exponential smoothing + an LSTM on the normalised remainder, starting at the smoothing (ES-RNN)",
    "rnn": "encoder + multi-output head",
    "seq2seq": "encoder-decoder (direct strategy only)",
}
FORECASTERS = {
    "auto": "the ensemble (what the validation backtest chose)",
    "model": "the trained model",
    "ensemble": f"the {POOL} of the model, ETS, damped, Theta and AR with the lowest backtest RMSE, weighted by "
    "inverse MSE",
    "ets": "exponential smoothing (statsmodels, structure by AICc, damped trend among them), fitted on the "
    "given history",
    "damped": "exponential smoothing with a damped trend (statsmodels, the season by AICc), fitted on the given "
    "history",
    "theta": "the Theta method (statsmodels' ThetaModel, deseasonalised where its test finds a season), fitted "
    "on the given history",
    "ar": "AR(p) (statsmodels, p by AIC), fitted on the given history",
    "seasonal_naive": "the last season repeated",
    "naive": "the last value repeated",
    "drift": "the last value plus the average step of the history (random walk with drift)",
}
STATISTICAL = ("ets", "damped", "theta", "ar")  # fitted baselines
CANDIDATES = ("model", "naive", "seasonal_naive", "drift", "ets", "damped", "theta", "ar")  # ranked by the backtest
POOLED = ("model", "ets", "damped", "theta", "ar")  # what the ensemble may pool: the network and the fitted models
MIN_ORIGINS = 5  # validation origins a short series' split is widened to hold, when it can spare them
DISTRIBUTIONS = {
    "point": "point forecasts (MSE); intervals from the validation residuals",
    "gaussian": "mean + log-variance (Gaussian NLL)",
    "quantile": "mean + the interval's two quantiles (MSE + pinball loss; direct strategy, rnn or hybrid)",
}
assert set(SYNTHETIC) == set(timeseries.SYNTHETIC) and set(TRANSFORMS) - {"auto"} == set(timeseries.TRANSFORMS)
assert set(STRATEGIES) == set(forecaster.STRATEGIES) and set(ARCHS) - {"auto", "hybrid"} == set(
    forecaster.ARCHITECTURES
)
NEW_DATA = "new data"  # the split name of a new series scored by evaluate_data
MIN_WINDOW_SD = 1e-2  # in scaled units: a flat window is not blown up by "standard"


@dataclass
class ForecastData:
    path: list[str] = fields.path(
        [],
        "the CSV (relative to --data-dir, or absolute); empty (data.path = []) = the "
        "synthetic series (data.synthetic_*)",
        one=True,
        optional=True,
    )
    time_column: str = key("", 'time column name; "" = the first column; "none" = no time column (rows numbered)')
    value_columns: str = key("", 'value column(s) to forecast, comma-separated; "" = every column but the time column')
    past_covariates: str = key(
        "",
        "covariate columns known only up to each forecast origin (darts' past covariates, neuralforecast's "
        "hist_exog), comma-separated: the model reads them beside the series",
    )
    future_covariates: str = key(
        "",
        "covariate columns known ahead for the whole horizon (calendars, planned prices: darts' future covariates, "
        "neuralforecast's futr_exog), comma-separated: the model reads them beside the series and over the "
        "horizon, AR regresses on them (ARX); a forecast needs them for its steps (rows after the series with the "
        "value empty)",
    )
    series_column: str = key(
        "",
        "the column naming each row's series, for many series in one file (id, time, value rows; series may "
        "start and end at different times, each complete from its first time to its last, and are split by "
        'their last points, as darts and neuralforecast do); "" = none: each value column is a series',
    )
    sort: bool = key(
        False,
        "rows out of time order are an error naming the line; true sorts them by time "
        "(repeated or impossible times are errors either way)",
    )
    synthetic: str = key("sine", "the synthetic series (when data.path is empty)", choices=SYNTHETIC)
    synthetic_length: int = key(1000, "synthetic series: number of points", ge=2, le=10_000_000)
    synthetic_step: float = key(0.1, "synthetic series: spacing of t", gt=0, le=1e6)
    synthetic_noise: float = key(0.0, "synthetic series: standard deviation of added Gaussian noise", ge=0, le=1e6)
    synthetic_seed: int = key(0, "synthetic series: seed of the noise", ge=0, le=MAX_SEED)
    lookback: int = auto_key(
        0,
        "input steps per window (auto: twice the horizon, at least a season and 12, as the training split allows)",
        ge=1,
        le=1_000_000,
    )
    horizon: int = key(12, "steps forecast from each origin", ge=1, le=1_000_000)
    season: int = auto_key(
        0,
        "seasonal period in steps (12 for monthly data with a yearly cycle); 1 = none; auto: the periods the time "
        "index suggests (monthly 12, quarterly 4, weekly 52, daily 7 and 365, hourly 24 and 168) kept where the "
        "autocorrelation of the training split peaks there",
        ge=1,
        le=1_000_000,
    )
    transform: str = auto_key(
        "auto", "value transform before scaling (fitted on the training split)", choices=TRANSFORMS
    )
    window_norm: str = key("none", "each window as the model sees it", choices=WINDOW_NORMS)
    valid_fraction: float = fields.fraction(
        0.15, "chronological share for validation (train, then valid, then test: the most recent points)"
    )
    test_fraction: float = fields.fraction(0.15, "chronological share for testing (the most recent points)")
    stride: int = key(
        1, "rolling-origin backtest: an origin every `stride` steps on valid and test", ge=1, le=MAX_COUNT
    )
    epoch_passes: int = key(
        1, "shuffled passes over the training windows per epoch (short series: fewer validations)", ge=1, le=100_000
    )

    RENAMED: ClassVar[dict[str, str]] = {
        "target": "data.value_columns",
        "time_col": "data.time_column",
        "length": "data.synthetic_length",
        "step": "data.synthetic_step",
        "noise": "data.synthetic_noise",
        "seed": "data.synthetic_seed",
    }


@dataclass
class ForecastModel(fields.RecurrentKeys):
    hidden: int | list[int] = fields.hidden(64)
    layers: int = fields.layers(1)
    dropout: float = fields.dropout()
    forget_bias: float = fields.forget_bias(1.0)
    strategy: str = key("direct", "how the horizon is forecast", choices=STRATEGIES)
    arch: str = auto_key("auto", "model family (hybrid and seq2seq: direct strategy only)", choices=ARCHS)
    distribution: str = key("point", "what the model outputs", choices=DISTRIBUTIONS)
    interval: float = key(0.9, "prediction-interval coverage (point models: from validation residuals)", gt=0, lt=1)
    samples: int = key(100, "recursive + gaussian: sample paths per forecast for the interval", ge=10, le=100_000)
    channels: str = auto_key(
        "auto",
        "several series: one model over all of them",
        choices={
            "auto": "shared with data.series_column, else joint",
            "joint": "reads and forecasts the columns together (a multivariate model)",
            "shared": "reads each series alone, the same weights for all (a global model, as neuralforecast's)",
        },
    )
    forecaster: str = key("auto", "what `rnnkit forecast` gives (--forecaster overrides it)", choices=FORECASTERS)

    RENAMED: ClassVar[dict[str, str]] = {"architecture": "model.arch"}


@register
class ForecastTask(Task[ForecastData, ForecastModel]):
    name = "forecast"
    metric = "rmse"
    higher_is_better = False
    count_unit = "windows"
    services = ("forecast",)
    default_eval_batch_size = 1024

    @classmethod
    def check_config(cls, config: RunConfig[ForecastData, ForecastModel]) -> None:
        fields.check_recurrent(config.model)
        if config.model.arch in ("seq2seq", "hybrid") and config.model.strategy != "direct":
            raise ConfigError("model.arch", f"= {config.model.arch!r} needs model.strategy = 'direct'")
        if config.model.channels == "shared" and config.model.strategy != "direct":
            raise ConfigError("model.channels", "= 'shared' needs model.strategy = 'direct'")
        if config.data.past_covariates or config.data.future_covariates:
            which = "data.future_covariates" if config.data.future_covariates else "data.past_covariates"
            m = config.model
            if m.strategy != "direct" or m.arch == "seq2seq" or m.channels == "shared" or config.data.series_column:
                raise ConfigError(
                    which, "covariates need model.strategy = 'direct', model.arch hybrid or rnn, one series per file"
                )
        if config.model.distribution == "quantile" and (
            config.model.strategy != "direct" or config.model.arch == "seq2seq"
        ):
            raise ConfigError("model.distribution", "= 'quantile' needs model.strategy = 'direct' and no seq2seq")
        d = config.data
        if not d.path and d.synthetic_length <= d.horizon:
            raise ConfigError(
                "data.horizon",
                f"= {d.horizon} is longer than the synthetic series (data.synthetic_length = {d.synthetic_length})",
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.series: Series | None = None
        self.columns: list[str] | None = None
        self.scaler: Scaler | None = None
        self.z: np.ndarray | None = None  # the whole series, transformed and scaled
        self.bounds: dict[str, tuple[int, int]] = {}
        self.origins: dict[str, np.ndarray] = {}
        self.scale: np.ndarray | None = None  # MASE denominators (in-sample seasonal-naive MAE on train)
        self.residual_sd: np.ndarray | None = None  # (horizon, k) residual RMS on valid in the model's frame
        self.saved: dict[str, Any] = {}  # artifacts of a loaded run (history for forecasting without data)
        self.es: list[ETS] = []  # hybrid: the exponential smoothing of each column, on transformed values
        self.stats: dict[str, list[Statistical]] = {}  # baselines fitted on the training split: name -> per column
        self.nonnegative = False  # every training value >= 0: forecasts and intervals are kept >= 0
        self.starts: list[int] = []  # each column's first row (a panel's shorter series start later; else 0)
        self.exog_columns: list[str] = []  # covariates: the past-only ones, then the known-future ones
        self.past_count = 0
        self.xscaler: Scaler | None = None  # the covariates' standardisation (training split)
        self.x: np.ndarray | None = None  # the covariates of every point, scaled (n, c)
        self.fx: np.ndarray | None = None  # the known-future covariates of every point, as they are (n, f)
        self.selection: dict[str, Any] = {}  # what validation chose between the model, baselines and ensemble
        self._backtests: dict[tuple[str, str], np.ndarray] = {}  # (split, baseline) -> forecasts (B, horizon, k)
        self._frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # hybrid: split -> (inputs, base)
        self._train_windows: Tensor | None = None

    @property
    def hybrid(self) -> bool:
        return self.mcfg.arch == "hybrid"

    # -- data -------------------------------------------------------------------------------------
    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """A pandas Series or DataFrame (the index is the time), a dict of columns or numbers -> a CSV with a
        time column (row numbers without times) and the value columns, all of which are forecast."""
        from rnnkit.data.memory import series_table, write_series_csv

        values, times, columns = series_table(data)
        write_series_csv(folder / "series.csv", values, times, columns)
        return {"data.path": [f"{MEMORY_DIR}/series.csv"], "data.time_column": "", "data.value_columns": ""}

    def load_series(self) -> Series:
        d = self.dcfg
        if d.path:
            return self._read_csv(find_data_file(d.path[0], self.data_dir, "data.path"))
        return synthetic_series(d.synthetic, d.synthetic_length, d.synthetic_step, d.synthetic_noise, d.synthetic_seed)

    def _read_csv(self, path: Path, keys: Mapping[str, str] | None = None) -> Series:
        """A series CSV read with the run's column settings (time, values, series id, covariates)."""
        d = self.dcfg
        return read_series_csv(
            path,
            d.time_column,
            d.value_columns,
            sort=d.sort,
            series_col=d.series_column,
            past=d.past_covariates,
            future=d.future_covariates,
            keys=keys,
        )

    def _choose(self, s: Series) -> None:
        """The keys left unset, chosen from the series (see rnnkit.tasks.auto): printed once, kept in config.toml."""
        d, c = self.dcfg, self.choices
        n, H = len(s), d.horizon
        freq = time_frequency(s.times)
        c.about = f"{s.source}: {n} {freq + ' ' if freq else ''}points, horizon {H}"
        for name in ("valid", "test"):  # each split holds a horizon (and the test split never trains or selects)
            if n > 0 and round(n * getattr(d, f"{name}_fraction")) < H and H / n < 0.5:
                c.choose(f"data.{name}_fraction", math.ceil(1000 * H / n) / 1000, f"one horizon of {n} points")
        # the backtest that chooses the ensemble needs several origins, not one window: a short series' validation
        # split is widened to MIN_ORIGINS origins where the training split keeps two horizons and 8 points
        want = H + MIN_ORIGINS - 1
        n_test = max(1, int(round(n * d.test_fraction)))
        if c.free("data.valid_fraction") and round(n * d.valid_fraction) < want and n - n_test - want >= max(2 * H, 8):
            c.choose("data.valid_fraction", math.ceil(1000 * want / n) / 1000, f"{MIN_ORIGINS} backtest origins")
        a = split_bounds(n, d.valid_fraction, d.test_fraction)["train"][1]
        train = s.values[: max(a, 2)]
        times = s.times[: max(a, 2)]
        if np.isnan(train).any():  # series of different spans: the season from the longest (its own times)
            j = int(np.argmax(np.isfinite(train).sum(0)))
            first = int(np.argmax(np.isfinite(train[:, j])))
            times = (s.column_times or [])[j][: max(a, 2) - first] if s.column_times else times[first:]
            season_of = train[first:, j : j + 1]
        else:
            season_of = train
        if c.free("data.season"):
            m, why = infer_season(season_of, times)
            c.choose("data.season", m, why)
        if c.free("data.transform"):
            lo, hi = float(np.nanmin(train)), float(np.nanmax(train))
            log = lo > 0 and hi / lo > 2
            c.choose(
                "data.transform",
                "log" if log else "none",
                f"values in [{lo:.4g}, {hi:.4g}]: " + ("relative changes" if log else "kept as they are"),
            )
        c.choose("model.arch", "hybrid", "exponential smoothing + LSTM on the remainder, for a series of its own")
        if c.free("model.channels"):
            many = f"{len(s.columns)} series in {d.series_column!r}"
            shared = bool(d.series_column)
            c.choose("model.channels", "shared" if shared else "joint", many if shared else "the value columns")
        m = d.season
        if c.free("data.lookback"):
            want = max(2 * H, m if 1 < m <= 60 else 0, 12)
            room = max(1, a - H - max(4, a // 10))  # keep a few training windows
            c.choose("data.lookback", max(1, min(want, 60, room)), f"2 x horizon, >= season and 12, <= {room} fits")
        L = d.lookback
        windows = max(1, a - L - H + 1)
        hidden = 16 if windows < 200 else 32 if windows < 2000 else 64
        c.choose("model.hidden", hidden, f"{windows} training windows")
        c.choose("optim.name", "adamw", "Adam-family for a small regression model")
        lr = 1e-3 if windows < 500 else 3e-3
        c.choose("optim.lr", lr, f"AdamW on standardised values, {windows} training windows")
        c.choose("optim.weight_decay", 1e-4, "a light L2 pull towards the smoothing's forecast")
        c.choose("optim.clip", 1.0, "gradient-norm clip")
        bs = int(min(64, max(8, 2 ** round(math.log2(max(windows, 1) / 16))))) if windows > 16 else 8
        bs = c.choose("train.batch_size", bs, f"{windows} training windows")
        per_pass = -(-windows // bs)
        target = 10 if windows < 200 else 25  # steps between validations: a small series is validated often
        passes = c.choose("data.epoch_passes", max(1, math.ceil(target / per_pass)), f"an epoch of ~{target} steps")
        steps_per_epoch = passes * per_pass
        epochs = max(10, min(60, 1500 // steps_per_epoch))
        c.choose("train.max_epochs", epochs, f"~{epochs * steps_per_epoch} steps at most")
        c.choose("train.early_stop", 5, "validations without improvement (best.pt is kept)")
        c.choose("train.log_every", max(1, min(50, steps_per_epoch)), "one record per epoch or more")

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        d = self.dcfg
        s = self.load_series()
        n, H = len(s), d.horizon
        if n <= H:
            raise UserError(
                f"{s.source}: data.horizon={H} is longer than the series ({n} points); forecast fewer steps "
                f'(overrides={{"data.horizon": N}}) or give a longer series'
            )
        self._choose(s)
        if "auto" in (d.transform, self.mcfg.arch, self.mcfg.channels) or 0 in (d.season, d.lookback):
            raise UserError(  # only a configuration written by hand can leave them so: say which
                f"{s.source}: data.season, data.lookback, data.transform, model.arch and model.channels must be "
                f"set in a run's config.toml (it holds the values chosen at its start)"
            )
        L = d.lookback
        bounds = split_bounds(n, d.valid_fraction, d.test_fraction)
        a = bounds["train"][1]
        need = L + H  # train must hold one whole window; valid and test one horizon each
        for name, (lo, hi) in bounds.items():
            short = (hi - lo < need) if name == "train" else (hi - lo < H)
            if short:
                raise UserError(
                    f"{s.source}: series too short: {n} points give a {name} split of {hi - lo} "
                    f"(need >= {need if name == 'train' else H} for data.lookback={L}, "
                    f"data.horizon={H}); use a longer series or lower data.lookback/data.horizon"
                )
        if d.season > a:
            raise UserError(f"data.season={d.season} is longer than the training split ({a} points of {s.source})")
        if self.columns is not None and len(self.columns) != len(s.columns):
            raise UserError(
                f"{s.source}: {len(s.columns)} value column(s) {s.columns}, but the model forecasts "
                f"{len(self.columns)} ({', '.join(self.columns)}); choose them with data.value_columns"
            )
        self.starts = starts(s.values)
        for j, first in enumerate(self.starts):  # a panel's shorter series: fitted on its own training points
            if a - first < max(4, H):
                raise UserError(
                    f"{s.source}: series {s.columns[j]!r} is too short: {n - first} points leave {max(a - first, 0)} "
                    f"before the validation and test splits (the last {n - a}); it needs >= {max(4, H)}"
                )
        z = apply_transform(s.values, d.transform, s)
        if self.scaler is None:
            self.scaler = Scaler.fit(z[:a])  # the training split only
        self.series, self.columns, self.bounds = s, self.columns or list(s.columns), bounds
        known = s.values[:a][np.isfinite(s.values[:a])]
        self.nonnegative = bool(np.all(known >= 0))
        self.z = self.scaler.transform(z)
        self.scale = mase_scale(s.values[:a], d.season)
        if s.exog is not None:
            X = s.exog[:n]
            self.exog_columns, self.past_count = list(s.exog_columns), s.past_count
            if self.xscaler is None:
                self.xscaler = Scaler.fit(X[:a])
            self.x, self.fx = self.xscaler.transform(X), X[:, s.past_count :]
            if self.fx.shape[1] == 0:
                self.fx = None
        self.origins = {
            "train": window_origins(bounds["train"], L, H),
            "valid": window_origins(bounds["valid"], L, H, d.stride),
            "test": window_origins(bounds["test"], L, H, d.stride),
        }
        for name in ("valid", "test"):
            if self.origins[name].size == 0:  # only when lookback exceeds all the history before the split
                raise UserError(f"{s.source}: no {name} window: data.lookback={L} reaches before the series start")
        k = s.values.shape[1]
        if not self.stats:  # a loaded run has them from its artifacts
            fx = self.fx[:a] if self.fx is not None else None
            seg = [s.values[self.starts[j] : a, j] for j in range(k)]
            self.stats = {
                "ets": [ETS.fit(seg[j], d.season) for j in range(k)],
                "damped": [DampedETS.fit(seg[j], d.season) for j in range(k)],
                "theta": [Theta.fit(seg[j], d.season) for j in range(k)],
                "ar": [AR.fit(seg[j], d.season, exog=fx) for j in range(k)],
            }
        self._backtests = {}
        if self.hybrid:
            if not self.es:
                # additive in the model's space, a trend only damped (what the smoothing extrapolates, the LSTM
                # cannot take back far ahead)
                self.es = [
                    ETS.fit(
                        self.z[self.starts[j] : a, j], d.season, multiplicative=False, damped_only=True, brute=False
                    )
                    for j in range(k)
                ]
            self._frames = {
                name: self._hybrid_frames(self.z, self.origins[name]) for name in ("train", "valid", "test")
            }
            x, base = self._frames["train"]
            windows = np.concatenate([x, self.z[self.origins["train"][:, None] + np.arange(H)[None, :]] - base], 1)
        else:
            windows = self._windows(self.origins["train"])
        if self.x is not None:  # the covariates ride along as more channels
            windows = np.concatenate([windows, self._exog_windows(self.x, self.origins["train"])], 2)
        self._train_windows = torch.as_tensor(windows, dtype=torch.float32, device=self.device)

    def _windows(self, origins: np.ndarray) -> np.ndarray:
        """Scaled windows (B, lookback + horizon, k): inputs then targets."""
        assert self.z is not None
        return self.z[origins[:, None] + np.arange(-self.dcfg.lookback, self.dcfg.horizon)[None, :]]

    def _mask(self, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Targets y (B, horizon, k) less those of windows that reach before their series' start (NaN: a
        panel's shorter series have no such window, as in training)."""
        if not self.starts or not any(self.starts):
            return y
        bad = origins[:, None] - self.dcfg.lookback < np.asarray(self.starts)[None, :]  # (B, k)
        return np.where(bad[:, None, :], np.nan, y)

    def _exog_windows(self, x: np.ndarray | None, origins: np.ndarray) -> np.ndarray | None:
        """Scaled covariates (B, lookback + horizon, c) of the windows from ``origins`` (None without)."""
        if x is None:
            return None
        return x[origins[:, None] + np.arange(-self.dcfg.lookback, self.dcfg.horizon)[None, :]]

    def _call(self, model: nn.Module, inputs: Tensor, xw: Tensor | np.ndarray | None) -> tuple[Tensor, Any]:
        """The model on inputs (B, lookback, k) in its frame, with the covariate windows xw (B, lookback +
        horizon, c): every covariate beside the inputs, the known-future ones over the horizon too."""
        L, fut = self.dcfg.lookback, None
        if xw is not None:
            xw = torch.as_tensor(xw, dtype=inputs.dtype, device=inputs.device)
            inputs = torch.cat([inputs, xw[:, :L]], -1)
            if xw.size(2) > self.past_count:
                fut = xw[:, L:, self.past_count :]
        return model(inputs.transpose(0, 1), fut)

    def _hybrid_frames(self, z: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hybrid: (inputs (B, lookback, k): the window's scaled values less their season and the last level;
        base (B, horizon, k): the smoothing's forecast from each origin), from scaled values z (n, k) that start
        where the training series starts. The model forecasts z - base."""
        L, H = self.dcfg.lookback, self.dcfg.horizon
        xs, bases = [], []
        for j, es in enumerate(self.es):
            first = int(np.argmax(np.isfinite(z[:, j])))  # a panel's shorter series starts later: NaN windows
            ok = origins - L >= first
            x, base = np.full((len(origins), L), np.nan), np.full((len(origins), H), np.nan)
            if ok.any():
                o = origins[ok] - first
                back = o[:, None] + np.arange(-L, 0)[None, :]
                st = es.states(z[first : first + int(o.max()), j])
                x[ok] = z[first:, j][back] - st["season"][back] - st["level"][o - 1][:, None]
                base[ok] = es.forecasts_from(st, o, H)
            xs.append(x)
            bases.append(base)
        return np.stack(xs, -1), np.stack(bases, -1)

    def artifacts(self) -> dict[str, Any]:
        assert self.series is not None and self.scaler is not None and self.scale is not None
        d, s = self.dcfg, self.series
        # the hybrid's smoothing filters the history from the series' start: it keeps all of it
        keep = len(s) if self.hybrid else min(len(s), max(d.lookback, d.season + d.horizon, 4 * d.horizon, 240))
        return {
            "columns": list(self.columns or s.columns),
            "time_col": s.time_col,
            "source": s.source,
            "transform": d.transform,
            "scaler": self.scaler.to_dict(),
            "lookback": d.lookback,
            "horizon": d.horizon,
            "season": d.season,
            "window_norm": d.window_norm,
            "length": len(s),
            "train_points": self.bounds["train"][1],
            "history": s.values[-keep:].tolist(),
            "history_times": list(s.times[-keep:]),
            "mase_scale": [float(v) for v in self.scale],
            "residual_sd": self.residual_sd.tolist() if self.residual_sd is not None else [],
            "es": [e.to_dict() for e in self.es],
            "stats": {name: [m.to_dict() for m in models] for name, models in self.stats.items()},
            "nonnegative": self.nonnegative,
            "selection": self.selection,
            "exog_columns": list(self.exog_columns),
            "past_count": self.past_count,
            "xscaler": self.xscaler.to_dict() if self.xscaler is not None else None,
            "history_exog": s.exog[: len(s)][-keep:].tolist() if s.exog is not None else None,
            "history_column_times": [t[-keep:] for t in s.column_times] if s.column_times else None,
        }

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        self.saved = dict(artifacts)
        self.columns = list(artifacts["columns"])
        self.scaler = Scaler.from_dict(artifacts["scaler"])
        sd = artifacts.get("residual_sd") or []
        self.residual_sd = np.asarray(sd, dtype=np.float64) if len(sd) else None
        self.scale = np.asarray(artifacts["mase_scale"], dtype=np.float64)
        self.es = [ETS.from_dict(e) for e in artifacts.get("es") or []]
        self.stats = {name: [from_dict(m) for m in models] for name, models in (artifacts.get("stats") or {}).items()}
        self.nonnegative = bool(artifacts.get("nonnegative", False))
        self.selection = dict(artifacts.get("selection") or {})
        self.exog_columns = list(artifacts.get("exog_columns") or [])
        self.past_count = int(artifacts.get("past_count") or 0)
        xs = artifacts.get("xscaler")
        self.xscaler = Scaler.from_dict(xs) if xs else None

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        assert self.scaler is not None
        mine, theirs = self.scaler.to_dict(), saved["scaler"]
        same_scale = np.allclose(mine["mean"], theirs["mean"]) and np.allclose(mine["std"], theirs["std"])
        if list(saved["columns"]) != list(self.columns or []) or not same_scale:
            raise UserError(
                "the training data gives different columns or scaling than the checkpoint's; resume "
                "with the series the run was trained on"
            )

    def placeholder_artifacts(self) -> dict[str, Any]:
        return {"columns": ["y"], "scaler": Scaler.fit(np.zeros((2, 1))).to_dict(), "mase_scale": [1.0]}

    # -- model and training -----------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        m = self.mcfg
        assert self.columns is not None
        model = Forecaster(
            len(self.columns),
            self.dcfg.horizon,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            dropout=m.dropout,
            strategy=m.strategy,
            arch="rnn" if m.arch in ("hybrid", "auto") else m.arch,
            gaussian=m.distribution == "gaussian",
            forget_bias=m.forget_bias,
            quantile=m.distribution == "quantile",
            shared=m.channels == "shared",
            exog=len(self.exog_columns),
            future=len(self.exog_columns) - self.past_count,
        )
        if m.arch == "hybrid":  # an untrained hybrid forecasts exactly what the exponential smoothing does
            with torch.no_grad():
                model.head.weight.zero_()
                model.head.bias.zero_()
        return model

    def num_train_batches(self, epoch: int) -> int:
        n = int(self.origins["train"].size)
        return self.dcfg.epoch_passes * -(-n // self.config.train.batch_size)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        assert self._train_windows is not None
        n, bs = self._train_windows.size(0), self.config.train.batch_size
        per_pass = -(-n // bs)
        g = torch.Generator().manual_seed(derive_seed(self.config.train.seed, epoch))
        orders = [torch.randperm(n, generator=g) for _ in range(self.dcfg.epoch_passes)]
        for b in range(start, self.num_train_batches(epoch)):
            idx = orders[b // per_pass][(b % per_pass) * bs : (b % per_pass + 1) * bs]
            yield self._train_windows[idx.to(self._train_windows.device)]

    def _loss(self, model: nn.Module, w: Tensor, reduction: str = "mean") -> Tensor:
        """The training criterion on windows w (B, lookback + horizon, k) (scaled, or the hybrid's frames), in
        the model's frame."""
        L = self.dcfg.lookback
        k = len(self.columns or [])
        xw = w[..., k:] if w.size(2) > k else None  # the covariates (they are not forecast)
        w = w[..., :k]
        known = torch.isfinite(w).all(1)  # (B, k): a panel's shorter series have no whole window here
        masked = not bool(known.all())
        if masked:
            w = torch.nan_to_num(w)
        loc, sc = self._frame(w[:, :L])
        w = (w - loc) / sc
        mean, logvar = self._call(model, w[:, :L], xw)
        if self.mcfg.strategy == "recursive":  # one step ahead at every position (teacher forcing)
            return forecast_loss(mean, logvar, w[:, 1 : L + 1].transpose(0, 1), reduction)
        if masked:  # the windows' known series only
            mean, w = mean[known[:, None, :].expand_as(mean)], w[:, L:][known[:, None, :].expand_as(mean)]
            logvar = logvar[known[:, None, :].expand(*logvar.shape[:3])] if logvar is not None else None
            if self.mcfg.distribution == "quantile":
                assert logvar is not None
                return quantile_loss(mean, logvar, w, self.mcfg.interval, reduction)
            return forecast_loss(mean, logvar, w, reduction)
        if self.mcfg.distribution == "quantile":
            assert logvar is not None
            return quantile_loss(mean, logvar, w[:, L:], self.mcfg.interval, reduction)
        return forecast_loss(mean, logvar, w[:, L:], reduction)

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        return self._loss(model, batch), batch.size(0)

    # -- forecasting ------------------------------------------------------------------------------
    def _frame(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-window location and scale (B, 1, k) of scaled inputs x (B, lookback, k): model frame = (v - loc) / sc."""
        norm = self.dcfg.window_norm
        if norm == "last" and not self.hybrid:
            return x[:, -1:], torch.ones_like(x[:, -1:])
        if norm == "standard" and not self.hybrid:
            return x.mean(1, keepdim=True), x.std(1, keepdim=True, unbiased=False).clamp(min=MIN_WINDOW_SD)
        return torch.zeros_like(x[:, -1:]), torch.ones_like(x[:, -1:])

    @torch.no_grad()
    def _forecast_scaled(
        self,
        model: nn.Module,
        x: np.ndarray,
        steps: int,
        level: float,
        seed: int = 0,
        xw: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x: scaled history windows (B, lookback, k) -> mean, lower, upper (B, steps, k) in scaled units, and the
        frame scale of each forecast step (B, steps, k) (1 unless data.window_norm = standard). ``xw``: the
        windows' scaled covariates (B, lookback + horizon, c) (then ``steps`` <= horizon)."""
        L, H, k = self.dcfg.lookback, self.dcfg.horizon, x.shape[2]
        m = self.mcfg
        model.eval()
        xt = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        z = z_value(level)
        if m.strategy == "recursive":
            loc, sc = self._frame(xt)
            frame_in = ((xt - loc) / sc).transpose(0, 1)
            mean_t, _ = model.unroll(frame_in, steps)
            mean = (mean_t * sc + loc).cpu().double().numpy()
            scale = sc.expand(-1, steps, -1).cpu().double().numpy()
            if m.distribution == "gaussian":
                g = torch.Generator().manual_seed(seed)
                paths, _ = model.unroll(frame_in, steps, repeats=m.samples, generator=g, sample=True)
                paths = paths.view(x.shape[0], m.samples, steps, k) * sc.unsqueeze(1) + loc.unsqueeze(1)
                lo, hi = np.quantile(paths.cpu().double().numpy(), [0.5 - level / 2, 0.5 + level / 2], axis=1)
                return mean, lo, hi, scale
            sd = self._residual_sd_for(steps, k) * scale
            return mean, mean - z * sd, mean + z * sd, scale
        means, sds, scales, bounds = [], [], [], []
        done = 0
        while done < steps:  # beyond the trained horizon: feed each block of forecasts back as history
            loc, sc = self._frame(xt)
            mu, extra = self._call(model, (xt - loc) / sc, xw)
            if m.distribution == "quantile":
                bounds.append(extra * sc.unsqueeze(-1) + loc.unsqueeze(-1))  # type: ignore[operator]
            sds.append(torch.exp(0.5 * extra) * sc if m.distribution == "gaussian" else None)  # type: ignore[arg-type]
            mu = mu * sc + loc
            means.append(mu)
            scales.append(sc.expand(-1, H, -1))
            xt = torch.cat([xt, mu], 1)[:, -L:]
            done += H
        mean = torch.cat(means, 1)[:, :steps].cpu().double().numpy()
        scale = torch.cat(scales, 1)[:, :steps].cpu().double().numpy()
        if m.distribution == "quantile":  # the trained interval (model.interval), whatever the level asked
            b = torch.cat(bounds, 1)[:, :steps].cpu().double().numpy()
            return mean, b[..., 0], b[..., 1], scale
        if m.distribution == "gaussian":
            sd = torch.cat(sds, 1)[:, :steps].cpu().double().numpy()  # type: ignore[arg-type]
        else:
            sd = self._residual_sd_for(steps, k) * scale
        return mean, mean - z * sd, mean + z * sd, scale

    @torch.no_grad()
    def _hybrid_forecast(
        self, model: nn.Module, z: np.ndarray, steps: int, level: float, x: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """Hybrid, from scaled history z (n, k) starting where the training series starts: mean, lower, upper
        (steps, k) in scaled units. Beyond the horizon each block of forecasts is appended to the history.
        ``x``: the scaled covariates of the history's rows and the horizon's (n + horizon, c) (then ``steps`` <=
        horizon)."""
        model.eval()
        out, sds, bounds = [], [], []
        hist = z
        dist = self.mcfg.distribution
        while sum(len(b) for b in out) < steps:
            inputs, base = self._hybrid_frames(hist, np.array([len(hist)]))
            xt = torch.as_tensor(inputs, dtype=torch.float32, device=self.device)
            mu, extra = self._call(model, xt, self._exog_windows(x, np.array([len(hist)])))
            block = base[0] + mu[0].cpu().double().numpy()
            if dist == "quantile":
                bounds.append(base[0][..., None] + extra[0].cpu().double().numpy())  # type: ignore[index]
            sds.append(torch.exp(0.5 * extra[0]).cpu().double().numpy() if dist == "gaussian" else None)  # type: ignore[index]
            out.append(block)
            hist = np.concatenate([hist, block], 0)
        mean = np.concatenate(out, 0)[:steps]
        if dist == "quantile":  # the trained interval (model.interval), whatever the level asked
            b = np.concatenate(bounds, 0)[:steps]
            return mean, b[..., 0], b[..., 1]
        gauss = dist == "gaussian"
        sd = np.concatenate(sds, 0)[:steps] if gauss else self._residual_sd_for(steps, z.shape[1])[0]  # type: ignore[arg-type]
        zq = z_value(level)
        return mean, mean - zq * sd, mean + zq * sd

    def _residual_sd_for(self, steps: int, k: int) -> np.ndarray:
        sd = self.residual_sd if self.residual_sd is not None else np.full((self.dcfg.horizon, k), np.nan)
        if steps > sd.shape[0]:  # past the validated horizon: the last step's spread (an underestimate)
            sd = np.concatenate([sd, np.repeat(sd[-1:], steps - sd.shape[0], 0)], 0)
        return sd[None, :steps]

    def to_original(self, scaled: np.ndarray) -> np.ndarray:
        assert self.scaler is not None
        return invert_transform(self.scaler.inverse(scaled), self.dcfg.transform)

    def _split_forecast(self, model: nn.Module, split: str) -> tuple[np.ndarray, ...]:
        """Scaled mean/lower/upper and scaled targets (B, horizon, k) for every origin of a split, and the frame
        scale of each step."""
        L, H = self.dcfg.lookback, self.dcfg.horizon
        level = self.mcfg.interval
        if self.hybrid:
            assert self.z is not None
            x, base = self._frames[split]
            xt = torch.as_tensor(x, dtype=torch.float32, device=self.device)
            model.eval()
            with torch.no_grad():
                mu, extra = self._call(model, xt, self._exog_windows(self.x, self.origins[split]))
            mean = base + mu.cpu().double().numpy()
            y = self.z[self.origins[split][:, None] + np.arange(H)[None, :]]
            if self.mcfg.distribution == "quantile":
                b = base[..., None] + extra.cpu().double().numpy()  # type: ignore[union-attr]
                return mean, b[..., 0], b[..., 1], y, np.ones_like(mean)
            if extra is not None:
                sd = torch.exp(0.5 * extra).cpu().double().numpy()
            else:
                sd = self._residual_sd_for(H, x.shape[2])
            zq = z_value(level)
            return mean, mean - zq * sd, mean + zq * sd, y, np.ones_like(mean)
        w = self._windows(self.origins[split])
        xw = self._exog_windows(self.x, self.origins[split])
        mean, lo, hi, scale = self._forecast_scaled(model, w[:, :L], H, level, xw=xw)
        return mean, lo, hi, w[:, L:], scale

    def _update_residual_sd(self, model: nn.Module) -> None:
        """Point models: per-step residual RMS on valid (scaled units), for intervals; stored in artifacts."""
        if self.mcfg.distribution == "point":
            self.residual_sd = None
            mean, _, _, y, scale = self._split_forecast(model, "valid")
            y = self._mask(y, self.origins["valid"])
            self.residual_sd = _rms(y / scale, mean / scale, axis=0)  # (horizon, k), model frame

    def _baselines(self, split: str) -> dict[str, np.ndarray]:
        """Every baseline's forecasts (B, horizon, k) from the split's origins: the naive ones, and ETS and AR
        with the parameters fitted on the training split, filtered through the data before each origin."""
        assert self.series is not None
        d = self.dcfg
        origins, values = self.origins[split], self.series.values
        out = baseline_forecasts(values, origins, d.horizon, d.season)
        for name, models in self.stats.items():
            if (split, name) not in self._backtests:
                cols = [
                    _backtest(m, values[:, j], origins, d.horizon, self.starts[j] if self.starts else 0, self.fx)
                    for j, m in enumerate(models)
                ]
                self._backtests[(split, name)] = np.stack(cols, -1)
            out[name] = self._backtests[(split, name)]
        return out

    def _candidates(self, model_mean: np.ndarray, baselines: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What ``model.forecaster`` chooses from: the model, every baseline, and the ensemble (once validation
        has weighted it)."""
        out = {k: self._clip(v) for k, v in {"model": model_mean, **baselines}.items()}
        weights = self.selection.get("weights") or {}
        if weights and all(n in out for n in weights):
            out["ensemble"] = self._clip(combine(out, weights))
        return out

    def candidate_names(self) -> list[str]:
        """The candidates the ensemble pools (the seasonal naive only where there is a season)."""
        return [c for c in CANDIDATES if c != "seasonal_naive" or self.dcfg.season > 1]

    def _clip(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0) if self.nonnegative else x

    def _select(self, model_mean: np.ndarray, baselines: dict[str, np.ndarray], y: np.ndarray) -> dict[str, Any]:
        """The rolling-origin backtest on validation: every candidate's forecasts from every validation origin,
        their RMSE per column, the pool of the best ``POOL`` of ``POOLED`` with inverse-MSE weights
        (``pool_weights``), and, for the report, every forecast's RMSE and per-step residual spread (the ensemble's
        intervals) and the best baseline. ``model.forecaster = "auto"`` forecasts with the ensemble."""
        forecasts = {k: self._clip(v) for k, v in {"model": model_mean, **baselines}.items()}
        names = [c for c in self.candidate_names() if c in forecasts]
        per_column = {c: _rms(y, forecasts[c], axis=(0, 1)) for c in names}
        weights = pool_weights({c: e for c, e in per_column.items() if c in POOLED})
        if weights:
            forecasts["ensemble"] = self._clip(combine(forecasts, weights))
        rmse_of = {k: float(_rms(y, f)) for k, f in forecasts.items()}
        sd = {k: _rms(y, f, axis=0).tolist() for k, f in forecasts.items()}
        bases = {k: v for k, v in rmse_of.items() if k in names and k != "model" and math.isfinite(v)}
        ranked = sorted((k for k in names if math.isfinite(rmse_of[k])), key=rmse_of.__getitem__)
        return {
            "rmse": rmse_of,
            "sd": sd,
            "origins": int(y.shape[0]),
            "ranking": ranked,
            "best_baseline": min(bases, key=bases.__getitem__) if bases else None,
            "weights": weights,
            "members": sorted(weights, key=lambda n: -sum(weights[n])),
            "chosen": "ensemble" if weights else "model",
        }

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        if self.z is None:
            self.prepare()
        model.eval()
        self._update_residual_sd(model)
        return self._report(model, split)

    @torch.no_grad()
    def evaluate_data(self, model: nn.Module, data: Any, folder: Path) -> dict[str, Any]:
        """``evaluate``'s report on a new series - a CSV laid out like the run's data (its time, value, series and
        covariate columns), or what ``write_data`` takes (a pandas Series or DataFrame, a dict of columns,
        numbers): the model's forecasts from every origin of the new series with a whole lookback before it and
        a whole horizon after it (every data.stride steps), scored against what followed, beside the baselines
        (fitted on the run's training split, filtered through the new series) and the ensemble the run's
        validation chose. The run's scaling and transform apply; MASE divides by the new series' own in-sample
        seasonal-naive error (the points before its first origin)."""
        d, H, L = self.dcfg, self.dcfg.horizon, self.dcfg.lookback
        if isinstance(data, os.PathLike):
            # laid out like the run's data: its columns are the run's, not the caller's to choose
            s = self._read_csv(self.data_file(data, folder, "series.csv"), keys={})
        else:
            if self.exog_columns:
                raise UserError(
                    f"data: this run reads the covariate(s) {', '.join(map(repr, self.exog_columns))}; give the new "
                    f"series as a CSV file with those columns (a pathlib.Path), laid out like the training data"
                )
            type(self).write_data(data, folder, self.config)
            s = read_series_csv(folder / "series.csv")
            s.source = "data"  # the user's object, not the scratch file it went through
        if self.columns is not None and len(s.columns) != len(self.columns):
            raise UserError(
                f"{s.source}: {len(s.columns)} value column(s) {s.columns}, but the model forecasts "
                f"{len(self.columns)} ({', '.join(self.columns)})"
            )
        n = len(s)
        origins = window_origins((0, n), L, H, d.stride)
        if origins.size == 0:
            raise UserError(
                f"{s.source}: {n} point{'s' if n != 1 else ''} hold no window to score: the model reads "
                f"data.lookback={L} points and forecasts data.horizon={H}, so the series needs >= {L + H}"
            )
        assert self.scaler is not None
        self.series, self.starts, self._backtests = s, starts(s.values), {}
        self.z = self.scaler.transform(apply_transform(s.values, d.transform, s))
        first = int(origins[0])
        self.scale = mase_scale(s.values[:first], d.season)
        self.x = self.fx = None
        if s.exog is not None and self.xscaler is not None:
            X = s.exog[:n]
            self.x, self.fx = self.xscaler.transform(X), X[:, self.past_count :]
            if self.fx.shape[1] == 0:
                self.fx = None
        self.origins = {NEW_DATA: origins}
        if self.hybrid:
            self._frames = {NEW_DATA: self._hybrid_frames(self.z, origins)}
        model.eval()
        return self._report(model, NEW_DATA)

    def _report(self, model: nn.Module, split: str) -> dict[str, Any]:
        """The metrics of every window of ``split`` (its origins, targets and frames prepared): the model's loss and
        point, interval and per-step errors, every baseline's and the ensemble's, and the forecaster chosen. On
        the validation split the backtest chooses the forecaster again; the test split reads that choice from
        the validation split, new data keeps the one the run's validation made."""
        assert self.series is not None and self.scale is not None and self.z is not None
        d = self.dcfg
        origins = self.origins[split]
        bs = self.eval_batch_size
        if self.hybrid:
            x, base = self._frames[split]
            y_z = self.z[origins[:, None] + np.arange(d.horizon)[None, :]]
            w = torch.as_tensor(np.concatenate([x, y_z - base], 1), dtype=torch.float32, device=self.device)
        else:
            w = torch.as_tensor(self._windows(origins), dtype=torch.float32, device=self.device)
        if self.x is not None:
            xw = torch.as_tensor(self._exog_windows(self.x, origins), dtype=torch.float32, device=self.device)
            w = torch.cat([w, xw], 2)
        total = sum(float(self._loss(model, w[i : i + bs], "sum")) for i in range(0, w.size(0), bs))
        per_window = (d.lookback if self.mcfg.strategy == "recursive" else d.horizon) * w.size(2)
        mean, lo, hi, _, _ = self._split_forecast(model, split)
        mean, lo, hi = (self._clip(self.to_original(v)) for v in (mean, lo, hi))
        y = self._mask(self.series.values[origins[:, None] + np.arange(d.horizon)[None, :]], origins)
        out: dict[str, Any] = {"loss": total / (w.size(0) * per_window)}
        out.update(point_metrics(y, mean, self.scale))
        out["coverage"] = coverage(y, lo, hi)
        out["pinball"] = interval_pinball(y, lo, hi, self.mcfg.interval)
        out["interval"] = self.mcfg.interval
        out["windows"] = int(origins.size)
        out["horizon"] = d.horizon
        out["rmse_by_step"] = [float(v) for v in _rms(y, mean, axis=(0, 2))]
        baselines = self._baselines(split)
        if split == "valid":
            self.selection = self._select(mean, baselines, y)
        elif split != NEW_DATA:  # the choice this model makes (the last validation may have been of another model)
            v_mean = self._clip(self.to_original(self._split_forecast(model, "valid")[0]))
            v_y = self.series.values[self.origins["valid"][:, None] + np.arange(d.horizon)[None, :]]
            v_y = self._mask(v_y, self.origins["valid"])
            self.selection = self._select(v_mean, self._baselines("valid"), v_y)
        candidates = self._candidates(mean, baselines)
        out["baselines"] = {
            name: _clean(point_metrics(y, f, self.scale))
            for name, f in candidates.items()
            if name not in ("model", "ensemble")
        }
        if "ensemble" in candidates:
            out["ensemble"] = _clean(point_metrics(y, candidates["ensemble"], self.scale))
        if self.selection:
            out["forecaster"] = self.selection["chosen"]
            weights = self.selection.get("weights") or {}
            out["pool"] = {n: float(np.mean(w)) for n, w in weights.items()}  # the ensemble's weights (column mean)
        return _clean(out)

    def forecast(
        self,
        model: nn.Module,
        values: np.ndarray,
        steps: int,
        level: float | None = None,
        series: Series | None = None,
        seed: int = 0,
        forecaster: str | None = None,
        candidates: bool = False,
        exog: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Forecast ``steps`` steps after the end of ``values`` (n, k) in original units: mean, lower, upper
        (steps, k) of the ``forecaster`` (default: the run's model.forecaster; "auto": validation's choice), and
        ``forecaster`` (what gave them) and ``note`` (a line for the user, or None). ``candidates``: also every
        other forecast ("model", the baselines refitted on ``values``, "ensemble") in ``candidates``. ``exog``:
        a run with covariates needs them (n + steps, c) in ``exog_columns`` order: every one for the history's
        rows, the known-future ones for the forecast steps too."""
        L = self.dcfg.lookback
        where = series.source if series is not None else "the history"
        exog = self._check_exog(exog, values.shape[0], steps, where)
        if values.shape[0] < L:
            raise UserError(
                f"{where}: series too short: {values.shape[0]} points, the model needs the last data.lookback={L}"
            )
        if self.columns is not None and values.shape[1] != len(self.columns):
            raise UserError(
                f"{where}: {values.shape[1]} value column(s), but the model forecasts "
                f"{len(self.columns)} ({', '.join(self.columns)}); choose them with target=..."
            )
        for j, first in enumerate(starts(values)):
            if values.shape[0] - first < L:
                name = self.columns[j] if self.columns and j < len(self.columns) else str(j)
                raise UserError(
                    f"{where}: series {name!r} too short: {values.shape[0] - first} points, the model needs the last "
                    f"data.lookback={L}"
                )
        assert self.scaler is not None
        level = level or self.mcfg.interval
        want = forecaster or self.mcfg.forecaster
        chosen = self.selection.get("chosen", "model") if want == "auto" else want
        if chosen != "model" and chosen not in FORECASTERS:
            chosen = "model"
        x = self._scaled_exog(exog)
        if self.hybrid:
            z = self.scaler.transform(apply_transform(values, self.dcfg.transform, series))
            mean, lo, hi = (self.to_original(v) for v in self._hybrid_forecast(model, z, steps, level, x))
        else:
            z = self.scaler.transform(apply_transform(values[-L:], self.dcfg.transform, series, values.shape[0] - L))
            xw = self._exog_windows(x, np.array([values.shape[0]]))
            mean, lo, hi, _ = self._forecast_scaled(model, z[None], steps, level, seed, xw)
            mean, lo, hi = self.to_original(mean[0]), self.to_original(lo[0]), self.to_original(hi[0])
        forecasts: dict[str, np.ndarray] = {"model": mean}
        weights = self.selection.get("weights") or {}
        pool_from = "validation"
        if chosen == "ensemble" or candidates:
            recent = self._recent_weights(model, values, series, exog)
            if recent:
                weights, pool_from = recent, "history"
        if chosen == "ensemble" and not weights:  # a run from before the backtest weighed anything
            chosen = "model"
        needed = set(FORECASTERS) - {"auto"} if candidates else {chosen}
        if "ensemble" in needed:
            needed |= set(weights)
        for name in needed - {"model", "ensemble"}:
            forecasts[name] = self._baseline_forecast(name, values, steps, exog)
        forecasts = {k: self._clip(v) for k, v in forecasts.items()}
        if "ensemble" in needed and weights:
            forecasts["ensemble"] = self._clip(combine(forecasts, weights))
        out_mean = forecasts.get(chosen, forecasts["model"])
        if chosen != "model":  # the interval: that forecaster's own spread on validation
            sd = np.asarray(self.selection.get("sd", {}).get(chosen, []), dtype=np.float64)
            if sd.size:
                if steps > sd.shape[0]:
                    sd = np.concatenate([sd, np.repeat(sd[-1:], steps - sd.shape[0], 0)], 0)
                zq = z_value(level)
                lo, hi = out_mean - zq * sd[:steps], out_mean + zq * sd[:steps]
            else:
                lo = hi = np.full_like(out_mean, np.nan)
        result: dict[str, Any] = {
            "pool": {n: float(np.mean(w)) for n, w in weights.items()} if chosen == "ensemble" else {},
            "pool_from": pool_from,
            "mean": out_mean,
            "lower": self._clip(lo),
            "upper": self._clip(hi),
            "forecaster": chosen,
            "note": self.note(chosen),
        }
        if candidates:
            result["candidates"] = forecasts
        return result

    def _recent_weights(
        self, model: nn.Module, values: np.ndarray, series: Series | None, exog: np.ndarray | None = None
    ) -> dict[str, list[float]] | None:
        """The ensemble's pool chosen again on the given history, by the same backtest as on validation, over every
        origin after the training split that the history holds (at least ``MIN_ORIGINS``): the validation
        origins and every later one, the most recent stretch being the most like the forecast's future (and a
        run forecasting new data choosing on that data). The model forecasts with its trained weights (it never
        trained on those points), the statistical candidates are fitted on the history before the first origin;
        the pool is the ``POOL`` of ``POOLED`` with the lowest RMSE, weighted by inverse MSE. None where the
        history cannot hold an origin after a lookback, two seasons and a third of it."""
        d = self.dcfg
        L, H, m = d.lookback, d.horizon, d.season
        n, k = values.shape
        train_end = int(self.saved.get("train_points") or (self.bounds.get("train") or (0, n // 2))[1])
        first = max(L, 2 * m + 2 if m > 1 else 0, n // 3, 8)
        last = n - H  # the last origin whose horizon the history holds
        origins = np.arange(max(first, min(train_end, last - MIN_ORIGINS + 1)), last + 1, dtype=np.int64)
        if origins.size == 0 or not self.selection.get("weights") or np.isnan(values).any():
            return None
        assert self.scaler is not None
        z = self.scaler.transform(apply_transform(values, d.transform, series))
        xw = self._exog_windows(self._scaled_exog(exog), origins)
        if self.hybrid:
            inputs, base = self._hybrid_frames(z, origins)
            model.eval()
            with torch.no_grad():
                mu, _ = self._call(model, torch.as_tensor(inputs, dtype=torch.float32, device=self.device), xw)
            scaled = base + mu.cpu().double().numpy()
        else:
            windows = z[origins[:, None] + np.arange(-L, 0)[None, :]]
            scaled = self._forecast_scaled(model, windows, H, self.mcfg.interval, xw=xw)[0]
        forecasts = {"model": self.to_original(scaled), **baseline_forecasts(values, origins, H, m)}
        o0 = int(origins[0])
        fx = exog[:, self.past_count :] if exog is not None and len(self.exog_columns) > self.past_count else None
        for name, models in self.stats.items():
            fitted = [
                type(mm).fit(values[:o0, j], m, exog=fx[:o0] if fx is not None else None)  # type: ignore[attr-defined]
                for j, mm in enumerate(models)
            ]
            forecasts[name] = np.stack(
                [f.backtest(values[:, j], origins, H, exog=fx) for j, f in enumerate(fitted)], -1
            )
        y = values[origins[:, None] + np.arange(H)[None, :]]
        errors = {c: _rms(y, self._clip(forecasts[c]), axis=(0, 1)) for c in POOLED if c in forecasts}
        return pool_weights(errors) or None

    def _check_exog(self, exog: np.ndarray | None, n: int, steps: int, where: str) -> np.ndarray | None:
        """The covariates a forecast needs, or a UserError naming the columns and what is missing."""
        if not self.exog_columns:
            return None
        cols = self.exog_columns
        fut = cols[self.past_count :]
        if exog is None:
            raise UserError(
                f"{where}: this run reads covariates ({', '.join(cols)}): give them with the history"
                + (f", and the known-future ones ({', '.join(fut)}) for the {steps} forecast steps" if fut else "")
            )
        exog = np.asarray(exog, dtype=np.float64)
        if steps > self.dcfg.horizon:
            raise UserError(
                f"{where}: a run with covariates forecasts at most data.horizon={self.dcfg.horizon} steps, not {steps}"
            )
        if not np.isfinite(exog[:n]).all() or exog.shape[0] < n:
            j = int(np.argwhere(~np.isfinite(exog[:n]).all(0))[0][0]) if exog.shape[0] >= n else 0
            raise UserError(f"{where}: covariate {cols[j]!r} needs a value at every time of the history")
        if fut:
            later = exog[n : n + steps, self.past_count :]
            if later.shape[0] < steps or not np.isfinite(later).all():
                have = int(np.isfinite(later).all(1).sum()) if later.size else 0
                raise UserError(
                    f"{where}: the known-future covariate(s) {', '.join(map(repr, fut))} (data.future_covariates) "
                    f"are needed for the {steps} steps after the series, {have} given: add rows after the series "
                    f"with their times and those values (the value column empty)"
                )
        return exog

    def _scaled_exog(self, exog: np.ndarray | None) -> np.ndarray | None:
        """Covariates in the model's units (the past-only ones are 0 where unknown: never read there)."""
        if exog is None:
            return None
        assert self.xscaler is not None
        return np.nan_to_num(self.xscaler.transform(exog), nan=0.0)

    def _baseline_forecast(
        self, name: str, values: np.ndarray, steps: int, exog: np.ndarray | None = None
    ) -> np.ndarray:
        """A baseline's ``steps`` forecasts (steps, k) after ``values``; ETS, Theta and AR chosen and fitted on them
        (their structure and order too, as on the training split: statsforecast's AutoETS does the same)."""
        n = values.shape[0]
        origin = np.array([n])
        if name in STATISTICAL:
            models = self.stats.get(name) or []
            if len(models) != values.shape[1]:
                raise UserError(
                    f"forecaster=... {name}: this run has no fitted {name} model (trained before it existed)"
                )
            season = self.dcfg.season
            fx = exog[:, self.past_count :] if exog is not None and len(self.exog_columns) > self.past_count else None
            hx = fx[:n] if fx is not None else None
            first = starts(values)  # a panel's shorter series: fitted on its own points
            cols = [values[first[j] :, j] for j in range(values.shape[1])]
            fitted = [type(m).fit(cols[j], season, exog=hx) for j, m in enumerate(models)]  # type: ignore[attr-defined]
            return np.stack([m.forecast(cols[j], steps, exog=fx) for j, m in enumerate(fitted)], -1)
        season = self.dcfg.season if n >= self.dcfg.season else 1
        if name == "seasonal_naive":
            return seasonal_naive_forecast(values, origin, steps, season)[0]
        if name in ("naive", "drift"):
            return baseline_forecasts(values, origin, steps, 1)[name][0]
        raise UserError(f"unknown forecaster {name!r} (known: {', '.join(FORECASTERS)})")

    def note(self, chosen: str | None = None) -> str | None:
        """One line when the model does worse on the validation backtest than the best baseline, naming it, and
        what is forecast instead; None otherwise."""
        sel = self.selection
        rmse, best = sel.get("rmse") or {}, sel.get("best_baseline")
        if best is None or "model" not in rmse or not rmse["model"] > rmse.get(best, math.inf):
            return None
        label = _label(best, self.stats)
        members = [_label(n, self.stats) if n != "model" else "the model" for n in sel.get("members") or []]
        if chosen == "ensemble" and members:
            then = f"forecasting with the ensemble of {', '.join(members)}"
        elif chosen and chosen != "model":
            then = f"forecasting with {chosen}"
        else:
            then = "forecasting with the model anyway"
        origins = f" ({sel['origins']} origins)" if sel.get("origins") else ""
        return (
            f"the model's validation RMSE{origins} {rmse['model']:.4g} is worse than the best baseline, {label}, at "
            f"{rmse[best]:.4g}: {then} (forecaster=... model|ensemble|{best} to choose)"
        )

    def summary_note(self) -> str | None:
        """The line ``rnnkit train`` ends with (and its --json carries as ``note``): see ``note``."""
        want = self.mcfg.forecaster
        return self.note(self.selection.get("chosen", "model") if want == "auto" else want)

    def describe(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns or []),
            "horizon": self.dcfg.horizon,
            "lookback": self.dcfg.lookback,
            "interval": self.mcfg.interval,
            "history_points": len((self.saved or {}).get("history", [])),
            "forecaster": self.selection.get("chosen", "model")
            if self.mcfg.forecaster == "auto"
            else self.mcfg.forecaster,
        }

    def format_metrics(self, metrics: dict[str, Any]) -> str:
        parts = [f"{k} {metrics[k]:.4g}" for k in ("rmse", "mae", "mase") if isinstance(metrics.get(k), float)]
        bases = {k: v["rmse"] for k, v in (metrics.get("baselines") or {}).items() if isinstance(v.get("rmse"), float)}
        bases.pop("mean", None)
        if bases:
            best = min(bases, key=bases.__getitem__)
            parts.append(f"(best baseline {best} rmse {bases[best]:.4g}")
            ens = (metrics.get("ensemble") or {}).get("rmse")
            parts[-1] += f"; ensemble {ens:.4g})" if isinstance(ens, float) else ")"
        return " ".join(parts)


def _rms(y: np.ndarray, f: np.ndarray, axis: Any = None) -> Any:
    """Root mean squared error over the known targets (NaN: no target); a NaN forecast of one stays NaN."""
    e = (y - f) ** 2
    known = np.isfinite(y)
    if known.all():
        return np.sqrt(np.mean(e, axis=axis))
    total, count = np.sum(np.where(known, e, 0.0), axis=axis), np.sum(known, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(total / count)
    return np.where(np.any(known & ~np.isfinite(e), axis=axis), np.nan, out)


def _backtest(
    model: Statistical, column: np.ndarray, origins: np.ndarray, horizon: int, start: int, exog: np.ndarray | None
) -> np.ndarray:
    """A statistical model's (B, horizon) backtest of one column whose values start at row ``start`` (a panel's
    shorter series): NaN from the origins before it has the points it needs."""
    if start == 0:
        return model.backtest(column, origins, horizon, exog=exog)
    need = getattr(model, "p", 1)
    ok = origins - start >= need
    out = np.full((len(origins), horizon), np.nan)
    if ok.any():
        out[ok] = model.backtest(column[start:], origins[ok] - start, horizon, exog=exog)
    return out


def _label(name: str, stats: dict[str, list[Any]]) -> str:
    models = stats.get(name)
    if models:
        return f"{name} ({', '.join(sorted({m.label for m in models}))})"
    return name.replace("_", " ")


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else "n/a"


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf become None (strict JSON), except the loss and the task metric the trainer compares."""
    return {
        k: (v if k in ("loss", "rmse") or not isinstance(v, float) or math.isfinite(v) else finite_or_none(v))
        for k, v in d.items()
    }

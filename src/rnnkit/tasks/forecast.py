"""Time-series forecasting: ``lookback`` steps in, ``horizon`` steps out, judged against the classic baselines.

Data: any CSV with a time column and one or more value columns (``data.path``, ``data.time_column``, ``data.target``),
or the built-in synthetic series (``data.path = []``, shaped by ``data.synthetic_*``). The series is split
chronologically into train / valid / test; a window belongs to the split that holds all of its targets, and its
inputs may reach back into the preceding history (as they would when forecasting for real). The optional ``log``
transform and the scaler are fitted on the training split only. Every metric is computed in the original units over
rolling origins: every step (``data.stride``) of the split at which a whole horizon still fits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
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
    invert_transform,
    read_series_csv,
    split_bounds,
    synthetic_series,
    window_origins,
)
from rnnkit.errors import UserError
from rnnkit.metrics.forecasting import (
    baseline_forecasts,
    coverage,
    finite_or_none,
    mase_scale,
    point_metrics,
    z_value,
)
from rnnkit.models import forecaster
from rnnkit.models.forecaster import Forecaster, forecast_loss
from rnnkit.seeds import derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import MEMORY_DIR, Task

SYNTHETIC = {"sine": "t sin(t) / 3 + 2 sin(5t) (+ noise) at t = 0, step, 2 step, ... (Geron's textbook series)"}
TRANSFORMS = {
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
ARCHS = {"rnn": "encoder + multi-output head", "seq2seq": "encoder-decoder (direct strategy only)"}
DISTRIBUTIONS = {"point": "point forecasts (MSE)", "gaussian": "mean + log-variance (Gaussian NLL)"}
assert set(SYNTHETIC) == set(timeseries.SYNTHETIC) and set(TRANSFORMS) == set(timeseries.TRANSFORMS)
assert set(STRATEGIES) == set(forecaster.STRATEGIES) and set(ARCHS) == set(forecaster.ARCHITECTURES)
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
    target: str = key("", 'value column(s) to forecast, comma-separated; "" = every column but the time column')
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
    lookback: int = key(24, "input steps per window", ge=1, le=1_000_000)
    horizon: int = key(12, "steps forecast from each origin", ge=1, le=1_000_000)
    season: int = key(
        1, "seasonal period in steps (12 for monthly data with a yearly cycle); 1 = none", ge=1, le=1_000_000
    )
    transform: str = key("none", "value transform before scaling (fitted on the training split)", choices=TRANSFORMS)
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
    arch: str = key("rnn", "model family", choices=ARCHS, needs={"model.strategy": "direct"})
    distribution: str = key("point", "what the model outputs", choices=DISTRIBUTIONS)
    interval: float = key(0.9, "prediction-interval coverage (point models: from validation residuals)", gt=0, lt=1)
    samples: int = key(100, "recursive + gaussian: sample paths per forecast for the interval", ge=10, le=100_000)

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
        self._train_windows: Tensor | None = None

    # -- data -------------------------------------------------------------------------------------
    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """A pandas Series or DataFrame (the index is the time), a dict of columns or numbers -> a CSV with a
        time column (row numbers without times) and the value columns, all of which are forecast."""
        from rnnkit.data.memory import series_table, write_series_csv

        values, times, columns = series_table(data)
        write_series_csv(folder / "series.csv", values, times, columns)
        return {"data.path": [f"{MEMORY_DIR}/series.csv"], "data.time_column": "", "data.target": ""}

    def load_series(self) -> Series:
        d = self.dcfg
        if d.path:
            path = find_data_file(d.path[0], self.data_dir, "data.path")
            return read_series_csv(path, d.time_column, d.target, sort=d.sort)
        return synthetic_series(d.synthetic, d.synthetic_length, d.synthetic_step, d.synthetic_noise, d.synthetic_seed)

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        d = self.dcfg
        s = self.load_series()
        n, L, H = len(s), d.lookback, d.horizon
        if n <= H:
            raise UserError(f"{s.source}: data.horizon={H} is longer than the series ({n} points)")
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
                f"{len(self.columns)} ({', '.join(self.columns)}); choose them with data.target"
            )
        z = apply_transform(s.values, d.transform, s)
        if self.scaler is None:
            self.scaler = Scaler.fit(z[:a])  # the training split only
        self.series, self.columns, self.bounds = s, self.columns or list(s.columns), bounds
        self.z = self.scaler.transform(z)
        self.scale = mase_scale(s.values[:a], d.season)
        self.origins = {
            "train": window_origins(bounds["train"], L, H),
            "valid": window_origins(bounds["valid"], L, H, d.stride),
            "test": window_origins(bounds["test"], L, H, d.stride),
        }
        for name in ("valid", "test"):
            if self.origins[name].size == 0:  # only when lookback exceeds all the history before the split
                raise UserError(f"{s.source}: no {name} window: data.lookback={L} reaches before the series start")
        self._train_windows = torch.as_tensor(
            self._windows(self.origins["train"]), dtype=torch.float32, device=self.device
        )

    def _windows(self, origins: np.ndarray) -> np.ndarray:
        """Scaled windows (B, lookback + horizon, k): inputs then targets."""
        assert self.z is not None
        return self.z[origins[:, None] + np.arange(-self.dcfg.lookback, self.dcfg.horizon)[None, :]]

    def artifacts(self) -> dict[str, Any]:
        assert self.series is not None and self.scaler is not None and self.scale is not None
        d, s = self.dcfg, self.series
        keep = min(len(s), max(d.lookback, d.season + d.horizon, 4 * d.horizon, 240))
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
            "history": s.values[-keep:].tolist(),
            "history_times": list(s.times[-keep:]),
            "mase_scale": [float(v) for v in self.scale],
            "residual_sd": self.residual_sd.tolist() if self.residual_sd is not None else [],
        }

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        self.saved = dict(artifacts)
        self.columns = list(artifacts["columns"])
        self.scaler = Scaler.from_dict(artifacts["scaler"])
        sd = artifacts.get("residual_sd") or []
        self.residual_sd = np.asarray(sd, dtype=np.float64) if len(sd) else None
        self.scale = np.asarray(artifacts["mase_scale"], dtype=np.float64)

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
        return Forecaster(
            len(self.columns),
            self.dcfg.horizon,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            dropout=m.dropout,
            strategy=m.strategy,
            arch=m.arch,
            gaussian=m.distribution == "gaussian",
            forget_bias=m.forget_bias,
        )

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
        """The training criterion on scaled windows w (B, lookback + horizon, k), in the model's frame."""
        L = self.dcfg.lookback
        loc, sc = self._frame(w[:, :L])
        w = (w - loc) / sc
        x = w[:, :L].transpose(0, 1)  # (lookback, batch, k)
        mean, logvar = model(x)
        if self.mcfg.strategy == "recursive":  # one step ahead at every position (teacher forcing)
            return forecast_loss(mean, logvar, w[:, 1 : L + 1].transpose(0, 1), reduction)
        return forecast_loss(mean, logvar, w[:, L:], reduction)

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        return self._loss(model, batch), batch.size(0)

    # -- forecasting ------------------------------------------------------------------------------
    def _frame(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-window location and scale (B, 1, k) of scaled inputs x (B, lookback, k): model frame = (v - loc) / sc."""
        norm = self.dcfg.window_norm
        if norm == "last":
            return x[:, -1:], torch.ones_like(x[:, -1:])
        if norm == "standard":
            return x.mean(1, keepdim=True), x.std(1, keepdim=True, unbiased=False).clamp(min=MIN_WINDOW_SD)
        return torch.zeros_like(x[:, -1:]), torch.ones_like(x[:, -1:])

    @torch.no_grad()
    def _forecast_scaled(
        self, model: nn.Module, x: np.ndarray, steps: int, level: float, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """x: scaled history windows (B, lookback, k) -> mean, lower, upper (B, steps, k) in scaled units, and the
        frame scale of each forecast step (B, steps, k) (1 unless data.window_norm = standard)."""
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
        means, sds, scales = [], [], []
        done = 0
        while done < steps:  # beyond the trained horizon: feed each block of forecasts back as history
            loc, sc = self._frame(xt)
            mu, logvar = model(((xt - loc) / sc).transpose(0, 1))
            sds.append(torch.exp(0.5 * logvar) * sc if logvar is not None else None)
            mu = mu * sc + loc
            means.append(mu)
            scales.append(sc.expand(-1, H, -1))
            xt = torch.cat([xt, mu], 1)[:, -L:]
            done += H
        mean = torch.cat(means, 1)[:, :steps].cpu().double().numpy()
        scale = torch.cat(scales, 1)[:, :steps].cpu().double().numpy()
        if m.distribution == "gaussian":
            sd = torch.cat(sds, 1)[:, :steps].cpu().double().numpy()  # type: ignore[arg-type]
        else:
            sd = self._residual_sd_for(steps, k) * scale
        return mean, mean - z * sd, mean + z * sd, scale

    def _residual_sd_for(self, steps: int, k: int) -> np.ndarray:
        sd = self.residual_sd if self.residual_sd is not None else np.full((self.dcfg.horizon, k), np.nan)
        if steps > sd.shape[0]:  # past the validated horizon: the last step's spread (an underestimate)
            sd = np.concatenate([sd, np.repeat(sd[-1:], steps - sd.shape[0], 0)], 0)
        return sd[None, :steps]

    def to_original(self, scaled: np.ndarray) -> np.ndarray:
        assert self.scaler is not None
        return invert_transform(self.scaler.inverse(scaled), self.dcfg.transform)

    def _split_forecast(self, model: nn.Module, split: str) -> tuple[np.ndarray, ...]:
        """Scaled mean/lower/upper and scaled targets (B, horizon, k) for every origin of a split."""
        L = self.dcfg.lookback
        w = self._windows(self.origins[split])
        mean, lo, hi, scale = self._forecast_scaled(model, w[:, :L], self.dcfg.horizon, self.mcfg.interval)
        return mean, lo, hi, w[:, L:], scale

    def _update_residual_sd(self, model: nn.Module) -> None:
        """Point models: per-step residual RMS on valid (scaled units), for intervals; stored in artifacts."""
        if self.mcfg.distribution == "point":
            self.residual_sd = None
            mean, _, _, y, scale = self._split_forecast(model, "valid")
            self.residual_sd = np.sqrt(np.mean(((y - mean) / scale) ** 2, axis=0))  # (horizon, k), model frame

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        if self.z is None:
            self.prepare()
        assert self.series is not None and self.scale is not None
        model.eval()
        d = self.dcfg
        self._update_residual_sd(model)
        origins = self.origins[split]
        w = torch.as_tensor(self._windows(origins), dtype=torch.float32, device=self.device)
        bs = self.eval_batch_size
        total = sum(float(self._loss(model, w[i : i + bs], "sum")) for i in range(0, w.size(0), bs))
        per_window = (d.lookback if self.mcfg.strategy == "recursive" else d.horizon) * w.size(2)
        mean, lo, hi, _, _ = self._split_forecast(model, split)
        mean, lo, hi = self.to_original(mean), self.to_original(lo), self.to_original(hi)
        y = self.series.values[origins[:, None] + np.arange(d.horizon)[None, :]]
        out: dict[str, Any] = {"loss": total / (w.size(0) * per_window)}
        out.update(point_metrics(y, mean, self.scale))
        out["coverage"] = coverage(y, lo, hi)
        out["interval"] = self.mcfg.interval
        out["windows"] = int(origins.size)
        out["horizon"] = d.horizon
        out["rmse_by_step"] = [float(v) for v in np.sqrt(np.mean((y - mean) ** 2, axis=(0, 2)))]
        baselines = baseline_forecasts(self.series.values, origins, d.horizon, d.season)
        out["baselines"] = {name: _clean(point_metrics(y, f, self.scale)) for name, f in baselines.items()}
        return _clean(out)

    def forecast(
        self,
        model: nn.Module,
        values: np.ndarray,
        steps: int,
        level: float | None = None,
        series: Series | None = None,
        seed: int = 0,
    ) -> dict[str, np.ndarray]:
        """Forecast ``steps`` steps after the end of ``values`` (n, k) in original units: mean, lower, upper."""
        L = self.dcfg.lookback
        where = series.source if series is not None else "the history"
        if values.shape[0] < L:
            raise UserError(
                f"{where}: series too short: {values.shape[0]} points, the model needs the last data.lookback={L}"
            )
        if self.columns is not None and values.shape[1] != len(self.columns):
            raise UserError(
                f"{where}: {values.shape[1]} value column(s), but the model forecasts "
                f"{len(self.columns)} ({', '.join(self.columns)}); choose them with --target"
            )
        assert self.scaler is not None
        z = self.scaler.transform(apply_transform(values[-L:], self.dcfg.transform, series, values.shape[0] - L))
        mean, lo, hi, _ = self._forecast_scaled(model, z[None], steps, level or self.mcfg.interval, seed)
        return {"mean": self.to_original(mean[0]), "lower": self.to_original(lo[0]), "upper": self.to_original(hi[0])}

    def describe(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns or []),
            "horizon": self.dcfg.horizon,
            "lookback": self.dcfg.lookback,
            "interval": self.mcfg.interval,
            "history_points": len((self.saved or {}).get("history", [])),
        }

    def format_metrics(self, metrics: dict[str, Any]) -> str:
        parts = [f"{k} {metrics[k]:.4g}" for k in ("rmse", "mae", "mase") if isinstance(metrics.get(k), float)]
        snaive = (metrics.get("baselines") or {}).get("seasonal_naive") or {}
        if isinstance(snaive.get("rmse"), float):
            parts.append(f"(seasonal naive rmse {snaive['rmse']:.4g} mase {_fmt(snaive.get('mase'))})")
        return " ".join(parts)


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else "n/a"


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf become None (strict JSON), except the loss and the task metric the trainer compares."""
    return {
        k: (v if k in ("loss", "rmse") or not isinstance(v, float) or math.isfinite(v) else finite_or_none(v))
        for k, v in d.items()
    }

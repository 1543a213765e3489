"""rnnkit forecast: the next steps of a series from a trained forecasting run, with prediction intervals."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rnnkit.commands.common import add_device, add_json, output_file, print_json, save_figure
from rnnkit.config import MAX_SEED, cli_number
from rnnkit.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="forecast a time series with a trained run",
                       description="Forecast the steps after the end of a series (a CSV, or by default the end of the "
                                   "run's own data) with a trained forecasting run: a table of time, forecast and "
                                   "the prediction interval, and optionally a plot. --holdout hides the last "
                                   "--horizon known points, forecasts them and scores the forecast against the "
                                   "truth and the naive baselines.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--csv", metavar="FILE", help="series to continue (default: the run's training series)")
    p.add_argument("--time-col", help="time column of --csv (default: the run's data.time_column)")
    p.add_argument("--target", help="value column(s) of --csv, comma-separated (default: the run's data.target)")
    p.add_argument("--horizon", type=cli_number(int, "--horizon", ge=1, le=1_000_000),
                   help="steps to forecast (default: the run's data.horizon)")
    p.add_argument("--holdout", action="store_true", help="forecast the last HORIZON known points and show the truth")
    p.add_argument("--level", type=cli_number(float, "--level", gt=0, lt=1),
                   help="prediction-interval coverage (default: the run's model.interval)")
    p.add_argument("--plot", metavar="PNG", help="draw history, forecast, interval (and truth) into this PNG")
    p.add_argument("--seed", type=cli_number(int, "--seed", ge=0, le=MAX_SEED),
                   default=0, help="sample paths of recursive Gaussian models (default: 0)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from rnnkit import predict
    from rnnkit.data.timeseries import future_times, read_series_csv
    from rnnkit.metrics.forecasting import baseline_forecasts, mase_scale, point_metrics
    from rnnkit.runs import load_run

    if args.plot:
        output_file(args.plot, "--plot")
    loaded = load_run(args.run, args.checkpoint, args.device or "auto")
    task = predict.require(loaded, "forecast")
    d = loaded.config.data
    horizon, level = predict.forecast_settings(loaded, args.horizon, args.level)
    series = None
    if args.csv:
        path = Path(args.csv)
        if not path.is_file():
            raise UserError(f"--csv: file not found: {args.csv}")
        series = read_series_csv(path, args.time_col if args.time_col is not None else d.time_column,
                                 args.target if args.target is not None else d.target, sort=d.sort)
        trained = list(task.columns or [])
        if sorted(series.columns) == sorted(trained) and series.columns != trained:  # same names, other order
            order = [series.columns.index(c) for c in trained]
            series.values, series.columns = series.values[:, order], trained
        values, times, columns, source = series.values, series.times, series.columns, str(path)
    else:
        values, times, columns, source = predict.saved_history(loaded)
    n = values.shape[0]
    if horizon > n:
        raise UserError(f"{source}: --horizon {horizon} is longer than the series ({n} points)")
    truth = None
    if args.holdout:
        if n - horizon < d.lookback:
            raise UserError(f"{source}: series too short for --holdout: {n} points leave {n - horizon} before the "
                            f"last {horizon}, the model needs data.lookback={d.lookback}")
        truth = values[n - horizon :]
        history, hist_times, out_times = values[: n - horizon], times[: n - horizon], times[n - horizon :]
    else:
        history, hist_times, out_times = values, times, future_times(times, horizon)
    fc = predict.forecast(loaded, history, horizon, level, series=series, seed=args.seed)
    rows = []
    for i in range(horizon):
        for j, col in enumerate(columns):
            row: dict[str, Any] = {"time": out_times[i], "column": col, "forecast": float(fc["mean"][i, j]),
                                   "lower": float(fc["lower"][i, j]), "upper": float(fc["upper"][i, j])}
            if truth is not None:
                row["truth"] = float(truth[i, j])
            rows.append(row)
    result: dict[str, Any] = {"run": str(args.run), "source": source, "columns": columns, "horizon": horizon,
                              "interval": level, "holdout": bool(args.holdout), "strategy":
                              loaded.config.model.strategy, "rows": rows}
    if truth is not None:
        origin = np.array([history.shape[0]])
        scale = mase_scale(history, d.season)
        y = truth[None]
        metrics: dict[str, Any] = dict(point_metrics(y, fc["mean"][None], scale))
        try:
            base = baseline_forecasts(values, origin, horizon, d.season)
        except ValueError:  # not a whole season of history before the holdout
            base = {k: v for k, v in baseline_forecasts(values, origin, horizon, 1).items() if k != "seasonal_naive"}
        metrics["baselines"] = {k: point_metrics(y, f, scale) for k, f in base.items()}
        result["metrics"] = metrics
    if args.plot:
        plot_forecast(hist_times, history, out_times, fc, truth, columns, args.plot, level,
                      title=f"{Path(str(args.run)).name}: {', '.join(columns)}")
        result["plot"] = args.plot
    if args.json:
        print_json(result)
        return 0
    print(_table(result, out_times, hist_times[-1] if hist_times else "start"))
    return 0


def _table(result: dict[str, Any], out_times: list[str], after: str) -> str:
    cols = result["columns"]
    holdout = result["holdout"]
    lines = [f"{'holdout forecast of the last' if holdout else 'forecast of the'} {result['horizon']} steps after "
             f"{after} ({', '.join(cols)}; {result['interval']:.0%} interval; {result['strategy']})"]
    tw = max([len("time")] + [len(t) for t in out_times])
    head = f"{'time':<{tw}}" + ("  column" if len(cols) > 1 else "") + \
        f"  {'forecast':>10}  {'lower':>10}  {'upper':>10}" + (f"  {'truth':>10}" if holdout else "")
    lines.append(head)
    cw = max(len(c) for c in cols)
    for r in result["rows"]:
        line = f"{r['time']:<{tw}}" + (f"  {r['column']:<{max(cw, 6)}}" if len(cols) > 1 else "")
        line += f"  {r['forecast']:>10.4g}  {r['lower']:>10.4g}  {r['upper']:>10.4g}"
        if holdout:
            line += f"  {r['truth']:>10.4g}"
        lines.append(line)
    if "metrics" in result:
        m = result["metrics"]
        parts = [f"model rmse {m['rmse']:.4g} mae {m['mae']:.4g} mase {m['mase']:.3g}"]
        for k, b in m["baselines"].items():
            parts.append(f"{k.replace('_', ' ')} rmse {b['rmse']:.4g} mase {b['mase']:.3g}")
        lines.append("holdout: " + "; ".join(parts))
    if "plot" in result:
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)


def plot_forecast(hist_times: list[str], history: Any, out_times: list[str], fc: dict[str, Any], truth: Any,
                  columns: list[str], path: str, level: float, title: str = "") -> None:
    """History (the last few hundred points), forecast, interval band and the truth where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    horizon = len(out_times)
    show = min(len(hist_times), max(5 * horizon, 120))
    hx = np.arange(-show, 0)
    fx = np.arange(horizon)
    k = len(columns)
    fig, axes = plt.subplots(k, 1, figsize=(10, 3.2 * k), squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(hx, history[-show:, j], color="C0", lw=1, label="history")
        if truth is not None:
            ax.plot(np.concatenate([[-1], fx]), np.concatenate([history[-1:, j], truth[:, j]]), color="k", lw=1,
                    ls="--", label="truth")
        ax.plot(np.concatenate([[-1], fx]), np.concatenate([history[-1:, j], fc["mean"][:, j]]), color="C3",
                lw=1.5, label="forecast")
        ax.fill_between(fx, fc["lower"][:, j], fc["upper"][:, j], color="C3", alpha=0.2,
                        label=f"{level:.0%} interval")
        labels = list(hist_times[-show:]) + list(out_times)
        xs = np.concatenate([hx, fx])
        ticks = np.linspace(0, len(xs) - 1, num=min(8, len(xs))).astype(int)
        ax.set_xticks(xs[ticks])
        ax.set_xticklabels([labels[i] for i in ticks], rotation=20, fontsize=8)
        ax.set_ylabel(columns[j])
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    try:
        save_figure(fig, Path(path), "--plot", dpi=90)
    finally:
        plt.close(fig)

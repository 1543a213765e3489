"""rnnkit forecast: the next steps of a series from a trained forecasting run, with prediction intervals."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnkit.api import MAX_SEED, cli_number
from rnnkit.commands.common import add_device, add_json, in_cli_words, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "forecast",
        help="forecast a time series with a trained run",
        description="Forecast the steps after the end of a series (a CSV, or by default the end of the "
        "run's own data) with a trained forecasting run: a table of time, forecast and "
        "the prediction interval, and optionally a plot. --holdout hides the last "
        "--horizon known points, forecasts them and scores the forecast against the "
        "truth, the model, the ensemble and the baselines (naive, seasonal naive, drift, mean, ETS, damped ETS, "
        "Theta, AR), each "
        "fitted on the same history.",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--csv", metavar="FILE", help="series to continue (default: the run's training series)")
    p.add_argument("--time-col", help="time column of --csv (default: the run's data.time_column)")
    p.add_argument("--target", help="value column(s) of --csv, comma-separated (default: the run's data.target)")
    p.add_argument(
        "--horizon",
        type=cli_number(int, "--horizon", ge=1, le=1_000_000),
        help="steps to forecast (default: the run's data.horizon)",
    )
    p.add_argument("--holdout", action="store_true", help="forecast the last HORIZON known points and show the truth")
    p.add_argument(
        "--level",
        type=cli_number(float, "--level", gt=0, lt=1),
        help="prediction-interval coverage (default: the run's model.interval)",
    )
    p.add_argument("--plot", metavar="PNG", help="draw history, forecast, interval (and truth) into this PNG")
    p.add_argument(
        "--seed",
        type=cli_number(int, "--seed", ge=0, le=MAX_SEED),
        default=0,
        help="sample paths of recursive Gaussian models (default: 0)",
    )
    p.add_argument(
        "--forecaster",
        choices=["auto", "model", "ensemble", "ets", "damped", "theta", "ar", "seasonal_naive", "naive", "drift"],
        help="what forecasts: the trained model, the ensemble (the two best of the model, ETS, damped, Theta and AR "
        "on the backtest, weighted by inverse MSE), a baseline refitted on the history, or auto: the "
        "ensemble (default: the run's model.forecaster, normally auto)",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_device(p)
    add_json(p)
    p.set_defaults(func=run, arguments={"time_column": "--time-col"})  # API argument -> what the command line calls it


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    loaded = api.load(args.run, args.checkpoint, args.device or "auto")
    result = loaded.forecast_report(
        csv=args.csv,
        time_column=args.time_col,
        target=args.target,
        horizon=args.horizon,
        holdout=args.holdout,
        level=args.level,
        plot=args.plot,
        seed=args.seed,
        forecaster=args.forecaster,
    )
    if result.get("note"):  # in the command line's words, in --json as on stderr
        result = {**result, "note": in_cli_words(result["note"], args.arguments)}
    if args.json:
        print_json(result)
        return 0
    if result.get("note"):
        print(f"rnnkit: note: {result['note']}", file=sys.stderr, flush=True)
    print(_table(result))
    return 0


def _table(result: dict[str, Any]) -> str:
    cols, after = result["columns"], result["after"]
    out_times = list(dict.fromkeys(r["time"] for r in result["rows"]))
    holdout = result["holdout"]
    lines = [
        f"{'holdout forecast of the last' if holdout else 'forecast of the'} {result['horizon']} steps after "
        f"{after} ({', '.join(cols)}; {result['interval']:.0%} interval; forecaster: {result['forecaster']})"
    ]

    tw = max([len("time")] + [len(t) for t in out_times])
    head = (
        f"{'time':<{tw}}"
        + ("  column" if len(cols) > 1 else "")
        + f"  {'forecast':>10}  {'lower':>10}  {'upper':>10}"
        + (f"  {'truth':>10}" if holdout else "")
    )
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
        parts = [f"{m['forecaster']} rmse {m['rmse']:.4g} mae {m['mae']:.4g} mase {m['mase']:.3g}"]
        others = {k: m[k] for k in ("model", "ensemble") if k in m and k != m["forecaster"]}
        for k, b in {**others, **m["baselines"]}.items():
            if k != m["forecaster"]:
                parts.append(f"{k.replace('_', ' ')} rmse {b['rmse']:.4g} mase {b['mase']:.3g}")
        lines.append("holdout: " + "; ".join(parts))
    if "plot" in result:
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)

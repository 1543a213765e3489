"""The forecast task's defaults on series it was never tuned on, against simple models fitted on the same history.

    OMP_NUM_THREADS=1 python benchmarks/own_data_forecast.py [--data-dir DIR] [--cases elnino,nile,...]
        [--out-dir runs/own-data-forecast] [--json-out FILE] [--peers]

Each case is a CSV (first column time, the rest values) and a horizon H. What a newcomer would type, through the
real command line:

    rnnkit train forecast --set data.path=FILE.csv --set data.horizon=H --out RUN
    rnnkit forecast RUN --csv FILE.csv --horizon H --holdout --json

``metrics.rmse`` of the second (the forecast rnnkit gives for the last H points, from the history before them) is
compared with the simple models a forecaster would try first, fitted here directly with statsmodels on the same
history: naive, seasonal naive, Holt-Winters (additive trend and season), damped Holt, and AR(p) with p chosen by
AIC (up to two seasons). The case passes when rnnkit's RMSE is at most 1.25x the best of them (the goal of issue
22), and "wins" when at or below it. Printed: one row per case with rnnkit's RMSE, what forecast it (the model,
the ensemble or a baseline chosen on validation), the model's own RMSE, the best simple model and the ratio, the
training's wall time; written: every figure with its provenance (benchmarks/_results.py).

Cases: the six public ones of issue 22 (timeseries/elnino-monthly.csv H=24, nile-yearly.csv H=10,
monthly-shampoo-sales.csv H=6, and the airline, temperatures and sunspots recipes' series with their recipes'
horizons), and series no default was tuned on: daily female births (timeseries/, H=14) and statsmodels' bundled
co2 (weekly -> monthly means, H=24), macrodata realgdp / unemp / cpi (quarterly, H=8), interest_inflation Dp
(quarterly, H=8), strikes duration (H=6), written to CSV files under the output directory.

``--peers``: also darts' RNNModel (LSTM, see ``darts_rnn``) on the same history, where darts is installed (the
``forecast-peers`` extra) and the series has at most 1,000 points; skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from _results import Provenance, write_result
from _train import data_flag, train_summary

PUBLIC = {  # name: (relative path, horizon, season the simple models use)
    "elnino": ("timeseries/elnino-monthly.csv", 24, 12),
    "nile": ("timeseries/nile-yearly.csv", 10, 1),
    "shampoo": ("timeseries/monthly-shampoo-sales.csv", 6, 1),  # 36 months, no yearly pattern: SOURCE.txt's models
    "airline": ("timeseries/airline-passengers.csv", 12, 12),
    "temperatures": ("timeseries/daily-min-temperatures.csv", 7, 365),
    "sunspots": ("timeseries/monthly-sunspots.csv", 12, 12),
}
OTHER = {
    "births": ("timeseries/daily-total-female-births.csv", 14, 7),
    "co2": ("statsmodels:co2", 24, 12),
    "realgdp": ("statsmodels:macrodata.realgdp", 8, 4),
    "unemp": ("statsmodels:macrodata.unemp", 8, 4),
    "cpi": ("statsmodels:macrodata.cpi", 8, 4),
    "inflation": ("statsmodels:interest_inflation.Dp", 8, 4),
    "strikes": ("statsmodels:strikes.duration", 6, 1),
}
CASES = {**PUBLIC, **OTHER}
GOAL = 1.25
PEER_MAX_POINTS = 1000  # darts' 100 default epochs over a 3,000-point series take many minutes on one core


def statsmodels_csv(spec: str, folder: Path) -> Path:
    """One of statsmodels' bundled series as a CSV (time, value)."""
    import statsmodels.api as sm

    name = spec.split(":", 1)[1]
    dataset, _, column = name.partition(".")
    df = getattr(sm.datasets, dataset).load_pandas().data
    if dataset == "co2":
        s = df["co2"].resample("MS").mean().interpolate()
        times, values = [t.strftime("%Y-%m") for t in s.index], s.to_numpy()
    elif {"year", "quarter"} <= set(df.columns):
        times = [f"{int(y)}-{int(q) * 3 - 2:02d}" for y, q in zip(df["year"], df["quarter"])]
        values = df[column].to_numpy()
    else:
        times, values = [str(i) for i in range(len(df))], df[column].to_numpy()
    path = folder / f"{name.replace('.', '-')}.csv"
    path.write_text("time,value\n" + "".join(f"{t},{float(v)!r}\n" for t, v in zip(times, values)))
    return path


def resolve(case: str, data_dir: str | None, folder: Path) -> Path:
    rel = CASES[case][0]
    if rel.startswith("statsmodels:"):
        return statsmodels_csv(rel, folder)
    if data_dir:
        return Path(data_dir) / rel
    import rnnkit

    return Path(rnnkit.datasets.files(rel.split("/")[0])[rel])


def read_values(path: Path) -> np.ndarray:
    import csv

    with path.open() as f:
        rows = list(csv.reader(f))[1:]
    return np.asarray([float(r[1]) for r in rows if r], dtype=np.float64)


def simple_models(history: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """What a forecaster tries first, fitted with statsmodels on ``history`` (independently of rnnkit's code)."""
    from statsmodels.tsa.ar_model import AutoReg
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out: dict[str, np.ndarray] = {"naive": np.repeat(history[-1], horizon)}
    n = len(history)
    if season > 1 and n >= season:
        out["seasonal_naive"] = np.array([history[n - season + (i % season)] for i in range(horizon)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if 1 < season <= 52 and n >= 2 * season + 2:
            fit = ExponentialSmoothing(
                history, trend="add", seasonal="add", seasonal_periods=season, initialization_method="estimated"
            ).fit()
            out["holt_winters"] = np.asarray(fit.forecast(horizon))
        fit = ExponentialSmoothing(history, trend="add", damped_trend=True, initialization_method="estimated").fit()
        out["damped_holt"] = np.asarray(fit.forecast(horizon))
        top = int(min(2 * season if 1 < season <= 24 else 24, n // 3))
        best = min(
            range(1, max(top, 1) + 1),
            key=lambda p: AutoReg(history, lags=p, trend="c", hold_back=top).fit().aic,
        )
        out[f"ar({best})"] = np.asarray(AutoReg(history, lags=best, trend="c").fit().predict(n, n + horizon - 1))
    return out


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def darts_rnn(history: np.ndarray, horizon: int, seed: int) -> np.ndarray | None:
    """darts' RNNModel (LSTM) as its tutorials use it - values scaled by darts' Scaler, the model's defaults
    otherwise (hidden 25, 100 epochs), an input chunk of twice the horizon (at least 12) - where darts is installed:
    its hold-out forecast, or None."""
    try:
        from darts import TimeSeries
        from darts.dataprocessing.transformers import Scaler
        from darts.models import RNNModel
    except ImportError:
        return None
    series = TimeSeries.from_values(history.astype(np.float32))
    scaler = Scaler()
    scaled = scaler.fit_transform(series)
    chunk = min(max(2 * horizon, 12), len(history) // 3)
    model = RNNModel(
        model="LSTM",
        input_chunk_length=chunk,
        training_length=chunk + horizon,
        random_state=seed,
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    model.fit(scaled, verbose=False)
    return scaler.inverse_transform(model.predict(horizon, verbose=False)).values()[:, 0]


def run_case(case: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    _, horizon, season = CASES[case]
    path = resolve(case, args.data_dir, root)
    run = root / case
    cmd = [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        "forecast",
        *data_flag(None),
        "--set",
        f"data.path={path}",
        "--set",
        f"data.horizon={horizon}",
        "--out",
        str(run),
        "--json",
        "--quiet",
        "--set",
        "train.tensorboard=false",
        "--set",
        f"train.threads={args.threads}",
        "--seed",
        str(args.seed),
    ]
    summary, wall = train_summary(cmd, case)
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", "forecast", str(run), "--csv", str(path), "--horizon", str(horizon)]
        + ["--holdout", "--json"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{case}: rnnkit forecast failed (exit {proc.returncode})")
    forecast_wall = time.time() - t0
    out = json.loads(proc.stdout)
    m = out["metrics"]
    y = read_values(path)
    history, truth = y[:-horizon], y[-horizon:]
    simple = {k: rmse(v, truth) for k, v in simple_models(history, horizon, season).items()}
    best = min(simple, key=simple.__getitem__)
    chosen = json.loads((run / "run.json").read_text()).get("chosen", {})
    row = {
        "case": case,
        "file": str(path.name),
        "points": int(len(y)),
        "horizon": horizon,
        "rmse": m["rmse"],
        "forecaster": m["forecaster"],
        "model_rmse": (m.get("model") or {}).get("rmse", m["rmse"] if m["forecaster"] == "model" else None),
        "ensemble_rmse": (m.get("ensemble") or {}).get("rmse"),
        "rnnkit_baselines": {k: v["rmse"] for k, v in m["baselines"].items()},
        "simple": simple,
        "best_simple": best,
        "best_simple_rmse": simple[best],
        "ratio": m["rmse"] / simple[best] if simple[best] > 0 else math.inf,
        "note": out.get("note"),
        "train_wall_s": round(wall, 1),
        "forecast_wall_s": round(forecast_wall, 1),
        "steps": summary["step"],
        "stopped": summary["stopped"],
        "chosen": {k: v["value"] for k, v in chosen.items()},
    }
    row["goal_met"] = row["ratio"] <= GOAL
    row["at_or_below_best"] = row["ratio"] <= 1.0
    if args.peers and len(y) > PEER_MAX_POINTS:
        row["darts_rnn_rmse"], row["darts_skipped"] = None, f"longer than {PEER_MAX_POINTS} points (100 epochs)"
    elif args.peers:
        t1 = time.time()
        f = darts_rnn(history, horizon, args.seed)
        row["darts_rnn_rmse"] = rmse(f, truth) if f is not None else None
        row["darts_wall_s"] = round(time.time() - t1, 1) if f is not None else None
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated (default: all: %(default)s)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1, help="train.threads (default: %(default)s)")
    ap.add_argument("--peers", action="store_true", help="also darts' RNNModel where darts is installed")
    ap.add_argument("--out-dir", default=f"runs/own-data-forecast-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    root = Path(args.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    prov = Provenance.start(seeds=[args.seed], data_dir=args.data_dir, threads=args.threads)
    rows = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r} (known: {', '.join(CASES)})")
        rows.append(run_case(case, args, root))
        r = rows[-1]
        print(
            f"  {case}: rmse {r['rmse']:.4g} ({r['ratio']:.2f}x {r['best_simple']}) in {r['train_wall_s']} s",
            file=sys.stderr,
            flush=True,
        )
    head = (
        f"{'case':<13} {'n':>5} {'H':>3} | {'rnnkit':>9} {'forecaster':<14} {'model':>9} | "
        f"{'best simple':<16} {'rmse':>9} {'ratio':>5} | {'train s':>7}"
        + (f" | {'darts rnn':>9}" if args.peers else "")
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        model = f"{r['model_rmse']:.4g}" if isinstance(r["model_rmse"], float) else "-"
        print(
            f"{r['case']:<13} {r['points']:>5} {r['horizon']:>3} | {r['rmse']:>9.4g} {r['forecaster']:<14} "
            f"{model:>9} | {r['best_simple']:<16} {r['best_simple_rmse']:>9.4g} {r['ratio']:>5.2f} | "
            f"{r['train_wall_s']:>7.0f}"
            + (f" | {r['darts_rnn_rmse']:>9.4g}" if isinstance(r.get("darts_rnn_rmse"), float) else "")
        )
    public = [r for r in rows if r["case"] in PUBLIC]
    summary = {
        "cases": len(rows),
        "goal_met": sum(r["goal_met"] for r in rows),
        "at_or_below_best": sum(r["at_or_below_best"] for r in rows),
        "public_goal_met": sum(r["goal_met"] for r in public),
        "public_at_or_below_best": sum(r["at_or_below_best"] for r in public),
        "public_cases": len(public),
    }
    print(
        f"within {GOAL}x of the best simple model: {summary['goal_met']}/{len(rows)}; at or below it: "
        f"{summary['at_or_below_best']}/{len(rows)} (public cases: {summary['public_goal_met']}/{len(public)}, "
        f"{summary['public_at_or_below_best']}/{len(public)})"
    )
    path = write_result(
        args.json_out or root / "benchmark.json",
        "own-data-forecast",
        {"goal": GOAL, "seed": args.seed, "threads": args.threads, "summary": summary, "results": rows},
        prov,
    )
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

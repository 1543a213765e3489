"""Train the classification recipes to completion over several seeds; report test accuracy, macro F1, wall time.

    OMP_NUM_THREADS=1 python benchmarks/classify.py [RECIPE ...] [--data-dir DIR] [--seeds 1234,1,2]
        [--out-root DIR] [--max-time SECONDS] [--set k=v ...] [--json-out FILE]

RECIPE defaults to sms-spam, sentiment, har-subset, digits-rows and parity. Each is trained once per seed (`train.seed`:
initialisation, batch order, dropout; the data split stays the recipe's `data.seed`) with `rnnkit train` (its own
early stopping on validation macro F1), and its best checkpoint is scored on the test split (the trainer also
draws the test confusion matrix into the run directory). Text recipes are compared with a bag-of-words logistic
regression (scikit-learn) fitted on exactly the same train split (C chosen on the valid split). Prints a table
(mean over seeds, and the lowest), then writes the figures with their provenance (benchmarks/_results.py) to
--json-out (default OUT_ROOT/benchmark.json; the published file is benchmarks/results/classify.json).

Whether a figure meets what the recipe promises is checked by benchmarks/reproduce.py, not here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _results import Provenance, write_result
from _train import data_flag, train_summary

RECIPES = ["sms-spam", "sentiment", "har-subset", "digits-rows", "parity"]
TEXT_RECIPES = ("sms-spam", "sentiment")  # compared with a bag-of-words baseline
SEEDS = "1234,1,2"
THREADS = 1  # every published figure here was trained on one thread (train.threads), one run at a time


def bow_baseline(recipe: str, data_dir: str | None, overrides: list[str]) -> dict[str, Any]:
    """Bag-of-words (unigrams + bigrams, the recipe's own tokeniser) logistic regression on the run's split."""
    import numpy as np
    import torch
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from rnnkit.config import parse_overrides
    from rnnkit.data.labelled_text import tokenize
    from rnnkit.metrics.classification import classification_report
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe

    config = load_recipe(recipe, parse_overrides([o for o in overrides if o.startswith("data.")]))
    task = get_task(config.task)(config, Path(data_dir) if data_dir else None, torch.device("cpu"))
    task.prepare()
    d = config.data

    def grams(text: str) -> list[str]:
        words = tokenize(text, d.lowercase, d.digits)
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    vec = CountVectorizer(analyzer=grams, binary=True)
    xtr = vec.fit_transform(task.texts["train"])
    # C and the class weighting both chosen on validation, whatever the recipe's own data.balance: the baseline
    # is the strongest this model gets on the split, not one handicapped to match the RNN's settings
    best: tuple[float, float, str | None, Any] | None = None
    for weight in (None, "balanced"):
        for c in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
            clf = LogisticRegression(C=c, max_iter=2000, class_weight=weight)
            clf.fit(xtr, task.targets["train"])
            valid = classification_report(
                task.targets["valid"], clf.predict(vec.transform(task.texts["valid"])), task.labels
            )["macro_f1"]
            if best is None or valid > best[0]:
                best = (valid, c, weight, clf)
    assert best is not None
    pred = best[3].predict(vec.transform(task.texts["test"]))
    report = classification_report(task.targets["test"], np.asarray(pred), task.labels)
    return {
        "model": "bag-of-words (1-2 grams) logistic regression",
        "C": best[1],
        "class_weight": best[2],
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "f1": report["f1"],
        "examples": int(task.targets["test"].size),
    }


def train_seed(recipe: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One `rnnkit train` of ``recipe`` with ``train.seed = seed``: its test figures and how long it took."""
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
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    summary, wall = train_summary(cmd, f"{recipe} (seed {seed})")
    test = summary.get("test", {})
    valid = summary.get("valid_best", {})
    png = out / "confusion_test.png"
    return {
        "seed": seed,
        "run": str(out),
        "wall_s": round(wall, 1),
        "train_s": summary["wall_s"],
        "stopped": summary["stopped"],
        "epochs": summary["epoch"],
        "steps": summary["step"],
        "valid_best": {k: valid.get(k) for k in ("accuracy", "macro_f1")},
        "test": {
            k: test.get(k)
            for k in ("accuracy", "macro_f1", "loss", "f1", "class_accuracy", "confusion", "examples", "balance")
            if k in test
        },
        "confusion_png": str(png) if png.is_file() else None,
    }


def summarise(recipe: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, lowest and spread over the seeds of every test figure the runs share."""

    def values(key: str) -> list[float]:
        return [r["test"][key] for r in runs if isinstance(r["test"].get(key), (int, float))]

    out: dict[str, Any] = {
        "recipe": recipe,
        "seeds": [r["seed"] for r in runs],
        "runs": runs,
        "wall_s": round(sum(r["wall_s"] for r in runs), 1),
    }
    for key in ("accuracy", "macro_f1"):
        v = values(key)
        if v:
            out[key] = {"mean": statistics.fmean(v), "min": min(v), "max": max(v), "sd": statistics.pstdev(v)}
    f1s = [r["test"]["f1"] for r in runs if isinstance(r["test"].get("f1"), dict)]
    if f1s:
        out["f1_mean"] = {k: statistics.fmean(f[k] for f in f1s) for k in f1s[0]}
    out["examples"] = runs[0]["test"].get("examples")
    return out


def run_recipe(recipe: str, seeds: list[int], args: argparse.Namespace, root: Path) -> dict[str, Any]:
    runs = [train_seed(recipe, seed, args, root / f"{recipe}-s{seed}") for seed in seeds]
    result = summarise(recipe, runs)
    if recipe in TEXT_RECIPES:
        result["baseline"] = bow_baseline(recipe, args.data_dir, args.overrides)
    return result


def _row(r: dict[str, Any]) -> str:
    acc, f1 = r["accuracy"], r.get("macro_f1")
    extra = ""
    if "spam" in r.get("f1_mean", {}):
        extra = f"spam F1 {r['f1_mean']['spam']:.3f}"
    if "baseline" in r:
        b = r["baseline"]
        extra = (extra + "; " if extra else "") + f"BoW LR acc {b['accuracy']:.2%} / F1 {b['macro_f1']:.3f}"
    per_seed = " ".join(f"{x['test']['accuracy']:.2%}" for x in r["runs"])
    f1_text = f"{f1['mean']:>8.4f}" if f1 else f"{'-':>8}"
    return (
        f"{r['recipe']:<12} {acc['mean']:>8.2%} {acc['min']:>8.2%} {f1_text} {r['examples']:>6} "
        f"{r['wall_s']:>7.0f}  [{per_seed}] {extra}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", default=RECIPES)
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--seeds", default=SEEDS, help="comma-separated train.seed values (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=THREADS, help="train.threads (default: %(default)s)")
    ap.add_argument("--out-root", help="parent of the run directories (default: runs/bench-classify-TIMESTAMP)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--max-time", type=float, help="time budget per run in seconds")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    prov = Provenance.start(seeds=seeds, data_dir=args.data_dir, threads=args.threads)
    root = Path(args.out_root or f"runs/bench-classify-{time.strftime('%Y%m%d-%H%M%S')}")
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for recipe in args.recipes:
        results.append(run_recipe(recipe, seeds, args, root))
        print(f"done: {recipe} ({results[-1]['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    print(f"test split, {len(seeds)} seeds ({args.seeds}), {args.threads} thread(s)")
    print(f"{'recipe':<12} {'acc mean':>8} {'acc min':>8} {'macro F1':>8} {'n':>6} {'wall s':>7}  per seed; notes")
    for r in results:
        print(_row(r))
    out = {
        "results": results,
        "seeds": seeds,
        "threads": args.threads,
        "overrides": args.overrides,
        "max_time": args.max_time,
    }
    path = write_result(args.json_out or root / "benchmark.json", "classify", out, prov)
    print(f"result: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

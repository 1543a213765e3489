"""Train the classification recipes to completion and report test accuracy, macro F1 and wall time.

    OMP_NUM_THREADS=1 python benchmarks/classify.py [RECIPE ...] [--data-dir DIR] [--out-root DIR]
        [--max-time SECONDS] [--seed N] [--set k=v ...] [--json-out FILE]

RECIPE defaults to sms-spam, sentiment, har-subset and digits-rows. Each is trained with `rnnkit train` (its own early
stopping on validation macro F1), its best checkpoint is scored on the test split, and `rnnkit classify --report`
draws the test confusion matrix into the run directory. Text recipes are compared with a bag-of-words logistic
regression (scikit-learn) fitted on exactly the same train split (C chosen on the valid split). Prints a table,
then one JSON object (also written to --json-out, default OUT_ROOT/benchmark.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _train import train_summary

RECIPES = ["sms-spam", "sentiment", "har-subset", "digits-rows"]
# the figures each recipe must reach (test split); sentiment is reported next to its baseline instead
TARGETS: dict[str, dict[str, Any]] = {
    "sms-spam": {"accuracy": 0.98, "f1": {"spam": 0.92}},
    "har-subset": {"accuracy": 0.90},
    "digits-rows": {"accuracy": 0.95},
}


def bow_baseline(recipe: str, data_dir: str, overrides: list[str]) -> dict[str, Any]:
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
    task = get_task(config.task)(config, Path(data_dir), torch.device("cpu"))
    task.prepare()
    d = config.data
    def grams(text: str) -> list[str]:
        words = tokenize(text, d.lowercase, d.digits)
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    vec = CountVectorizer(analyzer=grams, binary=True)
    xtr = vec.fit_transform(task.texts["train"])
    best: tuple[float, float, Any] | None = None
    for c in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if d.balance != "none" else None)
        clf.fit(xtr, task.targets["train"])
        valid = classification_report(task.targets["valid"], clf.predict(vec.transform(task.texts["valid"])),
                                      task.labels)["macro_f1"]
        if best is None or valid > best[0]:
            best = (valid, c, clf)
    assert best is not None
    pred = best[2].predict(vec.transform(task.texts["test"]))
    report = classification_report(task.targets["test"], np.asarray(pred), task.labels)
    return {"model": "bag-of-words (1-2 grams) logistic regression", "C": best[1], "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"], "f1": report["f1"], "examples": int(task.targets["test"].size)}


def run_recipe(recipe: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    out = root / recipe
    cmd = [sys.executable, "-m", "rnnkit", "train", recipe, "--data-dir", args.data_dir, "--out", str(out),
           "--json", "--quiet", "--set", "train.tensorboard=false"]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    summary, wall = train_summary(cmd, recipe)
    report = subprocess.run([sys.executable, "-m", "rnnkit", "classify", str(out), "--report", "--json"],
                            capture_output=True, text=True)
    png = json.loads(report.stdout)["png"] if report.returncode == 0 else None
    test = summary.get("test", {})
    result: dict[str, Any] = {
        "recipe": recipe, "run": str(out), "wall_s": round(wall, 1), "train_s": summary["wall_s"],
        "stopped": summary["stopped"], "epochs": summary["epoch"], "steps": summary["step"],
        "valid_macro_f1": summary.get("valid_best", {}).get("macro_f1"),
        "test": {k: test.get(k) for k in ("accuracy", "macro_f1", "loss", "f1", "class_accuracy", "confusion",
                                          "examples", "balance")},
        "confusion_png": png,
    }
    target = TARGETS.get(recipe)
    if target:
        ok = test.get("accuracy", 0) >= target["accuracy"] and all(
            test.get("f1", {}).get(k, 0) >= v for k, v in target.get("f1", {}).items())
        result["target"], result["target_met"] = target, ok
    if recipe in ("sentiment", "sms-spam"):
        result["baseline"] = bow_baseline(recipe, args.data_dir, args.overrides)
    return result


def _row(r: dict[str, Any]) -> str:
    t = r["test"]
    f1 = t.get("f1") or {}
    extra = f"spam F1 {f1['spam']:.3f}" if "spam" in f1 else ""
    if "baseline" in r:
        b = r["baseline"]
        extra = (extra + "; " if extra else "") + f"BoW LR acc {b['accuracy']:.2%} / F1 {b['macro_f1']:.3f}"
    met = {True: "yes", False: "NO"}.get(r.get("target_met"), "-")
    return (f"{r['recipe']:<12} {t['accuracy']:>8.2%} {t['macro_f1']:>8.4f} {t['examples']:>5} {r['epochs']:>6} "
            f"{r['wall_s']:>7.0f}  {met:<6} {extra}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", default=RECIPES)
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--out-root", help="parent of the run directories (default: runs/bench-classify-TIMESTAMP)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--max-time", type=float, help="time budget per recipe in seconds")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    root = Path(args.out_root or f"runs/bench-classify-{time.strftime('%Y%m%d-%H%M%S')}")
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for recipe in args.recipes:
        results.append(run_recipe(recipe, args, root))
        print(f"done: {recipe} ({results[-1]['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    print(f"{'recipe':<12} {'test acc':>8} {'macro F1':>8} {'n':>5} {'epochs':>6} {'wall s':>7}  {'target':<6} notes")
    for r in results:
        print(_row(r))
    out = {"results": results, "targets": TARGETS, "overrides": args.overrides, "seed": args.seed}
    path = Path(args.json_out) if args.json_out else root / "benchmark.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    print(f"result: {path}", file=sys.stderr)
    return 0 if all(r.get("target_met", True) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

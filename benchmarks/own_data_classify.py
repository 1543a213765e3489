"""Time-series classification with the task's defaults on data sets no recipe was tuned on, against the field's
simple baselines, each on the data set's official train/test split.

    python benchmarks/own_data_classify.py [--data DIR] [--cases a,b,...] [--bundled] [--threads 2]
        [--out-root DIR] [--json-out FILE] [--set k=v ...]

Every case is a pair DIR/NAME-train.csv, DIR/NAME-test.csv in the long layout (``id,label,step,<channels>``; the
shared data directory's ucr-uea/ holds ItalyPowerDemand, ArrowHead and JapaneseVowels). For each, exactly what a
user types, in a fresh process:

    rnnkit train sequence-classify --set data.path=TRAIN.csv --set data.test=TEST.csv --out RUN --json
    rnnkit eval RUN --split test --json        # -> accuracy, examples (= series in TEST.csv)

timed (wall clock and the child's CPU seconds: on a shared machine the CPU time is the figure that travels) with
the load average recorded. Beside it, on the same split: scikit-learn's RandomForest (500 trees on the raw steps,
series padded with their last value; mean of 3 seeds) and sktime's MiniRocket + ridge (MiniRocketMultivariate
for several channels or unequal lengths, padded likewise) when sktime is installed (the ``peers`` extra).
``--bundled`` adds the UCR/UEA sets that ship inside an installed sktime (written to long CSVs first), so the
defaults are checked beyond the three public cases. Prints a table and writes the figures with their provenance
(benchmarks/_results.py) to --json-out (default benchmarks/results/own-data-classify.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _results import RESULTS, Provenance, write_result

CASES = ["italypowerdemand", "arrowhead", "japanesevowels"]
# sets bundled with sktime (sktime/datasets/data) besides the three above: loader name -> case name. ACSF1 (1,460
# steps) and PLAID (unequal lengths up to 1,344) are the long ones: the defaults' time cap at work
BUNDLED = {
    "gunpoint": "GunPoint",
    "basic_motions": "BasicMotions",
    "osuleaf": "OSULeaf",
    "acsf1": "ACSF1",
    "plaid": "PLAID",
}
RF_SEEDS = (0, 1, 2)


def default_data() -> Path:
    """The ucr-uea data set through rnnkit's registry (the mirror, the cache, checksums checked)."""
    from rnnkit import datasets
    from rnnkit.errors import UserError

    try:
        return datasets.get("ucr-uea")
    except UserError as e:  # no mirror, no cache: say what to pass, as the command line would
        raise SystemExit(f"own_data_classify.py: {e} (or pass --data DIR)") from None


def read_long(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The benchmark's own reader (kept apart from rnnkit's so the baselines do not share its bugs)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    series: dict[str, tuple[str, list[tuple[float, list[float]]]]] = {}
    for r in rows[1:]:
        series.setdefault(r[0], (r[1], []))[1].append((float(r[2]), [float(v) for v in r[3:]]))
    xs = [np.array([v for _, v in sorted(steps)]) for _, steps in series.values()]
    return xs, [lab for lab, _ in series.values()]


def write_long(path: Path, xs: list[np.ndarray], ys: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["id", "label", "step"] + (["value"] if xs[0].shape[1] == 1 else [f"c{j}" for j in range(xs[0].shape[1])])
        )
        for i, (x, y) in enumerate(zip(xs, ys)):
            for t, row in enumerate(x):
                w.writerow([i, y, t, *(repr(float(v)) for v in row)])


def padded(xs: list[np.ndarray], steps: int) -> np.ndarray:
    """(n, channels, steps): each series padded with its last value (or cut) to ``steps``."""
    out = np.empty((len(xs), xs[0].shape[1], steps))
    for i, x in enumerate(xs):
        x = x[:steps]
        out[i] = np.concatenate([x, np.repeat(x[-1:], steps - len(x), axis=0)]).T
    return out


def baselines(train: Path, test: Path) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier

    xs, ys = read_long(train)
    xt, yt = read_long(test)
    steps = max(len(x) for x in xs + xt)
    a, b = padded(xs, steps), padded(xt, steps)
    out: dict[str, Any] = {}
    t0 = time.process_time()
    accs = []
    for seed in RF_SEEDS:
        rf = RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=1).fit(a.reshape(len(a), -1), ys)
        accs.append(float((rf.predict(b.reshape(len(b), -1)) == np.array(yt)).mean()))
    out["random_forest"] = {"accuracy": float(np.mean(accs)), "per_seed": accs, "cpu_s": time.process_time() - t0}
    try:
        from sklearn.linear_model import RidgeClassifierCV
        from sktime.transformations.panel.rocket import MiniRocket, MiniRocketMultivariate

        # sktime checks MiniRocket's own dependency (numba) only when one is built
        rocket = (MiniRocket if a.shape[1] == 1 else MiniRocketMultivariate)(random_state=0)
    except ImportError as e:
        note = f"not installed: {e.name} ('pip install rnnkit[classify-peers]')"
        out["minirocket"] = {"accuracy": None, "note": note}
        return out
    t0 = time.process_time()
    fa = rocket.fit_transform(a)
    ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(fa, ys)
    acc = float((ridge.predict(rocket.transform(b)) == np.array(yt)).mean())
    out["minirocket"] = {"accuracy": acc, "cpu_s": time.process_time() - t0}
    return out


def rnnkit_case(name: str, train: Path, test: Path, out: Path, threads: int, sets: list[str]) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    run = out / name
    cmd = [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        "sequence-classify",
        "--set",
        f"data.path={train}",
        "--set",
        f"data.test={test}",
        "--out",
        str(run),
        "--json",
        "--set",
        f"train.threads={threads}",
    ]
    for kv in sets:
        cmd += ["--set", kv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{name}: training failed (exit {proc.returncode})")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    ev = subprocess.run(
        [sys.executable, "-m", "rnnkit", "eval", str(run), "--split", "test", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    test_metrics = json.loads(ev.stdout.strip().splitlines()[-1])
    chosen = json.loads((run / "run.json").read_text()).get("chosen", {})
    return {
        "accuracy": test_metrics["accuracy"],
        "macro_f1": test_metrics["macro_f1"],
        "examples": test_metrics["examples"],
        "wall_s": round(wall, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "load_avg": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "steps": summary.get("step"),
        "stopped": summary.get("stopped"),
        "valid": {k: summary.get("valid", {}).get(k) for k in ("accuracy", "macro_f1", "loss")},
        "chosen": {k: v["value"] for k, v in chosen.items()},
        "command": " ".join(cmd[2:]),
    }


def bundled_cases(folder: Path) -> dict[str, tuple[Path, Path]]:
    """Write the sets bundled in sktime as long CSVs; name -> (train, test). None when sktime is absent."""
    try:
        from sktime import datasets
    except ImportError:
        print("--bundled: sktime is not installed; skipped", file=sys.stderr)
        return {}
    out = {}
    for loader, name in BUNDLED.items():
        fn = getattr(datasets, f"load_{loader}", None)
        if fn is None:
            continue
        parts = {}
        for split in ("train", "test"):
            x, y = fn(split=split, return_type="nested_univ")
            xs = [
                np.stack([np.asarray(x.iloc[i, j], dtype=float) for j in range(x.shape[1])], 1) for i in range(len(x))
            ]
            path = folder / f"{name.lower()}-{split}.csv"
            write_long(path, xs, [str(v) for v in y])
            parts[split] = path
        out[name.lower()] = (parts["train"], parts["test"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=None, help="folder of NAME-{train,test}.csv (default: the registry's ucr-uea)"
    )
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--bundled", action="store_true", help="also the sets bundled with an installed sktime")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-root", type=Path, default=Path("runs/own-data-classify"))
    ap.add_argument("--json-out", type=Path, default=RESULTS / "own-data-classify.json")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="k=v passed to rnnkit train")
    args = ap.parse_args()
    args.out_root.mkdir(parents=True, exist_ok=True)
    if args.data is None:
        args.data = default_data()
    cases = {c: (args.data / f"{c}-train.csv", args.data / f"{c}-test.csv") for c in args.cases.split(",") if c}
    if args.bundled:
        folder = args.out_root / "bundled-data"
        folder.mkdir(exist_ok=True)
        cases.update({k: v for k, v in bundled_cases(folder).items() if k not in cases})
    prov = Provenance.start(data_dir=args.data, threads=args.threads)
    rows = {}
    for name, (train, test) in cases.items():
        print(f"{name}: training...", file=sys.stderr, flush=True)
        rows[name] = {
            "rnnkit": rnnkit_case(name, train, test, args.out_root, args.threads, args.sets),
            **baselines(train, test),
        }
    header = "| case | rnnkit defaults | RandomForest | MiniRocket | wall s | CPU s | load | chosen |"
    print(header + "\n|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        k, mr = r["rnnkit"], r["minirocket"]["accuracy"]
        chosen = ", ".join(f"{a}={b}" for a, b in k["chosen"].items() if a.startswith(("data.folds", "model.filters")))
        print(
            f"| {name} | {k['accuracy']:.3f} | {r['random_forest']['accuracy']:.3f} | "
            f"{'-' if mr is None else f'{mr:.3f}'} | {k['wall_s']} | {k['cpu_s']} | {k['load_avg'][0]} | {chosen} |"
        )
    path = write_result(args.json_out, "own-data-classify", {"cases": rows}, prov)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Train a classification recipe to the end and publish its test figures (full MNIST, the seed systems).

    python benchmarks/train_recipe.py mnist-rows [--set k=v ...] [--seed N] [--threads 1] [--data-dir DIR]
        [--out RUN_DIR] [--label TEXT] [--seed-figure TEXT] [--json-out FILE]

Runs `rnnkit train RECIPE --json` (data through rnnkit's registry: set RNNKIT_DATA_MIRROR or let it download),
then writes the test accuracy and macro F1 of the best-validation checkpoint, the best validation accuracy, the
validation accuracy after every epoch, the steps, epochs and wall time, with the provenance of
benchmarks/_results.py, to --json-out (default RUN_DIR/benchmark.json). One seed per run: seeds are separate runs
(`--seed`), each its own file, so a long run that is stopped loses only itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _results import Provenance, write_result
from _train import data_flag, train_summary


def recipe_config(recipe: str, overrides: list[str]):  # noqa: ANN201 - rnnkit's config object
    from rnnkit.config import parse_overrides
    from rnnkit.errors import UserError
    from rnnkit.tasks.recipes import load_recipe

    try:
        return load_recipe(recipe, parse_overrides(overrides))
    except UserError as e:
        raise SystemExit(f"train_recipe.py: {e}") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--out")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--seed", type=int, help="train.seed (default: the recipe's)")
    ap.add_argument("--threads", type=int, default=1, help="train.threads (default: %(default)s)")
    ap.add_argument("--label", help="what the run is, in words (default: the recipe's description)")
    ap.add_argument("--seed-figure", help="the published figure this run is compared with, in words")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (exactly: a stopped run loses only its current "
        "epoch); the figures cover the whole run",
    )
    ap.add_argument("--json-out")
    args = ap.parse_args()
    overrides = [*args.overrides, f"train.threads={args.threads}"]
    config = recipe_config(args.recipe, overrides)
    seed = args.seed if args.seed is not None else int(config.train.seed)
    out = Path(args.out or f"runs/bench-{args.recipe}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.resume:  # the run's own config continues from its last checkpoint
        cmd = [sys.executable, "-m", "rnnkit", "train", "--resume", str(out), *data_flag(args.data_dir)]
        cmd += ["--json", "--quiet"]
    else:
        cmd = [sys.executable, "-m", "rnnkit", "train", args.recipe, *data_flag(args.data_dir), "--out", str(out)]
        cmd += ["--json", "--quiet", "--seed", str(seed)]
        for o in overrides:
            cmd += ["--set", o]
    prov = Provenance.start(seeds=[seed], data_dir=args.data_dir, threads=args.threads)
    summary, wall = train_summary(cmd, args.recipe)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    valids = [r for r in records if r.get("split") == "valid"]
    test, best = summary["test"], summary.get("valid_best") or {}
    data = json.loads((out / "run.json").read_text()).get("data", {})
    result = {
        "recipe": args.recipe,
        "overrides": args.overrides,
        "set_up": args.label or " ".join((config.description or args.recipe).split()),
        "split": f"{best.get('examples', 0):,} validation / {test['examples']:,} test examples",
        "data": {k: {"dataset": v.get("dataset"), "source": v.get("source")} for k, v in data.items()},
        "test": {k: test[k] for k in ("accuracy", "macro_f1", "loss", "examples")},
        "valid_best": {k: best.get(k) for k in ("accuracy", "macro_f1", "examples")},
        "validations": [{"step": r["step"], "epoch": r["epoch"], "accuracy": r["accuracy"]} for r in valids],
        "steps": summary.get("step"),
        "epochs": summary.get("epoch"),
        "stopped": summary.get("stopped"),
        "wall_s": round(wall, 1),
        "resumed": args.resume,  # wall_s is then this last segment's
        "seed_figure": args.seed_figure,
    }
    print(
        f"{args.recipe}: test accuracy {test['accuracy']:.4f} (macro F1 {test['macro_f1']:.4f}, "
        f"{test['examples']:,} examples), best valid {best.get('accuracy', float('nan')):.4f}; "
        f"{summary.get('step')} steps, stopped by {summary.get('stopped')}, wall {wall / 60:.1f} min"
    )
    path = write_result(args.json_out or out / "benchmark.json", "train", result, prov)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

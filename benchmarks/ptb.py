"""Train a recipe to completion and report validation/test perplexity and wall time.

    python benchmarks/ptb.py ptb-small [--data-dir DIR] [--out RUN_DIR] [--set k=v ...] [--json-out FILE]

Prints a table (per validation, normally once an epoch: step, epoch, lr, train ppl and tokens/s since the previous
validation, valid ppl) and writes the figures with their provenance (benchmarks/_results.py) to --json-out
(default RUN_DIR/benchmark.json; published files: benchmarks/results/RECIPE*.json). The published figures from
the paper the recipe reproduces are printed alongside for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _results import Provenance, write_result
from _train import data_flag, train_summary

PUBLISHED = {  # test perplexity reported by Zaremba et al. 2014 (and the seed notebook for small)
    "ptb-small": {"zaremba_test_ppl": 114.5, "notebook_test_ppl": 118.0},
    "ptb-notebook": {"notebook_test_ppl": 118.0},  # the seed notebook's own model (256 -> 128, batch 60)
    "ptb-medium": {"zaremba_test_ppl": 82.7},
    "ptb-large": {"zaremba_test_ppl": 78.4},
}


def seed_and_threads(recipe: str, overrides: list[str]) -> tuple[int, int | None]:
    """The run's train.seed and train.threads (None when 0: the provenance then reads OMP_NUM_THREADS)."""
    from rnnkit.config import parse_overrides
    from rnnkit.errors import UserError
    from rnnkit.tasks.recipes import load_recipe

    try:
        train = load_recipe(recipe, parse_overrides(overrides)).train
    except UserError as e:
        raise SystemExit(f"ptb.py: {e}") from None
    return int(train.seed), (int(train.threads) or None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--out")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--max-epochs", type=int)
    ap.add_argument("--max-time", type=float)
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (exactly: a stopped run loses only its current "
        "epoch); the figures cover the whole run",
    )
    ap.add_argument("--json-out")
    ap.add_argument("--seed", type=int, help="train.seed (default: the recipe's)")
    args = ap.parse_args()
    out = Path(args.out or f"runs/bench-{args.recipe}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.resume:  # the run's own config (recipe, overrides, budget) continues; only the data folder is given
        cmd = [sys.executable, "-m", "rnnkit", "train", "--resume", str(out), *data_flag(args.data_dir)]
        cmd += ["--json", "--quiet"]
    else:
        cmd = [sys.executable, "-m", "rnnkit", "train", args.recipe, *data_flag(args.data_dir), "--out", str(out)]
        cmd += ["--json", "--quiet"]
        for o in args.overrides:
            cmd += ["--set", o]
        for flag in ("max_epochs", "max_time", "seed"):
            if getattr(args, flag) is not None:
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    seed, threads = seed_and_threads(args.recipe, args.overrides)
    prov = Provenance.start(
        seeds=[args.seed if args.seed is not None else seed], data_dir=args.data_dir, threads=threads
    )
    summary, wall = train_summary(cmd, args.recipe)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    print(f"{'step':>6} {'epoch':>6} {'lr':>8} {'train ppl':>10} {'valid ppl':>10} {'tokens/s':>9}")
    epochs = []
    prev = 0
    for r in records:
        if r.get("split") != "valid":
            continue
        # the training windows logged since the previous validation (a validation may fall inside an epoch)
        train = [t for t in records if "split" not in t and prev < t["step"] <= r["step"]]
        prev = r["step"]
        tppl = math.exp(sum(t["loss"] for t in train) / len(train)) if train else None
        rate = sum(t["tokens_per_s"] for t in train) / len(train) if train else None
        lr = train[-1]["lr"] if train else None
        epoch = train[-1]["epoch"] if train else r["epoch"]
        epochs.append(
            {
                "step": r["step"],
                "epoch": epoch,
                "lr": lr,
                "train_ppl": tppl,
                "valid_ppl": r["ppl"],
                "tokens_per_s": rate,
            }
        )
        shown = [
            f"{x:>{w}{f}}" if x is not None else f"{'-':>{w}}"
            for x, w, f in ((lr, 8, ".4g"), (tppl, 10, ".1f"), (r["ppl"], 10, ".1f"), (rate, 9, ",.0f"))
        ]
        print(f"{r['step']:>6} {epoch:>6.2f} " + " ".join(shown))
    result = {
        "recipe": args.recipe,
        "run": str(out),
        "wall_s": round(wall, 1),
        "stopped": summary.get("stopped"),
        "steps": summary.get("step"),
        "validations": epochs,
        "valid_ppl": summary.get("valid_best", {}).get("ppl"),
        "test_ppl": summary.get("test", {}).get("ppl"),
        "published": PUBLISHED.get(args.recipe, {}),
        "overrides": args.overrides,
        "resumed": args.resume,  # wall_s is then this last segment's
    }
    print(
        f"\n{args.recipe}: valid ppl {result['valid_ppl']:.1f}, test ppl {result['test_ppl']:.1f}, "
        f"wall {wall / 60:.1f} min; published: {result['published']}"
    )
    path = write_result(args.json_out or out / "benchmark.json", "ptb", result, prov)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a recipe to completion and report validation/test perplexity and wall time.

    python benchmarks/ptb.py ptb-small [--data-dir DIR] [--out RUN_DIR] [--set k=v ...] [--json-out FILE]

Prints a table (per epoch: lr, train ppl, valid ppl, tokens/s, elapsed) and writes a JSON result beside the run.
The published figures from the paper the recipe reproduces are printed alongside for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _train import train_summary

PUBLISHED = {  # test perplexity reported by Zaremba et al. 2014 (and the seed notebook for small)
    "ptb-small": {"zaremba_test_ppl": 114.5, "notebook_test_ppl": 118.0},
    "ptb-notebook": {"notebook_test_ppl": 118.0},  # the seed notebook's own model (256 -> 128, batch 60)
    "ptb-medium": {"zaremba_test_ppl": 82.7},
    "ptb-large": {"zaremba_test_ppl": 78.4},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--out")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--max-epochs", type=int)
    ap.add_argument("--max-time", type=float)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    out = Path(args.out or f"runs/bench-{args.recipe}-{time.strftime('%Y%m%d-%H%M%S')}")
    cmd = [sys.executable, "-m", "rnnkit", "train", args.recipe, "--data-dir", args.data_dir, "--out", str(out),
           "--json", "--quiet"]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.max_epochs:
        cmd += ["--max-epochs", str(args.max_epochs)]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    summary, wall = train_summary(cmd, args.recipe)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    print(f"{'epoch':>5} {'lr':>8} {'train ppl':>10} {'valid ppl':>10} {'tokens/s':>9}")
    epochs = []
    for r in records:
        if r.get("split") != "valid":
            continue
        train = [t for t in records if "split" not in t and r["epoch"] < t["epoch"] <= r["epoch"] + 1]
        tppl = math.exp(sum(t["loss"] for t in train) / len(train)) if train else float("nan")
        rate = sum(t["tokens_per_s"] for t in train) / len(train) if train else float("nan")
        lr = train[-1]["lr"] if train else float("nan")
        epochs.append({"epoch": r["epoch"] + 1, "lr": lr, "train_ppl": tppl, "valid_ppl": r["ppl"],
                       "tokens_per_s": rate})
        print(f"{r['epoch'] + 1:>5} {lr:>8.4g} {tppl:>10.1f} {r['ppl']:>10.1f} {rate:>9,.0f}")
    result = {"recipe": args.recipe, "run": str(out), "wall_s": round(wall, 1), "epochs": epochs,
              "valid_ppl": summary.get("valid_best", {}).get("ppl"), "test_ppl": summary.get("test", {}).get("ppl"),
              "published": PUBLISHED.get(args.recipe, {}), "overrides": args.overrides}
    print(f"\n{args.recipe}: valid ppl {result['valid_ppl']:.1f}, test ppl {result['test_ppl']:.1f}, "
          f"wall {wall / 60:.1f} min; published: {result['published']}")
    path = Path(args.json_out) if args.json_out else out / "benchmark.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

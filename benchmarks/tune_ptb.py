"""A TPE search on ptb-small under a short budget, against the recipe's own configuration under the same budget.

    python benchmarks/tune_ptb.py [--data-dir DIR] [--out DIR] [--trials 24] [--max-steps 300]
                                  [--train-fraction 0.25] [--sampler tpe] [--json-out FILE]

Every trial trains ptb-small for --max-steps optimiser steps on the first --train-fraction of the PTB training
text and is scored by its best validation perplexity (the whole validation set). Trial 0 is the recipe's own
values of the searched fields (`rnnkit tune --baseline`, i.e. study.enqueue_trial), so "the search beats the
default" compares like with like: same steps, same data, same validation. Run the same command again to add
trials to the study (it lives in OUT/study.db); `rnnkit tune report OUT` draws the plots. The figures and their
provenance (benchmarks/_results.py) go to --json-out (default OUT/bench.json; the published file is
benchmarks/results/tune-ptb.json).

A 24-trial study takes roughly 24 x (300 steps + 3 validations): about 40 minutes on 2 CPU cores. A quick
check of the script (minutes):
    python benchmarks/tune_ptb.py --trials 3 --max-steps 20 --train-fraction 0.05 --out runs/tune-ptb-check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _results import Provenance, write_result
from _train import data_flag

# Each range contains the recipe's value (lr 1.0, hidden 200, dropout 0, bptt 20, init 0.1, batch 20), so the
# baseline trial lies inside the space.
SPACE = """\
[optim.lr]            # ptb-small sums the loss over the bptt steps, so SGD's lr ~1 is the scale
type = "float"
low = 0.2
high = 4.0
log = true

[model.hidden]
type = "int"
low = 100
high = 400
step = 50

[model.dropout]
type = "float"
low = 0.0
high = 0.5

[data.bptt]
type = "int"
low = 10
high = 40
step = 5

[model.init_scale]
type = "float"
low = 0.02
high = 0.2
log = true

[train.batch_size]
type = "categorical"
choices = [10, 20, 32]
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--out", default="runs/tune-ptb-bench")
    ap.add_argument("--trials", type=int, default=24, help="trials in this invocation (default: %(default)s)")
    ap.add_argument("--max-steps", type=int, default=300, help="optimiser steps per trial (default: %(default)s)")
    ap.add_argument(
        "--train-fraction",
        type=float,
        default=0.25,
        help="share of the PTB training text each trial trains on (default: %(default)s)",
    )
    ap.add_argument("--sampler", default="tpe", choices=["tpe", "gp", "random"])
    ap.add_argument("--pruner", default="median", choices=["none", "median", "halving", "hyperband"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = out / "space.toml"
    space.write_text(SPACE)
    evals = max(1, args.max_steps // 3)  # 3 validations a trial (each reads the whole validation text)
    cmd = [
        sys.executable,
        "-m",
        "rnnkit",
        "tune",
        "ptb-small",
        "--space",
        str(space),
        "--trials",
        str(args.trials),
        "--sampler",
        args.sampler,
        "--pruner",
        args.pruner,
        "--baseline",
        "--seed",
        str(args.seed),
        "--startup-trials",
        str(min(10, max(3, args.trials // 3))),
        "--max-steps",
        str(args.max_steps),
        *data_flag(args.data_dir),
        "--out",
        str(out),
        "--set",
        f"data.train_fraction={args.train_fraction}",
        "--set",
        f"train.eval_every={evals}",
        "--set",
        "train.tensorboard=false",
        "--set",
        f"train.log_every={max(1, evals // 2)}",
    ]
    for o in args.overrides:
        cmd += ["--set", o]
    print("$ " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    threads = next((int(o.split("=", 1)[1]) for o in args.overrides if o.startswith("train.threads=")), None)
    prov = Provenance.start(seeds=[args.seed], data_dir=args.data_dir, threads=threads)  # the sampler's seed
    t0 = time.time()
    proc = subprocess.run(cmd, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wall = time.time() - t0
    if proc.returncode != 0:
        return proc.returncode
    rep_proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", "tune", "report", str(out), "--json"], capture_output=True, text=True
    )
    if rep_proc.returncode != 0:
        sys.stderr.write(rep_proc.stderr)
        return rep_proc.returncode
    rep = json.loads(rep_proc.stdout)
    base = [t for t in rep["trials"] if t.get("baseline")]
    baseline = base[0] if base else None
    result = {
        "recipe": "ptb-small",
        "sampler": args.sampler,
        "pruner": args.pruner,
        "max_steps": args.max_steps,
        "train_fraction": args.train_fraction,
        "n_trials": rep["n_trials"],
        "n_pruned": rep["n_pruned"],
        "n_failed": rep["n_failed"],
        "wall_s": round(wall, 1),
        "baseline_valid_ppl": baseline["value"] if baseline and baseline["state"] == "complete" else None,
        "baseline_params": baseline["params"] if baseline else None,
        "best_valid_ppl": rep["best_value"],
        "best_trial": rep["best_trial"],
        "best_params": rep["best_params"],
        "best_run": rep["best_run"],
        "plots": rep.get("plots", {}),
    }
    b, best = result["baseline_valid_ppl"], result["best_valid_ppl"]
    result["beats_default"] = bool(b is not None and best is not None and best < b)
    result["improvement"] = round(1 - best / b, 4) if b and best else None
    print(
        f"trials: {rep['n_trials']} complete, {rep['n_pruned']} pruned, {rep['n_failed']} failed "
        f"({wall:.0f} s; {args.max_steps} steps each on {args.train_fraction:g} of PTB train)"
    )
    print(
        f"recipe default (trial {baseline['number'] if baseline else '-'}): valid ppl {b:.2f}"
        if b is not None
        else "recipe default: not complete"
    )
    if best is not None:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rep["best_params"].items())
        print(f"best (trial {rep['best_trial']}): valid ppl {best:.2f}  {params}")
        if b is not None:
            print(
                f"beats the default under the same budget: {'yes' if result['beats_default'] else 'no'} "
                f"(perplexity {best / b - 1:+.1%})"
            )
    path = write_result(args.json_out or out / "bench.json", "tune_ptb", result, prov)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

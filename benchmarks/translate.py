"""Train a Spanish->English recipe on the CPU within a time budget; report test BLEU (beam vs greedy), chrF,
wall time, and the translations of the book's example sentences.

    python benchmarks/translate.py [spa-eng-small] --data-dir ../shared/data [--minutes 60] [--threads 2]
                                   [--out RUN_DIR] [--set k=v ...] [--json-out FILE]

The whole benchmark (data preparation, training, the test evaluation with beam and greedy decoding, the
examples) is kept inside ``--minutes``: training gets the budget less ``--reserve`` seconds for evaluation.
The target for spa-eng-small: test BLEU >= 25 with beam search, and beam above greedy. The figures and their
provenance (benchmarks/_results.py) go to --json-out (default RUN_DIR/benchmark.json; the published file is
benchmarks/results/RECIPE.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _results import Provenance, write_result
from _train import data_flag, train_summary

# (Spanish as the book's readers type it: no accents, no ¿?, expected English)
EXAMPLES = [
    ("Como te llamas", "What's your name"),
    ("Me llamo", "My name is"),
    ("Estoy leyendo un libro", "I am reading a book"),
    ("Como estas", "How are you"),
    ("Estoy bien", "I am good"),
    ("Hablas espanol", "Do you speak Spanish"),
    ("Que hora es", "What time is it"),
    ("Hola", "Hi"),
    ("Adios", "Goodbye"),
    ("Si", "Yes"),
    ("No", "No"),
]
TARGET_BLEU = 25.0


def recipe_seed(recipe: str, overrides: list[str]) -> int:
    """The train.seed the run will use (the recipe's, after --set)."""
    from rnnkit.config import parse_overrides
    from rnnkit.errors import UserError
    from rnnkit.tasks.recipes import load_recipe

    try:
        return int(load_recipe(recipe, parse_overrides(overrides)).train.seed)
    except UserError as e:
        raise SystemExit(f"translate.py: {e}") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", default="spa-eng-small")
    ap.add_argument("--data-dir", help="a folder laid out like the data cache (default: rnnkit's registry)")
    ap.add_argument("--out")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--minutes", type=float, default=60.0, help="budget for everything (default: %(default)s)")
    ap.add_argument(
        "--reserve",
        type=float,
        default=600.0,
        help="seconds of the budget kept for the final evaluation (default: %(default)s)",
    )
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, help="train.seed (default: the recipe's)")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    out = Path(args.out or f"runs/bench-{args.recipe}-{time.strftime('%Y%m%d-%H%M%S')}")
    train_time = max(60.0, args.minutes * 60 - args.reserve)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    cmd = [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        args.recipe,
        *data_flag(args.data_dir),
        "--out",
        str(out),
        "--device",
        args.device,
        "--max-time",
        str(train_time),
        "--set",
        f"train.threads={args.threads}",
        "--json",
        "--quiet",
    ]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    prov = Provenance.start(
        seeds=[args.seed if args.seed is not None else recipe_seed(args.recipe, args.overrides)],
        data_dir=args.data_dir,
        threads=args.threads,
    )
    print(
        f"training {args.recipe} for at most {train_time / 60:.0f} min on {args.device} ({args.threads} threads) "
        f"into {out}",
        flush=True,
    )
    t0 = time.time()
    summary, train_wall = train_summary(cmd, args.recipe, env)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    print(
        f"\n{'epoch':>6} {'step':>6} {'train loss':>10} {'valid loss':>10} {'valid BLEU (greedy)':>19} {'tokens/s':>9}"
    )
    epochs = []
    for r in records:
        if r.get("split") != "valid" or (epochs and epochs[-1]["step"] == r["step"]):
            continue
        train = [t for t in records if "split" not in t and t["step"] <= r["step"]][-5:]
        loss = sum(t["loss"] for t in train) / len(train) if train else float("nan")
        rate = sum(t["tokens_per_s"] for t in train) / len(train) if train else float("nan")
        epochs.append(
            {
                "step": r["step"],
                "epoch": r["epoch"],
                "train_loss": loss,
                "valid_loss": r["loss"],
                "valid_bleu_greedy": r.get("bleu_greedy"),
                "tokens_per_s": rate,
            }
        )
        print(
            f"{r['epoch'] + 1:>6} {r['step']:>6} {loss:>10.3f} {r['loss']:>10.3f} {r.get('bleu_greedy', 0):>19.2f} "
            f"{rate:>9,.0f}"
        )

    import torch

    torch.set_num_threads(args.threads)
    from rnnkit.runs import load_run

    loaded = load_run(out, "best", args.device)
    test = summary.get("test") or loaded.task.evaluate(loaded.model, "test")
    t1 = time.time()
    beam = loaded.task.translate(loaded.model, [s for s, _ in EXAMPLES])
    greedy = loaded.task.translate(loaded.model, [s for s, _ in EXAMPLES], beam=1)
    examples = [
        {"spanish": s, "expected": e, "beam": b["translation"], "greedy": g["translation"]}
        for (s, e), b, g in zip(EXAMPLES, beam, greedy)
    ]
    total_wall = time.time() - t0
    width = max(len(s) for s, _ in EXAMPLES)
    print(f"\n{'input':<{width}}  {'expected':<22} {'beam':<28} greedy")
    for x in examples:
        print(f"{x['spanish']:<{width}}  {x['expected']:<22} {x['beam']:<28} {x['greedy']}")

    bleu, bleu_greedy = test.get("bleu"), test.get("bleu_greedy")
    ok = bleu is not None and bleu >= TARGET_BLEU and bleu > bleu_greedy
    result = {
        "recipe": args.recipe,
        "run": str(out),
        "device": args.device,
        "threads": args.threads,
        "stopped": summary.get("stopped"),
        "steps": summary.get("step"),
        "epochs_done": summary.get("epoch"),
        "train_wall_s": round(train_wall, 1),
        "total_wall_s": round(total_wall, 1),
        "examples_wall_s": round(time.time() - t1, 2),
        "test": {
            k: test.get(k)
            for k in ("bleu", "bleu_greedy", "chrf", "chrf_greedy", "loss", "ppl", "beam", "sentences", "references")
        },
        "valid_best": summary.get("valid_best"),
        "epochs": epochs,
        "examples": examples,
        "target": {"bleu_beam_at_least": TARGET_BLEU, "beam_above_greedy": True, "met": ok},
        "overrides": args.overrides,
    }
    print(
        f"\n{args.recipe}: test BLEU beam({test.get('beam')}) {bleu:.2f}, greedy {bleu_greedy:.2f}; "
        f"chrF {test.get('chrf'):.2f} / {test.get('chrf_greedy'):.2f}; {test.get('sentences')} test sources; "
        f"{summary.get('step')} steps ({summary.get('stopped')}); wall {total_wall / 60:.1f} min "
        f"(training {train_wall / 60:.1f}); target BLEU >= {TARGET_BLEU:g} and beam > greedy: "
        f"{'met' if ok else 'NOT met'}"
    )
    path = write_result(args.json_out or out / "benchmark.json", "translate", result, prov)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

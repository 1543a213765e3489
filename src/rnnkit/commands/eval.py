"""rnnkit eval: a trained run's metrics on its held-out splits, or on new labelled data (--data FILE)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnkit.commands.common import add_data_dir, add_device, add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a run on valid/test",
        description="Evaluate a run's best checkpoint on its validation and test splits, or with --data FILE on new "
        "labelled data, read with the run's own vocabulary, labels and scalers and scored like its test split. "
        "FILE is in the task's own format: label<TAB>text lines (laid out like the run's data), an .npz of x and y "
        "(sequences), source<TAB>target lines (laid out like the run's training file), a text file (language "
        "models), a CSV of the series laid out like the run's data (forecasters: scored from every origin of it).",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--split", choices=["valid", "test"], help="one split only (default: both)")
    p.add_argument("--data", metavar="FILE", help="score this labelled file instead of the run's splits")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_data_dir(p, default=None)
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    if args.data is not None and args.split is not None:
        raise api.UserError("eval: give --split or --data, not both")
    loaded = api.load(args.run, args.checkpoint, args.device or "auto", args.data_dir)
    if args.data is not None:
        metrics = loaded.evaluate(data=Path(args.data))
        if args.json:
            print_json(metrics)
        else:
            print(f"{args.data}: {loaded.format_metrics(metrics)}")
        return 0
    results = {args.split: loaded.evaluate(args.split)} if args.split else loaded.evaluate()
    if args.json:
        print_json(results[args.split] if args.split else results)
        return 0
    for s, m in results.items():
        print(f"{s}: {loaded.format_metrics(m)}")
    return 0

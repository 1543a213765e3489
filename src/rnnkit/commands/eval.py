"""rnnkit eval: a trained run's metrics on its held-out splits."""

from __future__ import annotations

import argparse

from rnnkit.commands.common import add_data_dir, add_device, add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a run on valid/test",
        description="Evaluate a run's best checkpoint on its validation and test splits.",
    )
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--split", choices=["valid", "test"], help="one split only (default: both)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_data_dir(p, default=None)
    add_device(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    loaded = api.load(args.run, args.checkpoint, args.device or "auto", args.data_dir)
    results = {args.split: loaded.evaluate(args.split)} if args.split else loaded.evaluate()
    if args.json:
        print_json(results[args.split] if args.split else results)
        return 0
    for s, m in results.items():
        print(f"{s}: {loaded.format_metrics(m)}")
    return 0

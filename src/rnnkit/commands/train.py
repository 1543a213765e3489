"""rnnkit train: run a recipe into a run directory, or resume one exactly where it stopped.

With ``--nproc N`` (or when started by torchrun) training is data-parallel: see rnnkit.distributed.
Exit status: 0 when training stopped at its budget (or had nothing left to do), 2 for a user error, 130 after a
Ctrl-C (the checkpoint saved, the summary printed as usual).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnkit.api import MAX_COUNT, MAX_SEED, Overrides, cli_number
from rnnkit.commands.common import add_data_dir, add_device, add_json, in_cli_words, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a recipe (or resume a run)",
        description="Train a recipe into a run directory. Every config field can be overridden "
        "with --set section.field=value (sections: data, model, optim, train).",
    )
    p.add_argument("recipe", nargs="?", help="recipe name (see 'rnnkit recipes') or path to a .toml file")
    add_data_dir(p, default=None)
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/RECIPE-TIMESTAMP)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set model.hidden=650 (repeatable)",
    )
    p.add_argument(
        "--max-steps",
        type=cli_number(int, "--max-steps", ge=1, le=MAX_COUNT),
        metavar="N",
        help="stop after this many optimiser steps in total (>= 1)",
    )
    p.add_argument(
        "--max-time",
        type=cli_number(float, "--max-time", gt=0),
        metavar="SECONDS",
        help="stop after this long (this invocation)",
    )
    p.add_argument(
        "--max-epochs", type=cli_number(int, "--max-epochs", ge=1, le=MAX_COUNT), metavar="N", help="number of epochs"
    )
    p.add_argument(
        "--seed",
        type=cli_number(int, "--seed", ge=0, le=MAX_SEED),
        metavar="N",
        help="random seed (data order, init, dropout)",
    )
    add_device(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint, exactly")
    p.add_argument(
        "--check",
        action="store_true",
        help="check the configuration and build the model (with placeholder vocabularies, no memory), "
        "then exit: no data is read and nothing is written",
    )
    p.add_argument(
        "--nproc",
        type=cli_number(int, "--nproc", ge=1, le=4096),
        metavar="N",
        help="data-parallel training on N local processes (torchrun underneath; NCCL on GPUs, gloo on "
        "CPU); train.batch_size stays the global batch. Multi-node: torchrun ... -m rnnkit train",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines, no progress bar")
    add_json(p)
    p.set_defaults(func=run, arguments={"recipe": "RECIPE"})


def cli_overrides(args: argparse.Namespace) -> Overrides:
    from rnnkit.api import parse_overrides

    out = parse_overrides(args.overrides)
    for flag, key in (
        ("max_steps", "train.max_steps"),
        ("max_time", "train.max_time"),
        ("max_epochs", "train.max_epochs"),
        ("seed", "train.seed"),
        ("device", "train.device"),
    ):
        value = getattr(args, flag)
        if value is not None:
            out.put(key, value, f"--{flag.replace('_', '-')} {value}")
    return out


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    target = {"recipe": args.recipe, "overrides": cli_overrides(args), "resume": args.resume, "data_dir": args.data_dir}
    if args.check:
        result = api.check(**target)
        if args.json:
            print_json(result)
        else:
            built = (
                f"; the model builds ({result['model']}, {result['parameters']:,} parameters)"
                if result["model"]
                else ""
            )
            print(f"{result['recipe']}: configuration OK (task {result['task']}){built}")
        return 0
    from rnnkit.api.text import progress_words

    with progress_words(lambda line: in_cli_words(line, args.arguments)):  # what training says while it runs
        done = api.train(
            **target,
            out=args.out,
            nproc=args.nproc,
            progress=False if args.quiet or args.json else None,
            worker_args=(["--quiet"] if args.quiet else []) + (["--json"] if args.json else []),
        )
    if done.rank or done.launched:  # distributed: the worker of rank 0 prints the summary
        return 0
    summary = done.summary
    for note in done.notes:
        print(f"rnnkit: {in_cli_words(note, args.arguments)}", file=sys.stderr, flush=True)
    if summary.get("note"):  # the task's note, in --json as on the summary's last line
        summary = {**summary, "note": in_cli_words(summary["note"], args.arguments)}
    if args.json:
        print_json(summary)
    else:
        print(_human_summary(summary, [in_cli_words(n, args.arguments) for n in done.notes], done))
    return 130 if summary.get("stopped") == "interrupted" else 0


def _human_summary(summary: dict[str, Any], notes: list[str], run: Any) -> str:
    lines = [f"run: {summary['run']}  ({summary['stopped']}, step {summary['step']}, {summary['wall_s']:.0f} s)"]
    for split in ("valid_best", "test"):
        if summary.get(split):
            name = "valid (best)" if split == "valid_best" else "test"
            lines.append(f"{name}: {run.format_metrics(summary[split])}")
    if not summary.get("valid_best") and summary.get("valid"):
        lines.append(f"valid: {run.format_metrics(summary['valid'])}")
    if summary.get("resume"):
        lines.append(f"resume with: {summary['resume']}")
    if summary.get("note") and summary["note"] not in notes:  # (the notes went to stderr already: once)
        lines.append(f"note: {summary['note']}")
    return "\n".join(lines)

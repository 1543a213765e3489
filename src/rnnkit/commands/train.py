"""rnnkit train: run a recipe into a run directory, or resume one exactly where it stopped."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rnnkit.commands.common import add_data_dir, add_device, add_json, print_json
from rnnkit.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe (or resume a run)",
                       description="Train a recipe into a run directory. Every config field can be overridden "
                                   "with --set section.field=value (sections: data, model, optim, train).")
    p.add_argument("recipe", nargs="?", help="recipe name (see 'rnnkit recipes') or path to a .toml file")
    add_data_dir(p, default=None)
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/RECIPE-TIMESTAMP)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set model.hidden=650 (repeatable)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps in total")
    p.add_argument("--max-time", type=float, metavar="SECONDS", help="stop after this long (this invocation)")
    p.add_argument("--max-epochs", type=int, help="number of epochs")
    p.add_argument("--seed", type=int, help="random seed (data order, init, dropout)")
    add_device(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint, exactly")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines, no progress bar")
    add_json(p)
    p.set_defaults(func=run)


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    from rnnkit.config import parse_overrides

    out = parse_overrides(args.overrides)
    for flag, key in (("max_steps", "train.max_steps"), ("max_time", "train.max_time"),
                      ("max_epochs", "train.max_epochs"), ("seed", "train.seed"), ("device", "train.device")):
        value = getattr(args, flag)
        if value is not None:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from rnnkit.config import load_recipe
    from rnnkit.tasks import get_task
    from rnnkit.train.device import pick_device
    from rnnkit.train.loop import Trainer
    from rnnkit.train.progress import Progress
    from rnnkit.train.rundir import RunDir

    overrides = cli_overrides(args)
    if args.resume:
        run_dir = RunDir(Path(args.resume)).require()
        if not run_dir.last.is_file():
            raise UserError(f"{run_dir.path}: nothing to resume (no checkpoints/last.pt)")
        config = run_dir.read_config(overrides)
        if args.recipe and args.recipe not in (config.recipe, str(run_dir.path)):
            raise UserError(f"{run_dir.path} was trained with recipe {config.recipe!r}, not {args.recipe!r}")
        meta = run_dir.read_meta()
        data_dir = Path(args.data_dir or meta.get("data_dir", "data"))
    else:
        if not args.recipe:
            raise UserError("train: name a recipe (see 'rnnkit recipes') or pass --resume RUN_DIR")
        config = load_recipe(args.recipe, overrides)
        out = Path(args.out) if args.out else Path("runs") / f"{config.recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = RunDir(out)
        if run_dir.last.is_file() or run_dir.best.is_file():
            raise UserError(f"{out} already holds a trained run; continue it with --resume {out} "
                            f"or choose another --out")
        data_dir = Path(args.data_dir or "data")
        meta = {}
    device = pick_device(config.train.device)
    task = get_task(config.task)(config, data_dir, device)
    run_dir.write_config(config)
    import torch

    from rnnkit import __version__

    meta.update({"recipe": config.recipe, "task": config.task, "data_dir": str(data_dir.resolve()),
                 "device": str(device), "rnnkit": __version__, "torch": torch.__version__,
                 "python": platform.python_version(), "threads": torch.get_num_threads(),
                 "command": sys.argv[1:] if sys.argv and sys.argv[0].endswith("rnnkit") else None})
    run_dir.write_meta(meta)
    trainer = Trainer(task, config, run_dir, device, Progress(enabled=None if not args.quiet else False),
                      echo=not args.quiet and not args.json)
    trainer.setup(resume=bool(args.resume))
    summary = trainer.fit()
    if args.json:
        print_json(summary)
    else:
        print(_human_summary(summary, task))
    return 0


def _human_summary(summary: dict[str, Any], task: Any) -> str:
    lines = [f"run: {summary['run']}  ({summary['stopped']}, step {summary['step']}, {summary['wall_s']:.0f} s)"]
    for split in ("valid_best", "test"):
        if summary.get(split):
            name = "valid (best)" if split == "valid_best" else "test"
            lines.append(f"{name}: {task.format_metrics(summary[split])}")
    if not summary.get("valid_best") and summary.get("valid"):
        lines.append(f"valid: {task.format_metrics(summary['valid'])}")
    if summary.get("resume"):
        lines.append(f"resume with: {summary['resume']}")
    return "\n".join(lines)



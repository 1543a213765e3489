"""rnnkit train: run a recipe into a run directory, or resume one exactly where it stopped.

With ``--nproc N`` (or when started by torchrun) training is data-parallel: see rnnkit.distributed.
Exit status: 0 when training stopped at its budget (or had nothing left to do), 2 for a user error, 130 after a
Ctrl-C (the checkpoint saved, the summary printed as usual).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rnnkit.commands.common import add_data_dir, add_device, add_json, print_json
from rnnkit.config import MAX_COUNT, MAX_SEED, Overrides, cli_number
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
    p.add_argument("--max-steps", type=cli_number(int, "--max-steps", ge=1, le=MAX_COUNT), metavar="N",
                   help="stop after this many optimiser steps in total (>= 1)")
    p.add_argument("--max-time", type=cli_number(float, "--max-time", gt=0), metavar="SECONDS",
                   help="stop after this long (this invocation)")
    p.add_argument("--max-epochs", type=cli_number(int, "--max-epochs", ge=1, le=MAX_COUNT), metavar="N",
                   help="number of epochs")
    p.add_argument("--seed", type=cli_number(int, "--seed", ge=0, le=MAX_SEED), metavar="N",
                   help="random seed (data order, init, dropout)")
    add_device(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint, exactly")
    p.add_argument("--check", action="store_true",
                   help="check the configuration and build the model (with placeholder vocabularies, no memory), "
                        "then exit: no data is read and nothing is written")
    p.add_argument("--nproc", type=cli_number(int, "--nproc", ge=1, le=4096), metavar="N",
                   help="data-parallel training on N local processes (torchrun underneath; NCCL on GPUs, gloo on "
                        "CPU); train.batch_size stays the global batch. Multi-node: torchrun ... -m rnnkit train")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines, no progress bar")
    add_json(p)
    p.set_defaults(func=run)


def cli_overrides(args: argparse.Namespace) -> Overrides:
    from rnnkit.config import parse_overrides

    out = parse_overrides(args.overrides)
    for flag, key in (("max_steps", "train.max_steps"), ("max_time", "train.max_time"),
                      ("max_epochs", "train.max_epochs"), ("seed", "train.seed"), ("device", "train.device")):
        value = getattr(args, flag)
        if value is not None:
            out.put(key, value, f"--{flag.replace('_', '-')} {value}")
    return out


def _default_out(recipe: str) -> Path:
    return Path("runs") / f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"


def _worker_argv(args: argparse.Namespace, out: str | None) -> list[str]:
    """This command line again, without --nproc: what each torchrun worker runs."""
    argv = ["train"] + ([args.recipe] if args.recipe else [])
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if out:
        argv += ["--out", out]
    for item in args.overrides:
        argv += ["--set", item]
    for flag in ("max_steps", "max_time", "max_epochs", "seed", "device", "resume"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    return argv + (["--quiet"] if args.quiet else []) + (["--json"] if args.json else [])


def _launch(args: argparse.Namespace) -> int:
    """--nproc N: check what can be checked here (one clear error instead of N), then start the workers."""
    import torch

    from rnnkit.datasets import data_dir_option
    from rnnkit.distributed.launch import launch_local
    from rnnkit.ops.device import pick_device
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.rundir import RunDir

    overrides = cli_overrides(args)
    out = args.out
    if args.resume:
        config = RunDir(Path(args.resume)).require().read_config(overrides)
    else:
        if not args.recipe:
            raise UserError("train: name a recipe (see 'rnnkit recipes') or pass --resume RUN_DIR")
        config = load_recipe(args.recipe, overrides)
        out = out or str(_default_out(config.recipe))  # one name for every rank
    gpus = torch.cuda.device_count()
    if pick_device(config.train.device).type == "cuda" and args.nproc > gpus:
        raise UserError(f"--nproc {args.nproc}: only {gpus} GPU(s) here, and each process needs its own")
    get_task(config.task)(config, data_dir_option(args.data_dir), pick_device("cpu")).shard(0, args.nproc)
    return launch_local(args.nproc, _worker_argv(args, out))


def run(args: argparse.Namespace) -> int:
    from rnnkit import datasets
    from rnnkit.distributed import env_world, init_from_env, shutdown
    from rnnkit.ops.device import pick_device
    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.loop import Trainer
    from rnnkit.train.precision import resolve_precision
    from rnnkit.train.progress import Progress
    from rnnkit.train.rundir import RunDir

    if args.check:
        return check(args)
    if args.nproc and args.nproc > 1 and env_world()[1] == 1:
        return _launch(args)
    overrides = cli_overrides(args)
    if args.resume:
        run_dir = RunDir(Path(args.resume)).require()
        if not run_dir.last.is_file():
            raise UserError(f"{run_dir.path}: nothing to resume (no checkpoints/last.pt)")
        config = run_dir.read_config(overrides)
        if args.recipe and args.recipe not in (config.recipe, str(run_dir.path)):
            raise UserError(f"{run_dir.path} was trained with recipe {config.recipe!r}, not {args.recipe!r}")
        meta = run_dir.read_meta()
        data_dir = datasets.data_dir_option(args.data_dir) if args.data_dir else \
            datasets.data_dir_option(meta.get("data_dir"), recorded=True)
    else:
        if not args.recipe:
            raise UserError("train: name a recipe (see 'rnnkit recipes') or pass --resume RUN_DIR")
        config = load_recipe(args.recipe, overrides)
        out = Path(args.out) if args.out else _default_out(config.recipe)
        run_dir = RunDir(out)
        if run_dir.last.is_file() or run_dir.best.is_file():
            raise UserError(f"{out} already holds a trained run; continue it with --resume {out} "
                            f"or choose another --out")
        data_dir = datasets.data_dir_option(args.data_dir)  # a missing --data-dir fails before anything is written
        meta = {}
    device = pick_device(config.train.device)
    # "auto" becomes the concrete choice in config.toml, so a resume keeps training the same way
    requested = config.train.precision
    config.train.precision, precision_reason = resolve_precision(requested, device)
    dist, device = init_from_env(device)  # a no-op outside torchrun
    trainer = None
    datasets.set_progress(None if not args.quiet and not args.json and dist.is_main else False)  # None: on a TTY
    datasets.drain_log()
    try:
        task = get_task(config.task)(config, data_dir, device)
        import torch

        from rnnkit import __version__

        main = dist.is_main
        trainer = Trainer(task, config, run_dir, device,
                          Progress(enabled=None if not args.quiet and main else False),
                          echo=not args.quiet and not args.json and main, dist=dist)
        # locks the run directory (rank 0), then checks the data and the checkpoint against the configuration;
        # only then are config.toml and run.json (re)written, so a refused resume leaves them as they were
        trainer.setup(resume=bool(args.resume))
        if dist.is_main:
            run_dir.write_config(config)
            meta.setdefault("precision_requested", requested)
            meta.update({"recipe": config.recipe, "task": config.task,
                         "data_dir": str(data_dir.resolve()) if data_dir is not None else None,
                         "device": str(device), "rnnkit": __version__, "torch": torch.__version__,
                         "python": platform.python_version(), "threads": torch.get_num_threads(),
                         "precision": config.train.precision, "precision_reason": precision_reason,
                         "processes": dist.world,
                         "command": sys.argv[1:] if sys.argv and sys.argv[0].endswith("rnnkit") else None})
            # where each data file came from (resolved while the task prepared its data in setup)
            meta["data"] = {**meta.get("data", {}), **datasets.drain_log()}
            run_dir.write_meta(meta)
        summary = trainer.fit()
    finally:
        if trainer is not None:
            trainer.close()
        shutdown()
    if not dist.is_main:
        return 0
    for note in trainer.notes:
        print(f"rnnkit: {note}", file=sys.stderr, flush=True)
    if args.json:
        print_json(summary)
    else:
        print(_human_summary(summary, task))
    return 130 if summary["stopped"] == "interrupted" else 0


def check(args: argparse.Namespace) -> int:
    """``train --check``: resolve the configuration (every value checked) and build the task's model on the meta
    device from placeholder artifacts: what a run would refuse at start-up, found in a fraction of a second."""
    import torch

    from rnnkit.tasks import get_task
    from rnnkit.tasks.recipes import load_recipe
    from rnnkit.train.rundir import RunDir

    overrides = cli_overrides(args)
    if args.resume:
        config = RunDir(Path(args.resume)).require().read_config(overrides)
    elif args.recipe:
        config = load_recipe(args.recipe, overrides)
    else:
        raise UserError("train: name a recipe (see 'rnnkit recipes') or pass --resume RUN_DIR")
    task = get_task(config.task)(config, Path(args.data_dir or "data"), torch.device("cpu"))
    artifacts = task.placeholder_artifacts()
    model_name = None
    if artifacts is not None:
        task.load_artifacts(artifacts)
        with torch.device("meta"):  # shapes only: no memory, however large the sizes
            model_name = type(task.build_model()).__name__
    result = {"recipe": config.recipe, "task": config.task, "ok": True, "model": model_name,
              "config": config.to_dict()}
    if args.json:
        print_json(result)
    else:
        built = f"; the model builds ({model_name})" if model_name else ""
        print(f"{config.recipe}: configuration OK (task {config.task}){built}")
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



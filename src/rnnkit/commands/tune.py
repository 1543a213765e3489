"""rnnkit tune: hyperparameter search over a recipe's config fields; rnnkit tune report: what it found."""

from __future__ import annotations

import argparse
import sys

from rnnkit.api import MAX_COUNT, MAX_SEED, UserError, cli_number
from rnnkit.commands.common import add_data_dir, add_device, add_json, in_cli_words, print_json

_SAMPLERS = ("grid", "random", "tpe", "gp")
_PRUNERS = ("none", "median", "halving", "hyperband")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="hyperparameter search (and 'tune report')",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Search config fields of a recipe with Optuna. Each trial is an ordinary run directory "
        "(OUT/trials/NNNN) trained like 'rnnkit train'; the objective is the task's validation metric "
        "(best over the trial). The study is kept in OUT/study.db; --trials N is the study's total, "
        "so the same command after a kill or Ctrl-C runs only the missing trials (the cut one again) "
        "and a larger N extends the study; --storage postgresql://... lets several workers share "
        "one study.\n\n"
        "  rnnkit tune RECIPE --space space.toml --trials N [--sampler tpe] [--pruner median] ...\n"
        "  rnnkit tune report OUT_OR_DB_URL [--study NAME] [--json]\n\n"
        "Space file (TOML), one table per field:\n"
        '  [model.hidden]\n  type = "int"\n  low = 8\n  high = 64\n  step = 8       # optional\n'
        '  [optim.lr]\n  type = "float"\n  low = 1e-4\n  high = 0.1\n  log = true\n'
        '  [model.cell]\n  type = "categorical"\n  choices = ["lstm", "gru"]',
    )
    p.add_argument("recipe", metavar="RECIPE|report", help="recipe name or .toml path; or 'report' to summarise")
    p.add_argument(
        "study_target",
        nargs="?",
        metavar="OUT_OR_URL",
        help="report only: the study directory (tune's --out) or a database URL",
    )
    p.add_argument("--space", metavar="FILE", help="search space (TOML)")
    p.add_argument(
        "--trials",
        type=cli_number(int, "--trials", ge=1, le=MAX_COUNT),
        metavar="N",
        help="trials the study holds when done (all invocations and workers together); the same "
        "command again runs only the missing ones",
    )
    p.add_argument("--sampler", choices=_SAMPLERS, default="tpe", help="search strategy (default: %(default)s)")
    p.add_argument(
        "--pruner",
        choices=_PRUNERS,
        default="median",
        help="stop poor trials early from their intermediate validations (default: %(default)s)",
    )
    p.add_argument("--storage", metavar="URL", help="database URL shared by workers (default: sqlite OUT/study.db)")
    p.add_argument("--study", metavar="NAME", help="study name (default: the recipe's name)")
    p.add_argument("--out", metavar="DIR", help="study directory: study.db and trials/ (default: runs/tune-RECIPE)")
    p.add_argument(
        "--timeout",
        type=cli_number(float, "--timeout", gt=0),
        metavar="SECONDS",
        help="start no new trial after this long",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a config field in every trial, e.g. --set train.max_epochs=3 (repeatable)",
    )
    p.add_argument(
        "--max-steps",
        type=cli_number(int, "--max-steps", ge=1, le=MAX_COUNT),
        metavar="N",
        help="each trial: stop after this many optimiser steps",
    )
    p.add_argument(
        "--max-time",
        type=cli_number(float, "--max-time", gt=0),
        metavar="SECONDS",
        help="each trial: stop after this long",
    )
    p.add_argument("--resume", action="store_true", help="continue an existing study (error if there is none)")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="run the recipe's own values of the searched fields as a trial first (once per study)",
    )
    p.add_argument(
        "--total-trials",
        type=cli_number(int, "--total-trials", ge=1, le=MAX_COUNT),
        metavar="N",
        help="stop once the study holds N complete + pruned trials (all workers together)",
    )
    p.add_argument("--seed", type=cli_number(int, "--seed", ge=0, le=MAX_SEED), help="sampler seed (default: random)")
    p.add_argument(
        "--startup-trials",
        type=cli_number(int, "--startup-trials", ge=0, le=MAX_COUNT),
        metavar="N",
        help="tpe/gp: random trials before the model-based search (default: 10)",
    )
    p.add_argument(
        "--pruner-startup",
        type=cli_number(int, "--pruner-startup", ge=0, le=MAX_COUNT),
        metavar="N",
        help="median: complete trials needed before pruning (default: 5)",
    )
    p.add_argument(
        "--pruner-warmup",
        type=cli_number(int, "--pruner-warmup", ge=0, le=MAX_COUNT),
        metavar="STEPS",
        help="median: never prune before this step; halving/hyperband: minimum resource in steps",
    )
    add_data_dir(p, default=None)
    add_device(p)
    p.add_argument("--plots", metavar="DIR", help="report: where the PNGs go (default: the study directory)")
    p.add_argument("--no-plots", action="store_true", help="report: draw nothing")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-trial lines")
    add_json(p)
    p.set_defaults(func=run, arguments={"plots_dir": "--plots"})  # API argument -> what the command line calls it


def run(args: argparse.Namespace) -> int:
    if args.recipe == "report":
        return _report(args)
    if args.study_target is not None:
        raise UserError(
            f"tune: unexpected argument {args.study_target!r} (did you mean 'rnnkit tune report {args.study_target}'?)"
        )
    if not args.space:
        raise UserError("tune: --space FILE is required (a TOML file with one table per searched field)")
    if args.trials is None:
        raise UserError("tune: --trials N is required")
    import rnnkit.api as api
    from rnnkit.api import parse_overrides

    quiet = args.quiet or args.json
    study = api.tune(
        args.recipe,
        space=args.space,
        trials=args.trials,
        sampler=args.sampler,
        pruner=args.pruner,
        storage=args.storage,
        study=args.study,
        out=args.out,
        timeout=args.timeout,
        overrides=parse_overrides(args.overrides),
        max_steps=args.max_steps,
        max_time=args.max_time,
        device=args.device,
        data_dir=args.data_dir,
        seed=args.seed,
        baseline=args.baseline,
        resume=args.resume,
        total_trials=args.total_trials,
        startup_trials=args.startup_trials,
        pruner_startup=args.pruner_startup,
        pruner_warmup=args.pruner_warmup,
        echo=None if quiet else (lambda line: print(in_cli_words(line, args.arguments), file=sys.stderr, flush=True)),
    )
    summary = study.summary
    if args.json:
        print_json(summary)
        return 0
    metric = summary.get("metric") or "value"
    line = (
        f"study {summary['study']} in {summary['out']}: {summary['n_trials']} complete, {summary['n_pruned']} "
        f"pruned, {summary['n_failed']} failed"
        + (f", {summary['n_retried']} cut short and rerun" if summary.get("n_retried") else "")
    )
    print(line)
    if summary["best_trial"] is not None:
        params = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["best_params"].items()
        )
        print(f"best: trial {summary['best_trial']}  {metric} {summary['best_value']:.4g}  {params}")
        print(f"best run: {summary['best_run']}")
    print(
        f"report: rnnkit tune report {summary['out'] if not args.storage else summary['storage']}"
        + (f" --study {summary['study']}" if args.storage else "")
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    import rnnkit.api as api
    from rnnkit.api.text import format_report

    if not args.study_target:
        raise UserError("tune report: give the study directory (tune's --out) or a database URL")
    rep = api.tune_report(args.study_target, args.study, plots=not args.no_plots, plots_dir=args.plots)
    if args.json:
        print_json(rep)
    else:
        print(format_report(rep))
    return 0

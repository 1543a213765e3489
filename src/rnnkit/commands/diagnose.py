"""rnnkit diagnose: gradient flow through time (``diagnose gradients``), or a trained run (``diagnose RUN``).

``rnnkit diagnose gradients`` shows how far back a gradient reaches in a simple RNN, an LSTM and a GRU.
``rnnkit diagnose RUN`` reads a run's learning curves and says high bias, high variance or converged;
``--data-sizes`` trains copies of the run on growing fractions of its training set.
"""

from __future__ import annotations

import argparse
import sys

from rnnkit.api import MAX_COUNT, MAX_SEED, cli_number
from rnnkit.commands.common import add_data_dir, add_device, add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="diagnose gradient flow, or a trained run",
        description="'rnnkit diagnose gradients' trains nothing: it shows how the gradient of a loss "
        "at the last step w.r.t. the hidden state at each earlier step vanishes or "
        "explodes for a simple RNN, an LSTM and a GRU. 'rnnkit diagnose RUN_DIR' plots a "
        "run's training vs validation loss (RUN/diagnosis.png) and gives the verdict: "
        "high bias, high variance or converged, with the figures; with --data-sizes "
        "0.25,0.5,1.0 it trains copies of the run on those fractions of its training "
        "set and plots the final losses against data size (RUN/data-sizes.png).",
    )
    p.add_argument("target", metavar="gradients|RUN_DIR", help="'gradients', or a run directory to diagnose")
    g = p.add_argument_group("gradients")
    g.add_argument(
        "--steps",
        type=cli_number(int, "--steps", ge=1, le=100_000),
        default=100,
        help="sequence length (default: %(default)s)",
    )
    g.add_argument(
        "--hidden",
        type=cli_number(int, "--hidden", ge=1, le=65_536),
        default=64,
        help="hidden units (default: %(default)s)",
    )
    g.add_argument("--cells", default="rnn_tanh,lstm,gru", help="comma-separated cells (default: %(default)s)")
    g.add_argument("--seed", type=cli_number(int, "--seed", ge=0, le=MAX_SEED), default=0)
    g.add_argument(
        "--every",
        type=cli_number(int, "--every", ge=1, le=100_000),
        default=10,
        help="table row spacing in steps (default: %(default)s)",
    )
    p.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="plot path (default: gradient-flow.png; for a run RUN/diagnosis.png or RUN/data-sizes.png)",
    )
    r = p.add_argument_group("a run")
    r.add_argument(
        "--target-loss",
        type=cli_number(float, "--target-loss", ge=0),
        metavar="LOSS",
        help="the training loss you need: a run above it has high bias",
    )
    r.add_argument(
        "--data-sizes",
        metavar="F1,F2,...",
        help="train copies on these fractions of the training set, e.g. 0.25,0.5,1.0",
    )
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--data-sizes: override a config field of the copies (repeatable)",
    )
    r.add_argument(
        "--max-steps",
        type=cli_number(int, "--max-steps", ge=1, le=MAX_COUNT),
        help="--data-sizes: step budget of each copy",
    )
    r.add_argument(
        "--max-epochs",
        type=cli_number(int, "--max-epochs", ge=1, le=MAX_COUNT),
        help="--data-sizes: epochs of each copy",
    )
    add_data_dir(r, default=None)
    add_device(r)
    add_json(p)
    p.set_defaults(func=run, arguments={"fractions": "--data-sizes"})  # API argument -> the option


def run(args: argparse.Namespace) -> int:
    if args.target != "gradients":
        return _run_dir(args)
    return _gradients(args)


def _run_dir(args: argparse.Namespace) -> int:
    from pathlib import Path

    import rnnkit.api as api
    from rnnkit.api import UserError, parse_fractions
    from rnnkit.api.text import format_diagnosis, format_sizes

    path = Path(args.target)
    try:
        found = path.is_dir()
    except OSError:  # a path the system cannot look up: the API says why, in one line
        found = True
    if not found:
        raise UserError(f"diagnose: {args.target!r} is neither 'gradients' nor a run directory")
    fractions = parse_fractions(args.data_sizes) if args.data_sizes else None  # a typo costs nothing
    run = api.load(path, data_dir=args.data_dir)
    if fractions is not None:
        from rnnkit.api import parse_overrides

        overrides = parse_overrides(args.overrides)
        for value, key in (
            (args.max_steps, "train.max_steps"),
            (args.max_epochs, "train.max_epochs"),
            (args.device, "train.device"),
        ):
            if value is not None:
                overrides[key] = value
        result = run.data_size_curve(
            fractions,
            overrides,
            args.plot,
            echo=None if args.json else (lambda line: print(line, file=sys.stderr, flush=True)),
        )
        if args.json:
            print_json(result)
        else:
            print(format_sizes(result))
        return 0
    result = run.diagnose(args.target_loss, args.plot)
    if args.json:
        print_json(result)
    else:
        print(format_diagnosis(result))
    return 0


def _gradients(args: argparse.Namespace) -> int:
    import rnnkit.api as api
    from rnnkit.api.text import format_gradient_table

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    result = api.gradient_flow(
        cells,
        steps=args.steps,
        hidden=args.hidden,
        seed=args.seed,
        plot=args.plot if args.plot is not None else "gradient-flow.png",
    )
    if args.json:
        print_json(result)
    else:
        print(format_gradient_table({k: v for k, v in result.items() if k != "plot"}, every=args.every))
        print(f"plot: {result['plot']}")
    return 0

"""rnnkit diagnose gradients: how far back a gradient reaches in a simple RNN, an LSTM and a GRU."""

from __future__ import annotations

import argparse

from rnnkit.commands.common import add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diagnose", help="diagnose gradient flow (and runs)",
                       description="'rnnkit diagnose gradients' trains nothing: it shows how the gradient of a loss "
                                   "at the last step w.r.t. the hidden state at each earlier step vanishes or "
                                   "explodes for a simple RNN, an LSTM and a GRU.")
    p.add_argument("target", choices=["gradients"], help="what to diagnose")
    p.add_argument("--steps", type=int, default=100, help="sequence length (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=64, help="hidden units (default: %(default)s)")
    p.add_argument("--cells", default="rnn_tanh,lstm,gru", help="comma-separated cells (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=10, help="table row spacing in steps (default: %(default)s)")
    p.add_argument("--plot", default="gradient-flow.png", metavar="PNG", help="plot path (default: %(default)s)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rnnkit.cells.base import CELL_TYPES
    from rnnkit.diagnose.gradients import format_gradient_table, gradient_flow, plot_gradient_flow
    from rnnkit.errors import UserError

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    bad = [c for c in cells if c not in CELL_TYPES]
    if bad or not cells:
        raise UserError(f"--cells: unknown cell(s) {', '.join(bad) or '(none)'}; choose from {', '.join(CELL_TYPES)}")
    if args.steps < 2 or args.hidden < 1:
        raise UserError("--steps must be >= 2 and --hidden >= 1")
    result = gradient_flow(cells=cells, steps=args.steps, hidden=args.hidden, seed=args.seed)
    plot_gradient_flow(result, args.plot)
    if args.json:
        print_json({"plot": args.plot, **result})
    else:
        print(format_gradient_table(result, every=args.every))
        print(f"plot: {args.plot}")
    return 0

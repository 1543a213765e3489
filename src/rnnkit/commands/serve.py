"""rnnkit serve: an HTTP API with an OpenAPI schema and a browser playground over trained runs."""

from __future__ import annotations

import argparse
import sys

from rnnkit.api import MAX_COUNT, MAX_SIZE, cli_number
from rnnkit.commands.common import add_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve trained runs over HTTP, with a playground page",
        description="Load each RUN once and answer POST /v1/generate, /v1/translate, /v1/chat, "
        "/v1/classify and /v1/forecast (whichever the runs can do), GET /v1/models and "
        "GET /healthz; the schema is at /openapi.json and a playground page at /. A "
        'request names its model with "model" (the run directory\'s name, or NAME '
        "from NAME=RUN_DIR); it may leave it out when one model offers the endpoint. "
        "Needs the serve extra: pip install 'rnnkit[serve]'.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory, or NAME=RUN_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument(
        "--port", type=cli_number(int, "--port", ge=0, le=65535), default=8000, help="port (default: %(default)s)"
    )
    p.add_argument(
        "--max-input-length",
        type=cli_number(int, "--max-input-length", ge=1, le=MAX_COUNT),
        default=2000,
        metavar="N",
        help="longest text in characters, or numeric input in values (default: %(default)s)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=cli_number(int, "--max-new-tokens", ge=1, le=MAX_COUNT),
        default=256,
        metavar="N",
        help="most words one generate request may ask for (default: %(default)s)",
    )
    p.add_argument(
        "--max-batch",
        type=cli_number(int, "--max-batch", ge=1, le=MAX_SIZE),
        default=32,
        metavar="N",
        help="most texts per classify request and replies per chat request; also the most concurrent "
        "requests merged into one forward pass (default: %(default)s)",
    )
    p.add_argument(
        "--max-horizon",
        type=cli_number(int, "--max-horizon", ge=1, le=1_000_000),
        default=1000,
        metavar="N",
        help="most steps one forecast request may ask for (default: %(default)s)",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="server log verbosity (default: %(default)s; info logs each request)",
    )
    add_device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rnnkit.api as api

    api.serve.serve(
        args.runs,
        args.host,
        args.port,
        log_level=args.log_level,
        announce=lambda line: print(line, file=sys.stderr, flush=True),
        max_input_length=args.max_input_length,
        max_new_tokens=args.max_new_tokens,
        max_batch=args.max_batch,
        max_horizon=args.max_horizon,
        checkpoint=args.checkpoint,
        device=args.device or "auto",
    )
    return 0

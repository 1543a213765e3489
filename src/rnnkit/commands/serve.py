"""rnnkit serve: an HTTP API with an OpenAPI schema and a browser playground over trained runs."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

from rnnkit.commands.common import add_device
from rnnkit.config import MAX_COUNT, MAX_SIZE, cli_number
from rnnkit.errors import UserError


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
    try:
        import uvicorn

        from rnnkit.serve.app import Limits, create_app, load_models
    except ImportError as e:
        raise UserError(
            f"rnnkit serve needs the serve extra ({e.name} is missing): pip install 'rnnkit[serve]'"
        ) from None
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535, got {args.port}")
    limits = Limits(
        max_input_length=args.max_input_length,
        max_new_tokens=args.max_new_tokens,
        max_batch=args.max_batch,
        max_horizon=args.max_horizon,
    )
    limits.max_body_bytes = max(1 << 20, 64 * args.max_input_length)  # room for JSON around the largest input
    limits.check()
    models = load_models(args.runs, args.checkpoint, args.device or "auto")
    app = create_app(models, limits)
    sock = listen(args.host, args.port)
    names = ", ".join(f"{m.name} ({'/'.join(m.endpoints)})" for m in models.values())
    print(f"rnnkit serve: {names} on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn: a port in use (or an address that is not this
    machine's) is then one line and exit 2, instead of uvicorn's start-up and shut-down log around its error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on accepted
    # sockets whose proto says TCP, and with it on a keep-alive client waits ~40 ms (delayed ACK) for every response
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            why = "the port is in use (another server?); choose another with --port"
        elif e.errno in (errno.EACCES, errno.EPERM):
            why = "permission denied (ports below 1024 need privileges); choose another with --port"
        elif e.errno == errno.EADDRNOTAVAIL:
            why = "not an address of this machine; check --host"
        else:
            why = (e.strerror or str(e)).lower()
        raise UserError(f"cannot listen on {host}:{port}: {why}") from None
    except (socket.gaierror, UnicodeError, OverflowError) as e:
        sock.close()
        raise UserError(f"--host {host!r}: not a valid address ({e})") from None
    sock.set_inheritable(True)
    return sock

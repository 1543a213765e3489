"""``rnnkit.api.serve``: trained runs answered over HTTP (``rnnkit serve``), or the app itself for your own server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rnnkit.api import arguments as arg
from rnnkit.api.checks import MAX_INPUT_LENGTH
from rnnkit.config import MAX_COUNT, MAX_SIZE
from rnnkit.errors import UserError

if TYPE_CHECKING:
    from fastapi import FastAPI


def _serve_modules() -> Any:
    try:
        import uvicorn  # noqa: F401

        from rnnkit.serve import app
    except ImportError as e:
        raise UserError(f"serving needs the serve extra ({e.name} is missing): pip install 'rnnkit[serve]'") from None
    return app


def app(
    runs: Sequence[str],
    *,
    max_input_length: int = MAX_INPUT_LENGTH,
    max_new_tokens: int = 256,
    max_batch: int = 32,
    max_horizon: int = 1000,
    checkpoint: str = "best",
    device: str = "auto",
) -> FastAPI:
    """The FastAPI app serving ``runs`` (run directories, or ``NAME=RUN_DIR``): mount it, or test it with
    ``fastapi.testclient.TestClient``. The limits are what one request may ask for (see ``rnnkit serve --help``)."""
    call = "serve"
    if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not runs:
        raise UserError(f"{call}(runs=...) must be a non-empty list of run directories (or NAME=RUN_DIR)")
    names = arg.texts(
        call, "runs", [str(r) if not isinstance(r, str) and hasattr(r, "__fspath__") else r for r in runs]
    )
    arg.integer(call, "max_input_length", max_input_length, ge=1, le=MAX_COUNT)
    arg.integer(call, "max_new_tokens", max_new_tokens, ge=1, le=MAX_COUNT)
    arg.integer(call, "max_batch", max_batch, ge=1, le=MAX_SIZE)
    arg.integer(call, "max_horizon", max_horizon, ge=1, le=1_000_000)
    arg.choice(call, "checkpoint", checkpoint, ("best", "last"))
    arg.text(call, "device", device)
    served = _serve_modules()
    limits = served.Limits(
        max_input_length=max_input_length,
        max_new_tokens=max_new_tokens,
        max_batch=max_batch,
        max_horizon=max_horizon,
        max_body_bytes=max(1 << 20, 64 * max_input_length),  # room for JSON around the largest input
    )
    models = served.load_models(names[1], checkpoint, device)
    return served.create_app(models, limits)


def serve(
    runs: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    announce: Callable[[str], None] | None = None,
    **limits: Any,
) -> None:
    """Serve ``runs`` over HTTP on ``host:port`` until Ctrl-C: ``POST /v1/generate | translate | chat | classify |
    forecast``, ``GET /v1/models``, ``/healthz``, ``/openapi.json`` and a playground page at ``/``. ``limits``:
    the keyword arguments of ``app``. ``announce`` is told, once the port is bound, what is served where."""
    from rnnkit.serve.server import listen, run

    arg.text("serve", "host", host)
    arg.integer("serve", "port", port, ge=1, le=65535)
    arg.choice("serve", "log_level", log_level, ("debug", "info", "warning", "error"))
    application = app(runs, **limits)
    sock = listen(host, port)
    if announce is not None:
        names = ", ".join(f"{m.name} ({'/'.join(m.endpoints)})" for m in application.state.models.values())
        announce(f"rnnkit serve: {names} on http://{host}:{port}/")
    run(application, sock, host, port, log_level)

"""The HTTP API and playground of ``rnnkit serve``: a FastAPI app over runs loaded once at start-up.

Endpoints: ``POST /v1/generate | translate | chat | classify | forecast``, ``GET /v1/models``, ``GET /healthz``,
``GET /openapi.json`` and the playground page at ``/``. Which models answer which endpoint comes from
``rnnkit.predict.services``; the work itself is ``rnnkit.predict``'s, the same code the CLI verbs run, on one
inference thread (``InferenceWorker``) that batches concurrent classification and translation requests, and decodes
concurrent generation and chat requests together, one token step at a time (``rnnkit.decode.stream``).

Errors are JSON ``{"detail": "one line"}`` with a 4xx status for anything a client can fix: 422 for a body that
does not validate (malformed JSON included) or an input the model cannot take (a prompt of unknown words), 413
for an input over the server's limits, 404 for an unknown model, 400 for an ambiguous or unsuitable one. A 500
means a bug in rnnkit.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rnnkit import __version__, predict
from rnnkit.errors import UserError
from rnnkit.runs import LoadedRun, load_run
from rnnkit.serve import schemas as s
from rnnkit.serve.batching import InferenceWorker

log = logging.getLogger("rnnkit.serve")
STATIC = Path(__file__).parent / "static"
HISTORY_SHOWN = 240  # points of history a forecast response carries back for plotting


@dataclass
class Limits:
    """What one request may ask for; the flags of ``rnnkit serve`` set them."""

    max_input_length: int = 2000  # characters of a text; values of a numeric input (sequence, history)
    max_new_tokens: int = 256  # generate: max_new_tokens
    max_batch: int = 32  # texts per classify request, replies per chat request, items per batched forward
    max_horizon: int = 1000  # forecast: steps
    max_body_bytes: int = 1 << 20  # the raw request body

    def check(self) -> None:
        for k, v in asdict(self).items():
            if v < 1:
                raise UserError(f"--{k.replace('_', '-')} must be >= 1, got {v}")


@dataclass
class ServedModel:
    name: str
    loaded: LoadedRun
    endpoints: tuple[str, ...]

    def info(self) -> s.ModelInfo:
        cfg = self.loaded.config
        return s.ModelInfo(
            name=self.name,
            task=cfg.task,
            recipe=cfg.recipe,
            run=str(self.loaded.run.path),
            endpoints=list(self.endpoints),
            info=predict.describe(self.loaded),
        )


class ApiError(Exception):
    """A client mistake the app found itself (not in the body's schema): answered with ``status`` and a message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def load_models(specs: Sequence[str], checkpoint: str = "best", device: str = "auto") -> dict[str, ServedModel]:
    """Load ``RUN`` or ``NAME=RUN`` run directories once; the name (default: the directory's name) is what
    requests use in ``"model"``. Raises UserError for a duplicate name or a run with nothing to serve."""
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec.rstrip("/")).name or spec, spec
        if not name or not path:
            raise UserError(f"{spec!r}: expected RUN_DIR or NAME=RUN_DIR")
        if name in models:
            raise UserError(f"two runs are named {name!r}; name them with NAME=RUN_DIR")
        loaded = load_run(path, checkpoint, device)
        endpoints = predict.services(loaded)
        if not endpoints:
            raise UserError(
                f"{path}: task {loaded.config.task!r} has nothing to serve (no generation, translation, "
                f"chat, classification or forecasting)"
            )
        models[name] = ServedModel(name, loaded, endpoints)
    if not models:
        raise UserError("give at least one run directory to serve")
    return models


# -- request size -----------------------------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before anything parses it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                await _send_json(send, 400, f"Content-Length is not a number: {declared[:40]!r}")
                return
            if n > self.limit:
                await _send_json(send, 413, self._message(n))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _send_json(send, 413, self._message(size, at_least=True))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self, n: int, at_least: bool = False) -> str:
        return f"request body is {'over ' if at_least else ''}{n} bytes; this server takes at most {self.limit}"


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}, status_code=status).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- helpers -----------------------------------------------------------------------------------------------------
def _finite(x: Any) -> float | None:
    """A float for JSON: NaN and infinities (which strict JSON cannot carry) become null."""
    v = float(x)
    return v if math.isfinite(v) else None


def _values(a: np.ndarray) -> list[Any]:
    """(n, k) -> numbers when k == 1, rows otherwise; non-finite values as null."""
    if a.shape[1] == 1:
        return [_finite(v) for v in a[:, 0]]
    return [[_finite(v) for v in row] for row in a]


def _validation_message(errors: Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    parts, clean = [], []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "json_invalid":
            where, loc = "body", []
            msg = f"malformed JSON ({(e.get('ctx') or {}).get('error', msg)})"
        parts.append(f"{where}: {msg}")
        clean.append({"loc": loc, "msg": msg, "type": str(e.get("type", ""))})
    return "; ".join(parts[:5]) + (f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""), clean


def _document_limits(schema: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Write the server's limits into the OpenAPI document (maximum, maxLength, maxItems), so clients and schema
    fuzzers see the bounds the app enforces (the pydantic models hold only the fixed ones)."""
    comps = schema.get("components", {}).get("schemas", {})
    text, values = {"maxLength": limits.max_input_length}, {"maxItems": limits.max_input_length}
    rules = {
        ("GenerateRequest", "prompt"): text,
        ("GenerateRequest", "max_new_tokens"): {"maximum": limits.max_new_tokens},
        ("TranslateRequest", "text"): text,
        ("ChatRequest", "text"): text,
        ("ChatRequest", "replies"): {"maximum": limits.max_batch},
        ("ClassifyRequest", "text"): text,
        ("ClassifyRequest", "texts"): {"maxItems": limits.max_batch},
        ("ClassifyRequest", "sequence"): values,
        ("ForecastRequest", "history"): values,
        ("ForecastRequest", "horizon"): {"maximum": limits.max_horizon},
    }
    for (model, prop), bounds in rules.items():
        field = comps.get(model, {}).get("properties", {}).get(prop)
        if field is None:
            continue
        for alt in field.get("anyOf", [field]):  # optional fields: the non-null alternatives
            if alt.get("type") != "null":
                alt.update(bounds)
    return schema


# -- the app -----------------------------------------------------------------------------------------------------
def create_app(
    models: dict[str, ServedModel], limits: Limits | None = None, worker: InferenceWorker | None = None
) -> FastAPI:
    """The FastAPI app serving ``models`` (from ``load_models``) within ``limits``."""
    limits = limits or Limits()
    limits.check()
    worker = worker or InferenceWorker(max_batch=limits.max_batch)
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        yield
        worker.stop()

    app = FastAPI(
        title="rnnkit",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Recurrent models trained with rnnkit: generation, translation, chat, classification "
        'and forecasting. Errors are JSON {"detail": message} with a 4xx status.',
    )
    app.state.models = models
    app.state.limits = limits
    app.state.worker = worker
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    errors = {
        422: {"model": s.ErrorBody, "description": "invalid request or input the model cannot take"},
        413: {"model": s.ErrorBody, "description": "input over the server's limits"},
        404: {"model": s.ErrorBody, "description": "unknown model"},
        400: {"model": s.ErrorBody, "description": "no single model fits the request"},
    }

    # -- errors -------------------------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413 if isinstance(exc, predict.InputTooLong) else 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errs = _validation_message(exc.errors())
        return JSONResponse({"detail": detail, "errors": errs}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); this is a bug in rnnkit"}, status_code=500
        )

    # -- choosing a model and checking sizes ------------------------------------------------------------------
    def pick(service: str, name: str | None) -> ServedModel:
        if name is not None:
            m = models.get(name)
            if m is None:
                raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(models)}")
            if service not in m.endpoints:
                raise ApiError(
                    400,
                    f"model {name!r} ({m.loaded.config.task}) does not offer /v1/{service}; it "
                    f"offers {', '.join('/v1/' + e for e in m.endpoints)}",
                )
            return m
        offering = [m for m in models.values() if service in m.endpoints]
        if not offering:
            loaded = ", ".join(f"{m.name} ({m.loaded.config.task})" for m in models.values())
            raise ApiError(404, f"no loaded model offers /v1/{service} (loaded: {loaded})")
        if len(offering) > 1:
            raise ApiError(
                400,
                f'several models offer /v1/{service} ({", ".join(m.name for m in offering)}); name one with "model"',
            )
        return offering[0]

    def size(what: str, n: int, limit: int, flag: str, unit: str = "characters") -> None:
        if n > limit:
            raise ApiError(413, f"{what} is {n} {unit}; this server takes at most {limit} (rnnkit serve {flag})")

    # the checks of the CLI verbs (rnnkit.predict), run per request before it can join a batch
    flag = "rnnkit serve --max-input-length"

    def text_size(what: str, text: str) -> None:
        predict.check_length(text, what, limits.max_input_length, flag)

    def text_input(what: str, text: str, service: str, unit: str = "characters") -> None:
        predict.check_text(text, what, service, limits.max_input_length, flag, unit)

    # -- routes ---------------------------------------------------------------------------------------------------
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            app.openapi_schema = _document_limits(
                get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes),
                limits,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", response_model=s.Health, summary="200 once the models are loaded")
    async def healthz() -> s.Health:
        return s.Health(status="ok", models=len(models))

    @app.get("/v1/models", response_model=s.ModelsResponse, summary="the loaded models and what they offer")
    async def list_models() -> s.ModelsResponse:
        return s.ModelsResponse(models=[m.info() for m in models.values()], limits=asdict(limits))

    @app.post(
        "/v1/generate",
        response_model=s.GenerateResponse,
        responses=errors,
        summary="continue a prompt with a language model",
    )
    async def generate(req: s.GenerateRequest) -> s.GenerateResponse:
        m = pick("generate", req.model)
        text_size("prompt", req.prompt)
        if req.max_new_tokens > limits.max_new_tokens:
            raise ApiError(
                422,
                f"max_new_tokens: {req.max_new_tokens} is over this server's limit of "
                f"{limits.max_new_tokens} (rnnkit serve --max-new-tokens)",
            )
        text = await worker.run_stream(
            ("generate", m.name),
            lambda: predict.generation_stream(
                m.loaded,
                req.prompt,
                req.max_new_tokens,
                req.temperature,
                req.top_k,
                req.top_p,
                req.seed,
                limits.max_input_length,
            ),
            lambda: predict.generation_batch(m.loaded),
        )
        return s.GenerateResponse(model=m.name, prompt=req.prompt, text=text)

    @app.post(
        "/v1/translate",
        response_model=s.TranslateResponse,
        responses=errors,
        summary="translate a sentence (with the attention weights, when the model has attention)",
    )
    async def translate(req: s.TranslateRequest) -> s.TranslateResponse:
        m = pick("translate", req.model)
        text_input("text", req.text, "translate")

        def run(texts: list[str]) -> list[dict[str, Any]]:
            return predict.translate(m.loaded, texts, beam=req.beam, max_input_length=limits.max_input_length)

        r = await worker.run_batched(("translate", m.name, req.beam), run, req.text)
        att = r["attention"]
        return s.TranslateResponse(
            model=m.name,
            translation=r["translation"],
            source_tokens=list(r["source_tokens"]),
            target_tokens=list(r["target_tokens"]),
            unknown=list(r["unknown"]),
            score=_finite(r["score"]),
            attention=[[round(float(v), 5) for v in row] for row in att.float().tolist()] if att is not None else None,
        )

    @app.post("/v1/chat", response_model=s.ChatResponse, responses=errors, summary="replies to a message")
    async def chat(req: s.ChatRequest) -> s.ChatResponse:
        m = pick("chat", req.model)
        text_input("text", req.text, "answer")
        for i, turn in enumerate(req.history):
            text_size(f"history[{i}]", turn)
        if req.replies is not None:
            size("replies", req.replies, limits.max_batch, "--max-batch", "replies")
        if predict.reply_decoding(m.loaded, req.decoding) in ("sample", "greedy"):  # decoded with the others
            replies = await worker.run_stream(
                ("chat", m.name),
                lambda: predict.reply_stream(
                    m.loaded,
                    req.text,
                    req.history,
                    n=req.replies,
                    decoding=req.decoding,
                    top_k=req.top_k,
                    temperature=req.temperature,
                    seed=req.seed,
                    max_input_length=limits.max_input_length,
                ),
                lambda: predict.generation_batch(m.loaded, "chat"),
            )
        else:  # beam search: alone
            replies = await worker.run(
                lambda: predict.chat(
                    m.loaded,
                    req.text,
                    req.history,
                    n=req.replies,
                    decoding=req.decoding,
                    top_k=req.top_k,
                    temperature=req.temperature,
                    beam=req.beam,
                    seed=req.seed,
                    max_input_length=limits.max_input_length,
                )
            )
        return s.ChatResponse(model=m.name, replies=replies)

    @app.post(
        "/v1/classify",
        response_model=s.ClassifyResponse,
        responses=errors,
        response_model_exclude_none=True,
        summary="label and class probabilities of a text (or of a numeric sequence)",
    )
    async def classify(req: s.ClassifyRequest) -> s.ClassifyResponse:
        m = pick("classify", req.model)
        given = [k for k in ("text", "texts", "sequence") if getattr(req, k) is not None]
        if len(given) != 1:
            got = ", ".join(given) or "none"
            raise ApiError(422, f'give exactly one of "text", "texts", "sequence" (got {got})')
        kind = predict.describe(m.loaded).get("input", "text")
        if kind == "sequence" and req.sequence is None:
            raise ApiError(
                422,
                f'model {m.name!r} classifies numeric sequences: send "sequence" '
                f"({predict.describe(m.loaded)['input_format']})",
            )
        if kind == "text" and req.sequence is not None:
            raise ApiError(422, f'model {m.name!r} classifies text: send "text" or "texts"')
        if req.sequence is not None:
            size("sequence", len(req.sequence), limits.max_input_length, "--max-input-length", "values")
            inputs = [" ".join(repr(float(v)) for v in req.sequence)]
        elif req.texts is not None:
            size("texts", len(req.texts), limits.max_batch, "--max-batch", "texts")
            for i, t in enumerate(req.texts):
                text_input(f"texts[{i}]", t, "classify")
            inputs = list(req.texts)
        else:
            assert req.text is not None
            text_input("text", req.text, "classify")
            inputs = [req.text]

        def run(items: list[str]) -> list[dict[str, Any]]:
            return predict.classify(m.loaded, items, max_input_length=limits.max_input_length)

        results = await asyncio.gather(*(worker.run_batched(("classify", m.name), run, x) for x in inputs))
        preds = [
            s.Prediction(label=r["label"], probability=r["probability"], probabilities=r["probabilities"])
            for r in results
        ]
        if req.texts is not None:
            return s.ClassifyResponse(model=m.name, results=preds)
        return s.ClassifyResponse(model=m.name, **preds[0].model_dump())

    @app.post(
        "/v1/forecast",
        response_model=s.ForecastResponse,
        responses=errors,
        summary="forecast the next steps of a series (default: the run's own series)",
    )
    async def forecast(req: s.ForecastRequest) -> s.ForecastResponse:
        from rnnkit.data.timeseries import future_times

        m = pick("forecast", req.model)
        horizon, level = predict.forecast_settings(m.loaded, req.horizon, req.level)
        if horizon > limits.max_horizon:
            raise ApiError(
                422,
                f"horizon: {horizon} is over this server's limit of {limits.max_horizon} (rnnkit serve --max-horizon)",
            )
        if req.history is None:
            values, times, columns, _ = predict.saved_history(m.loaded)
        else:
            size("history", len(req.history), limits.max_input_length, "--max-input-length", "points")
            columns = list(predict.describe(m.loaded)["columns"])
            rows = [r if isinstance(r, list) else [r] for r in req.history]
            widths = {len(r) for r in rows}
            if widths != {len(columns)}:
                raise ApiError(
                    422,
                    f"history: every point needs {len(columns)} value(s), one per column "
                    f"({', '.join(columns)}); got rows of {sorted(widths)}",
                )
            values = np.asarray(rows, dtype=np.float64)
            times = [str(i) for i in range(values.shape[0])]
        fc = await worker.run(lambda: predict.forecast(m.loaded, values, horizon, level, seed=req.seed))
        shown = values[-HISTORY_SHOWN:]
        return s.ForecastResponse(
            model=m.name,
            columns=columns,
            horizon=horizon,
            interval=level,
            times=future_times(times, horizon),
            forecast=_values(fc["mean"]),
            lower=_values(fc["lower"]),
            upper=_values(fc["upper"]),
            history=_values(shown),
            history_times=times[-HISTORY_SHOWN:],
        )

    return app

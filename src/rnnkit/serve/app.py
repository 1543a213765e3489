"""The HTTP API and playground of ``rnnkit serve``: a FastAPI app over runs loaded once at start-up.

Endpoints: ``POST /v1/generate | translate | chat | classify | forecast``, ``GET /v1/models``, ``GET /healthz``,
``GET /openapi.json`` and the playground page at ``/``. Which models answer which endpoint comes from
``rnnkit.predict.services``; the work itself is ``rnnkit.predict``'s, the same code the CLI verbs run, on one
inference thread (``InferenceWorker``) that batches concurrent classification and translation requests, and decodes
concurrent generation and chat requests together, one token step at a time (``rnnkit.decode.stream``).

Every error is JSON of one shape, ``{"detail": "one line", "errors": [{"loc", "msg", "type"}, ...]}`` (``errors``
names the fields at fault, ``[]`` when the mistake is not in one field), with a 4xx status for anything a client can
fix: 422 for a body that cannot be read or validated (a Content-Length that does not frame it, bytes that are not
UTF-8, JSON that is malformed or nested too deeply, a field of the wrong type - types are strict: ``"5"`` is not an
integer) or an input the model cannot take (a prompt of unknown words), 413 for an input over the server's limits,
404 for an unknown model or path, 405 for a method a path does not take, 400 for an ambiguous or unsuitable model.
A 500 means a bug in rnnkit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rnnkit import predict
from rnnkit.config import DEFAULT_NEW_TOKENS
from rnnkit.errors import ArgumentError, UserError
from rnnkit.runs import LoadedRun, load_run
from rnnkit.serve import schemas as s
from rnnkit.serve.batching import InferenceWorker
from rnnkit.version import __version__

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
                raise UserError(f"{k}=... must be >= 1, got {v}")


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

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field  # the body's field at fault, if one is


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
                if n < 0:
                    raise ValueError
            except ValueError:
                await _send_json(send, 422, f"the Content-Length header is not a byte count: {declared[:40]!r}")
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


def error_response(status: int, detail: str, errors: Sequence[dict[str, Any]] = ()) -> JSONResponse:
    """The one error shape (``schemas.ErrorBody``) with ``status``."""
    return JSONResponse({"detail": detail, "errors": list(errors)}, status_code=status)


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = error_response(status, detail).body
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
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ()) if p != "body"]
        where = ".".join(map(str, loc)) or "body"
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
        ("TranslateRequest", "max_new_tokens"): {"maximum": limits.max_new_tokens},
        ("ChatRequest", "max_new_tokens"): {"maximum": limits.max_new_tokens},
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
    generate = comps.get("GenerateRequest", {}).get("properties", {}).get("max_new_tokens")
    if generate is not None:  # what a request without the field gets
        generate["default"] = new_tokens_default(limits)
    return schema


def new_tokens_default(limits: Limits) -> int:
    """``max_new_tokens`` of a generate request that leaves it out: Python's and the CLI's default
    (``rnnkit.config.DEFAULT_NEW_TOKENS``), or this server's ``--max-new-tokens`` where that is lower - a field
    the client did not send is never the reason for a 422."""
    return min(DEFAULT_NEW_TOKENS, limits.max_new_tokens)


def _body_error(exc: BaseException | None) -> str:
    """Why FastAPI could not parse a body (it answers 400 "There was an error parsing the body")."""
    if isinstance(exc, UnicodeDecodeError):
        return f"the body is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at {exc.start})"
    if isinstance(exc, RecursionError):
        return "the body's JSON is nested too deeply to read"
    if isinstance(exc, ValueError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "integer string conversion" in text:  # Python's guard against quadratic parsing (sys.int_info)
            return f"the body holds a number too long to read (over {sys.get_int_max_str_digits()} digits)"
        return f"the body is not valid JSON ({text[:120]})"
    return "the body could not be read as JSON"


def _error_handlers(app: FastAPI) -> None:
    """Every error answered in the one shape (``schemas.ErrorBody``), whoever raises it."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        where = [{"loc": [exc.field], "msg": exc.detail, "type": "value_error"}] if exc.field else []
        return error_response(exc.status, exc.detail, where)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        status = 413 if isinstance(exc, predict.InputTooLong) else 422
        if isinstance(exc, ArgumentError):  # a field of the request: say where
            return error_response(status, str(exc), [{"loc": [exc.argument], "msg": exc.reason, "type": "value_error"}])
        return error_response(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errs = _validation_message(exc.errors())
        return error_response(422, detail, errs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": a body that cannot be read is a 422
            return error_response(422, _body_error(exc.__cause__))
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"no such path: {request.url.path} (see /openapi.json)"
        elif exc.status_code == 405:
            detail = f"{request.url.path} does not take {request.method}"
        return JSONResponse(
            {"detail": detail, "errors": []}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); this is a bug in rnnkit")


# -- the app -----------------------------------------------------------------------------------------------------
def create_app(
    models: dict[str, ServedModel], limits: Limits | None = None, worker: InferenceWorker | None = None
) -> FastAPI:
    """The FastAPI app serving ``models`` (from ``load_models``) within ``limits``: its state, the body limit, the
    error shape, the OpenAPI document with the limits written in, the pages and the endpoints."""
    limits = limits or Limits()
    limits.check()
    worker = worker or InferenceWorker(max_batch=limits.max_batch)

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
        description="Recurrent models trained with rnnkit: generation, translation, chat, classification and "
        'forecasting. Errors are JSON {"detail": message, "errors": [{"loc", "msg", "type"}, ...]}, 4xx for a '
        "client's mistake.",
    )
    app.state.models = models
    app.state.limits = limits
    app.state.worker = worker
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    _error_handlers(app)
    _openapi_with_limits(app, limits)
    _pages(app, models, limits)
    Endpoints(models, limits, worker).route(app)
    return app


def _openapi_with_limits(app: FastAPI, limits: Limits) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            app.openapi_schema = _document_limits(
                get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes),
                limits,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _pages(app: FastAPI, models: dict[str, ServedModel], limits: Limits) -> None:
    """The playground page, the health check and the model listing."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz", response_model=s.Health, summary="200 once the models are loaded")
    async def healthz() -> s.Health:
        return s.Health(status="ok", models=len(models))

    @app.get("/v1/models", response_model=s.ModelsResponse, summary="the loaded models and what they offer")
    async def list_models() -> s.ModelsResponse:
        return s.ModelsResponse(models=[m.info() for m in models.values()], limits=asdict(limits))


ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": s.ErrorBody, "description": "invalid request or input the model cannot take"},
    413: {"model": s.ErrorBody, "description": "input over the server's limits"},
    404: {"model": s.ErrorBody, "description": "unknown model"},
    400: {"model": s.ErrorBody, "description": "no single model fits the request"},
}
INPUT_FLAG = "rnnkit serve --max-input-length"


class Endpoints:
    """The ``/v1/<service>`` endpoints. Each picks the model, checks the request against the server's limits and
    with the checks of the CLI verbs (``rnnkit.predict``: per request, before it can join a batch), then hands the
    work to the inference worker."""

    def __init__(self, models: dict[str, ServedModel], limits: Limits, worker: InferenceWorker) -> None:
        self.models, self.limits, self.worker = models, limits, worker

    def route(self, app: FastAPI) -> None:
        post = app.post
        post(
            "/v1/generate",
            response_model=s.GenerateResponse,
            responses=ERRORS,
            summary="continue a prompt with a language model",
        )(self.generate)
        post(
            "/v1/translate",
            response_model=s.TranslateResponse,
            responses=ERRORS,
            summary="translate a sentence (with the attention weights, when the model has attention)",
        )(self.translate)
        post("/v1/chat", response_model=s.ChatResponse, responses=ERRORS, summary="replies to a message")(self.chat)
        post(
            "/v1/classify",
            response_model=s.ClassifyResponse,
            responses=ERRORS,
            response_model_exclude_none=True,
            summary="label and class probabilities of a text (or of a numeric sequence)",
        )(self.classify)
        post(
            "/v1/forecast",
            response_model=s.ForecastResponse,
            responses=ERRORS,
            summary="forecast the next steps of a series (default: the run's own series)",
        )(self.forecast)

    # -- choosing a model and checking sizes ------------------------------------------------------------------
    def pick(self, service: str, name: str | None) -> ServedModel:
        models = self.models
        if name is not None:
            m = models.get(name)
            if m is None:
                raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(models)}", "model")
            if service not in m.endpoints:
                raise ApiError(
                    400,
                    f"model {name!r} ({m.loaded.config.task}) does not offer /v1/{service}; it "
                    f"offers {', '.join('/v1/' + e for e in m.endpoints)}",
                    "model",
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

    def over(self, field: str, n: int | None, limit: int, flag: str) -> None:
        """A number a request asks for (tokens, steps) over the server's limit: 422 naming the flag."""
        if n is not None and n > limit:
            raise ApiError(422, f"{field}: {n} is over this server's limit of {limit} (rnnkit serve {flag})", field)

    def size(self, what: str, n: int, limit: int, flag: str, unit: str = "characters") -> None:
        """An input over the server's limits: 413 naming the flag."""
        if n > limit:
            raise ApiError(413, f"{what} is {n} {unit}; this server takes at most {limit} (rnnkit serve {flag})", what)

    def text_size(self, what: str, text: str) -> None:
        predict.check_length(text, what, self.limits.max_input_length, INPUT_FLAG)

    def text_input(self, what: str, text: str, service: str) -> None:
        predict.check_text(text, what, service, self.limits.max_input_length, INPUT_FLAG)

    # -- the endpoints ----------------------------------------------------------------------------------------
    async def generate(self, req: s.GenerateRequest) -> s.GenerateResponse:
        m = self.pick("generate", req.model)
        self.text_size("prompt", req.prompt)
        n = req.max_new_tokens if "max_new_tokens" in req.model_fields_set else new_tokens_default(self.limits)
        self.over("max_new_tokens", n, self.limits.max_new_tokens, "--max-new-tokens")
        text = await self.worker.run_stream(
            ("generate", m.name),
            lambda: predict.generation_stream(
                m.loaded,
                req.prompt,
                n,
                req.temperature,
                req.top_k,
                req.top_p,
                req.seed,
                self.limits.max_input_length,
            ),
            lambda: predict.generation_batch(m.loaded),
        )
        return s.GenerateResponse(model=m.name, prompt=req.prompt, text=text)

    async def translate(self, req: s.TranslateRequest) -> s.TranslateResponse:
        m = self.pick("translate", req.model)
        self.text_input("text", req.text, "translate")
        self.over("max_new_tokens", req.max_new_tokens, self.limits.max_new_tokens, "--max-new-tokens")

        def run(texts: list[str]) -> list[dict[str, Any]]:
            return predict.translate(
                m.loaded,
                texts,
                beam=req.beam,
                max_new_tokens=req.max_new_tokens,
                alpha=req.length_penalty,
                max_input_length=self.limits.max_input_length,
            )

        key = ("translate", m.name, req.beam, req.max_new_tokens, req.length_penalty)
        r = await self.worker.run_batched(key, run, req.text)
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

    async def chat(self, req: s.ChatRequest) -> s.ChatResponse:
        m = self.pick("chat", req.model)
        self.text_input("text", req.text, "answer")
        for i, turn in enumerate(req.history):
            self.text_size(f"history[{i}]", turn)
        if req.replies is not None:
            self.size("replies", req.replies, self.limits.max_batch, "--max-batch", "replies")
        self.over("max_new_tokens", req.max_new_tokens, self.limits.max_new_tokens, "--max-new-tokens")
        options = {
            "n": req.replies,
            "decoding": req.decoding,
            "top_k": req.top_k,
            "temperature": req.temperature,
            "seed": req.seed,
            "max_new_tokens": req.max_new_tokens,
            "max_input_length": self.limits.max_input_length,
        }
        if predict.reply_decoding(m.loaded, req.decoding) in ("sample", "greedy"):  # decoded with the others
            replies = await self.worker.run_stream(
                ("chat", m.name),
                lambda: predict.reply_stream(m.loaded, req.text, req.history, **options),
                lambda: predict.generation_batch(m.loaded, "chat"),
            )
        else:  # beam search: alone
            replies = await self.worker.run(
                lambda: predict.chat(m.loaded, req.text, req.history, beam=req.beam, **options)
            )
        return s.ChatResponse(model=m.name, replies=replies)

    async def classify(self, req: s.ClassifyRequest) -> s.ClassifyResponse:
        m = self.pick("classify", req.model)
        inputs = self._classify_inputs(m, req)

        def run(items: list[Any]) -> list[dict[str, Any]]:
            return predict.classify(m.loaded, items, max_input_length=self.limits.max_input_length)

        results = await asyncio.gather(*(self.worker.run_batched(("classify", m.name), run, x) for x in inputs))
        preds = [
            s.Prediction(label=r["label"], probability=r["probability"], probabilities=r["probabilities"])
            for r in results
        ]
        if req.texts is not None:
            return s.ClassifyResponse(model=m.name, results=preds)
        return s.ClassifyResponse(model=m.name, **preds[0].model_dump())

    def _classify_inputs(self, m: ServedModel, req: s.ClassifyRequest) -> list[Any]:
        """The request's inputs, checked: texts, or one numeric sequence as an array (numbers stay numbers)."""
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
            raise ApiError(422, f'model {m.name!r} classifies text: send "text" or "texts"', "sequence")
        if req.sequence is not None:
            self.size("sequence", len(req.sequence), self.limits.max_input_length, "--max-input-length", "values")
            return [np.asarray(req.sequence, dtype=np.float64)]
        if req.texts is not None:
            self.size("texts", len(req.texts), self.limits.max_batch, "--max-batch", "texts")
            for i, t in enumerate(req.texts):
                self.text_input(f"texts[{i}]", t, "classify")
            return list(req.texts)
        assert req.text is not None
        self.text_input("text", req.text, "classify")
        return [req.text]

    async def forecast(self, req: s.ForecastRequest) -> s.ForecastResponse:
        from rnnkit.data.timeseries import future_times

        m = self.pick("forecast", req.model)
        horizon, level = predict.forecast_settings(m.loaded, req.horizon, req.level)
        self.over("horizon", horizon, self.limits.max_horizon, "--max-horizon")
        if req.history is None:
            values, times, columns, _ = predict.saved_history(m.loaded)
        else:
            self.size("history", len(req.history), self.limits.max_input_length, "--max-input-length", "points")
            columns = list(predict.describe(m.loaded)["columns"])
            rows = [r if isinstance(r, list) else [r] for r in req.history]
            widths = {len(r) for r in rows}
            if widths != {len(columns)}:
                raise ApiError(
                    422,
                    f"history: every point needs {len(columns)} value(s), one per column "
                    f"({', '.join(columns)}); got rows of {sorted(widths)}",
                    "history",
                )
            values = np.asarray(rows, dtype=np.float64)
            times = [str(i) for i in range(values.shape[0])]
        fc = await self.worker.run(lambda: predict.forecast(m.loaded, values, horizon, level, seed=req.seed))
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

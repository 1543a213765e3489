"""What a trained run answers: generation, translation, chat replies, classification and forecasts.

The CLI verbs (``generate``, ``translate``, ``chat``, ``classify``, ``forecast``) and the HTTP server call these
functions, so both check their inputs and choose their defaults the same way. Each function takes a
``rnnkit.runs.LoadedRun`` and raises ``UserError`` for anything the caller can fix (the CLI exits 2, the server
answers 422). A task takes part by declaring the services it offers (``Task.services``) and implementing their
methods (``generate``, ``translate``, ``replies``, ``classify``, ``forecast``); its ``describe()`` says what a
client needs to know. Nothing here names a task class or reads a task's configuration, so a new task registered
in ``rnnkit.tasks`` is served as soon as it declares a service.

Inputs are checked here, once, for both: a text that is empty or only whitespace is refused (there is nothing to
classify, translate or answer), and a text over ``max_input_length`` characters (numeric sequences: values) is
refused before any work starts, since decoding cost grows with its length. The CLI verbs apply the server's
default limit (``MAX_INPUT_LENGTH``, raised with ``--max-input-length`` on either).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.errors import UserError, UserValueError
from rnnkit.runs import LoadedRun
from rnnkit.tasks.base import SERVICES as _SERVICE_NAMES

MAX_INPUT_LENGTH = 2000  # characters of a text, values of a numeric sequence (rnnkit.api.checks says it too)


class InputTooLong(UserValueError):
    """An input over the length limit (the server answers 413 Content Too Large, the CLI exits 2)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what, reason)


def check_length(
    text: str,
    what: str = "text",
    limit: int | None = MAX_INPUT_LENGTH,
    flag: str = "max_input_length=...",
    unit: str = "characters",
) -> None:
    """Refuse ``text`` longer than ``limit`` (None: no limit)."""
    n = len(text) if unit == "characters" else len(_values(text))
    if limit is not None and n > limit:
        raise InputTooLong(what, f"is {n} {unit}; the limit is {limit} ({flag})")


def check_text(
    text: str,
    what: str = "text",
    service: str = "classify",
    limit: int | None = MAX_INPUT_LENGTH,
    flag: str = "max_input_length=...",
    unit: str = "characters",
) -> None:
    """Refuse an empty or whitespace-only ``text``, or one over ``limit``."""
    check_not_empty(text, what, service)
    check_length(text, what, limit, flag, unit)


def check_not_empty(text: str, what: str = "text", service: str = "classify") -> None:
    """Refuse an empty or whitespace-only ``text``: there is nothing to ``service``."""
    if not text.strip():
        raise UserError(f"{what}: nothing to {service} (the text is empty)")


def argument_names(name: str, n: int) -> list[str]:
    """How a length error names each of ``n`` inputs the caller gave as its argument ``name``: ``name`` for one,
    ``name[i]`` (from 0, as Python indexes them) for several - an ``ArgumentError``, so Python says
    ``classify(inputs[1]=...)`` and the CLI its own name for the argument (``TEXT[1]``)."""
    return [name] if n == 1 else [f"{name}[{i}]" for i in range(n)]


def input_unit(loaded: LoadedRun) -> str:
    """What an input's length counts: characters of a text, or values of a numeric sequence (sequence classifiers
    read whitespace- or comma-separated numbers)."""
    return "values" if loaded.task.describe().get("input") == "sequence" else "characters"


def _values(text: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", text.strip()) if v]


# service -> how the CLI says a run cannot provide it
SERVICES: dict[str, str] = {
    "generate": "does not generate text",
    "translate": "does not translate (it is not seq2seq)",
    "chat": "is not a chatbot (not seq2seq)",
    "classify": "is not a classifier",
    "forecast": "does not forecast time series",
}
assert tuple(SERVICES) == _SERVICE_NAMES


def can(loaded: LoadedRun, service: str) -> bool:
    """Whether the run answers ``service`` (one of ``SERVICES``): its task offers it and the run is for it (a
    sequence-to-sequence run trained on dialogue chats and does not translate, one trained on a language pair
    translates and does not chat)."""
    return service in services(loaded)


def require(loaded: LoadedRun, service: str) -> Any:
    """The run's task, or a UserError naming the run when it cannot provide ``service``."""
    if not can(loaded, service):
        if service in loaded.task.services:  # the task could, but this run was not trained for it
            offered = " and ".join(services(loaded)) or "nothing"
            raise UserError(
                f"{loaded.run.path}: this {loaded.config.task} run (recipe {loaded.config.recipe!r}) was trained "
                f"for {offered}, not for {service}"
            )
        raise UserError(f"{loaded.run.path}: task {loaded.config.task!r} {SERVICES[service]}")
    return loaded.task


def services(loaded: LoadedRun) -> tuple[str, ...]:
    """What a run is *for*: the services a server offers it under (and the playground shows a tab for); the task
    decides (a sequence-to-sequence run trained on dialogue is a chatbot, otherwise a translator)."""
    return tuple(s for s in loaded.task.served() if s in SERVICES)


def describe(loaded: LoadedRun) -> dict[str, Any]:
    """Plain facts a client needs to form requests: labels, input shape, forecast columns, decoding defaults."""
    return dict(loaded.task.describe())


def _at_least(name: str, value: float | None, low: float) -> None:
    """The argument ``name`` (None: the run's default) must be >= ``low``; the message names it as the caller
    knows it (the API call, the CLI option, the JSON field: see rnnkit.errors.ArgumentError)."""
    if value is not None and value < low:
        raise UserValueError(name, f"must be >= {low}, got {value}")


# -- the services -------------------------------------------------------------------------------------------
def generate(
    loaded: LoadedRun,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    max_input_length: int | None = MAX_INPUT_LENGTH,
) -> str:
    """Continue ``prompt`` by ``max_new_tokens`` tokens (temperature 0 = greedy; an empty prompt starts a new
    sentence)."""
    from rnnkit.decode.sampling import SamplingOptions

    task = require(loaded, "generate")
    check_length(prompt, "prompt", max_input_length)
    _at_least("max_new_tokens", max_new_tokens, 1)
    opts = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
    return task.generate(loaded.model, prompt, max_new_tokens, opts, seed=seed)


def generation_stream(
    loaded: LoadedRun,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
    max_input_length: int | None = MAX_INPUT_LENGTH,
) -> Any:
    """``generate``'s request as a stream for a shared :func:`generation_batch` (the server's step-level batching):
    the same text as ``generate`` with the same arguments, up to float-rounding ties."""
    from rnnkit.decode.sampling import SamplingOptions

    task = require(loaded, "generate")
    check_length(prompt, "prompt", max_input_length)
    _at_least("max_new_tokens", max_new_tokens, 1)
    opts = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
    return task.generation_stream(loaded.model, prompt, max_new_tokens, opts, seed=seed)


def generation_batch(loaded: LoadedRun, service: str = "generate") -> Any:
    """An empty :class:`~rnnkit.decode.stream.StreamBatch` over the run's model, for ``service`` (generate |
    chat) streams."""
    return require(loaded, service).generation_batch(loaded.model)


def translate(
    loaded: LoadedRun,
    texts: Sequence[str],
    beam: int | None = None,
    max_new_tokens: int | None = None,
    alpha: float | None = None,
    max_input_length: int | None = MAX_INPUT_LENGTH,
    name: str = "texts",
) -> list[dict[str, Any]]:
    """Translations with tokens, score and attention (target x source, or None) per input, in input order.
    ``name``: what the caller calls ``texts`` (an input over the limit is said as ``argument_names`` says)."""
    task = require(loaded, "translate")
    if not texts:
        raise UserError("nothing to translate")
    for i, (text, arg) in enumerate(zip(texts, argument_names(name, len(texts))), start=1):
        check_not_empty(text, f"text {i}" if len(texts) > 1 else "text", "translate")
        check_length(text, arg, max_input_length)
    _at_least("beam", beam, 1)
    _at_least("max_new_tokens", max_new_tokens, 1)
    return task.translate(loaded.model, list(texts), beam=beam, max_len=max_new_tokens, alpha=alpha)


def chat(
    loaded: LoadedRun,
    text: str,
    history: Sequence[str] = (),
    n: int | None = None,
    decoding: str | None = None,
    top_k: int | None = None,
    temperature: float | None = None,
    beam: int | None = None,
    seed: int | None = None,
    max_new_tokens: int | None = None,
    max_input_length: int | None = MAX_INPUT_LENGTH,
) -> list[str]:
    """``n`` candidate replies to ``text`` after the conversation ``history`` (unset options: the run's own)."""
    task = require(loaded, "chat")
    check_text(text, "text", "answer", max_input_length)
    for i, turn in enumerate(history):
        check_length(turn, f"history[{i}]", max_input_length)
    for name, v in (("replies", n), ("top_k", top_k), ("beam", beam), ("max_new_tokens", max_new_tokens)):
        _at_least(name, v, 0 if name == "top_k" else 1)
    _at_least("temperature", temperature, 0)
    return task.replies(
        loaded.model,
        text,
        list(history),
        n=n,
        method=decoding,
        top_k=top_k,
        temperature=temperature,
        beam=beam,
        seed=seed,
        max_len=max_new_tokens,
    )


def reply_stream(
    loaded: LoadedRun,
    text: str,
    history: Sequence[str] = (),
    n: int | None = None,
    decoding: str | None = None,
    top_k: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    max_input_length: int | None = MAX_INPUT_LENGTH,
    max_new_tokens: int | None = None,
) -> Any:
    """A sampled or greedy ``chat`` request as a stream for a shared :func:`generation_batch` (``service="chat"``):
    the same replies as ``chat`` with the same arguments, up to float-rounding ties."""
    task = require(loaded, "chat")
    check_text(text, "text", "answer", max_input_length)
    for i, turn in enumerate(history):
        check_length(turn, f"history[{i}]", max_input_length)
    for name, v in (("replies", n), ("top_k", top_k), ("max_new_tokens", max_new_tokens)):
        _at_least(name, v, 0 if name == "top_k" else 1)
    _at_least("temperature", temperature, 0)
    return task.reply_stream(
        loaded.model,
        text,
        list(history),
        n=n,
        method=decoding,
        top_k=top_k,
        temperature=temperature,
        seed=seed,
        max_len=max_new_tokens,
    )


def reply_decoding(loaded: LoadedRun, decoding: str | None) -> str:
    """The decoding a chat request gets: its own, or the run's ``model.reply_decoding``."""
    return decoding if decoding is not None else str(require(loaded, "chat").describe().get("reply_decoding", "sample"))


def classify(
    loaded: LoadedRun,
    inputs: Sequence[str | np.ndarray],
    max_input_length: int | None = MAX_INPUT_LENGTH,
    name: str = "inputs",
) -> list[dict[str, Any]]:
    """Label, its probability and every class's probability per input: a text, or for a sequence classifier its
    numbers - an array (in the order ``describe()["input_format"]`` gives) or the same written as text.
    ``name``: what the caller calls ``inputs`` (an input over the limit is said as ``argument_names`` says)."""
    task = require(loaded, "classify")
    if not inputs:
        raise UserError("nothing to classify")
    unit = input_unit(loaded)
    for i, (item, arg) in enumerate(zip(inputs, argument_names(name, len(inputs))), start=1):
        what = f"text {i}" if len(inputs) > 1 else "text"
        if isinstance(item, str):
            check_not_empty(item, what, "classify")
            check_length(item, arg, max_input_length, unit=unit)
            continue
        if unit != "values":
            raise UserError(f"{what}: this run classifies text, not numbers")
        values = np.asarray(item, dtype=np.float64)
        if max_input_length is not None and values.size > max_input_length:
            raise InputTooLong(arg, f"is {values.size} values; the limit is {max_input_length} (max_input_length=...)")
        if values.size == 0 or not np.isfinite(values).all():
            raise UserError(f"{what}: needs finite numbers ({describe(loaded).get('input_format', '')})")
    return task.classify(loaded.model, list(inputs))


def forecast_settings(loaded: LoadedRun, horizon: int | None = None, level: float | None = None) -> tuple[int, float]:
    """The horizon and interval coverage to forecast with: the given ones, checked, or the run's defaults."""
    info = require(loaded, "forecast").describe()
    horizon = info["horizon"] if horizon is None else horizon
    _at_least("horizon", horizon, 1)
    level = info["interval"] if level is None else level
    if not 0 < level < 1:
        raise UserValueError("level", f"must be in (0, 1), got {level}")
    return horizon, level


def saved_history(loaded: LoadedRun) -> tuple[np.ndarray, list[str], list[str], str]:
    """The end of the run's own series kept in its checkpoint: values (n, k), times, columns, source."""
    saved = require(loaded, "forecast").saved
    return (
        np.asarray(saved["history"], dtype=np.float64),
        list(saved["history_times"]),
        list(saved["columns"]),
        str(saved["source"]),
    )


def forecast(
    loaded: LoadedRun,
    values: np.ndarray,
    horizon: int,
    level: float,
    series: Any = None,
    seed: int = 0,
    forecaster: str | None = None,
    candidates: bool = False,
    exog: np.ndarray | None = None,
) -> dict[str, Any]:
    """``horizon`` steps after the end of ``values`` (n, k), original units: mean, lower, upper, each (horizon, k),
    ``forecaster`` (what gave them: the model, a baseline or the ensemble) and ``note`` (see the task's
    ``forecast``); ``exog``: the covariates of a run that reads them (n + horizon rows)."""
    task = require(loaded, "forecast")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise UserError("the history must be a non-empty list of values (or of rows of values)")
    started = np.maximum.accumulate(np.isfinite(values), axis=0)  # a panel's shorter series: NaN before they start
    if not np.isfinite(values[started]).all() or not started[-1].all():
        raise UserError("the history holds a value that is not a finite number")
    return task.forecast(
        loaded.model,
        values,
        horizon,
        level,
        series=series,
        seed=seed,
        forecaster=forecaster,
        candidates=candidates,
        exog=exog,
    )

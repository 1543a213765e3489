"""What a trained run answers: generation, translation, chat replies, classification and forecasts.

The CLI verbs (``generate``, ``translate``, ``chat``, ``classify``, ``forecast``) and the HTTP server call these
functions, so both check their inputs and choose their defaults the same way. Each function takes a
``rnnkit.runs.LoadedRun`` and raises ``UserError`` for anything the caller can fix (the CLI exits 2, the server
answers 422). A task takes part by implementing the method a service needs (``generate``, ``translate``,
``replies``, ``classify``, ``forecast``); nothing here names a task class, so a new task registered in
``rnnkit.tasks`` is served as soon as it has one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.errors import UserError
from rnnkit.runs import LoadedRun

# service -> (task method that provides it, how the CLI says a run cannot)
SERVICES: dict[str, tuple[str, str]] = {
    "generate": ("generate", "does not generate text"),
    "translate": ("translate", "does not translate (it is not seq2seq)"),
    "chat": ("replies", "is not a chatbot (not seq2seq)"),
    "classify": ("classify", "is not a classifier"),
    "forecast": ("forecast", "does not forecast time series"),
}


def can(loaded: LoadedRun, service: str) -> bool:
    """Whether the run's task implements ``service`` (one of ``SERVICES``)."""
    return hasattr(loaded.task, SERVICES[service][0])


def require(loaded: LoadedRun, service: str) -> Any:
    """The run's task, or a UserError naming the run when it cannot provide ``service``."""
    if not can(loaded, service):
        raise UserError(f"{loaded.run.path}: task {loaded.config.task!r} {SERVICES[service][1]}")
    return loaded.task


def services(loaded: LoadedRun) -> tuple[str, ...]:
    """What a run is *for*: the services a server offers it under (and the playground shows a tab for).

    A sequence-to-sequence run can technically both translate and chat; it is offered as a chatbot when it was
    trained on dialogue (earlier turns as context, or the same language on both sides) and as a translator
    otherwise, so a request that names no model reaches the right one.
    """
    found = tuple(s for s in SERVICES if can(loaded, s))
    if "translate" in found and "chat" in found:
        d = loaded.config.data
        src, tgt = str(getattr(d, "source_lang", "")).lower(), str(getattr(d, "target_lang", "")).lower()
        dialogue = getattr(d, "context_turns", 0) > 0 or (src != "" and src == tgt)
        found = tuple(s for s in found if s != ("translate" if dialogue else "chat"))
    return found


def describe(loaded: LoadedRun) -> dict[str, Any]:
    """Plain facts a client needs to form requests: labels, input shape, forecast columns, decoding defaults."""
    task, cfg = loaded.task, loaded.config
    info: dict[str, Any] = {}
    if can(loaded, "generate"):
        info["level"] = getattr(cfg.data, "level", "word")
    if can(loaded, "classify"):
        info["labels"] = list(getattr(task, "labels", None) or [])
        if hasattr(task, "describe_input"):
            info["input"] = "sequence"
            info["input_format"] = task.describe_input()
        else:
            info["input"] = "text"
    if can(loaded, "forecast"):
        saved = getattr(task, "saved", {}) or {}
        info.update({"columns": list(getattr(task, "columns", None) or []), "horizon": cfg.data.horizon,
                     "lookback": cfg.data.lookback, "interval": cfg.model.interval,
                     "history_points": len(saved.get("history", []))})
    if can(loaded, "translate"):
        d, m = cfg.data, cfg.model
        info.update({"source_lang": d.source_lang, "target_lang": d.target_lang, "beam": m.beam,
                     "context_turns": d.context_turns, "replies": m.replies, "top_k": m.top_k,
                     "temperature": m.temperature, "attention": m.attention})
    return info


# -- the services -------------------------------------------------------------------------------------------
def generate(loaded: LoadedRun, prompt: str, words: int, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, seed: int | None = None) -> str:
    """Continue ``prompt`` by ``words`` words (temperature 0 = greedy)."""
    from rnnkit.decode.sampling import SamplingOptions

    task = require(loaded, "generate")
    if words < 1:
        raise UserError(f"--words must be at least 1, got {words}")
    opts = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
    return task.generate(loaded.model, prompt, words, opts, seed=seed)


def generation_stream(loaded: LoadedRun, prompt: str, words: int, temperature: float = 1.0, top_k: int = 0,
                      top_p: float = 1.0, seed: int | None = None) -> Any:
    """``generate``'s request as a stream for a shared :func:`generation_batch` (the server's step-level batching):
    the same text as ``generate`` with the same arguments, up to float-rounding ties."""
    from rnnkit.decode.sampling import SamplingOptions

    task = require(loaded, "generate")
    if words < 1:
        raise UserError(f"--words must be at least 1, got {words}")
    opts = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p)
    return task.generation_stream(loaded.model, prompt, words, opts, seed=seed)


def generation_batch(loaded: LoadedRun, service: str = "generate") -> Any:
    """An empty :class:`~rnnkit.decode.stream.StreamBatch` over the run's model, for ``service`` (generate |
    chat) streams."""
    return require(loaded, service).generation_batch(loaded.model)


def translate(loaded: LoadedRun, texts: Sequence[str], beam: int | None = None, max_len: int | None = None,
              alpha: float | None = None) -> list[dict[str, Any]]:
    """Translations with tokens, score and attention (target x source, or None) per input, in input order."""
    task = require(loaded, "translate")
    if beam is not None and beam < 1:
        raise UserError(f"--beam must be >= 1, got {beam}")
    if max_len is not None and max_len < 1:
        raise UserError(f"--max-length must be >= 1, got {max_len}")
    return task.translate(loaded.model, list(texts), beam=beam, max_len=max_len, alpha=alpha)


def chat(loaded: LoadedRun, text: str, history: Sequence[str] = (), n: int | None = None,
         decoding: str | None = None, top_k: int | None = None, temperature: float | None = None,
         beam: int | None = None, seed: int | None = None, max_len: int | None = None) -> list[str]:
    """``n`` candidate replies to ``text`` after the conversation ``history`` (unset options: the run's own)."""
    task = require(loaded, "chat")
    for name, v in (("replies", n), ("top_k", top_k), ("beam", beam), ("max_words", max_len)):
        low = 0 if name == "top_k" else 1
        if v is not None and v < low:
            raise UserError(f"--{name.replace('_', '-')} must be >= {low}, got {v}")
    if temperature is not None and temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {temperature}")
    return task.replies(loaded.model, text, list(history), n=n, method=decoding, top_k=top_k,
                        temperature=temperature, beam=beam, seed=seed, max_len=max_len)


def reply_stream(loaded: LoadedRun, text: str, history: Sequence[str] = (), n: int | None = None,
                 decoding: str | None = None, top_k: int | None = None, temperature: float | None = None,
                 seed: int | None = None) -> Any:
    """A sampled or greedy ``chat`` request as a stream for a shared :func:`generation_batch` (``service="chat"``):
    the same replies as ``chat`` with the same arguments, up to float-rounding ties."""
    task = require(loaded, "chat")
    for name, v in (("replies", n), ("top_k", top_k)):
        if v is not None and v < (0 if name == "top_k" else 1):
            raise UserError(f"--{name.replace('_', '-')} must be >= {0 if name == 'top_k' else 1}, got {v}")
    if temperature is not None and temperature < 0:
        raise UserError(f"--temperature must be >= 0, got {temperature}")
    return task.reply_stream(loaded.model, text, list(history), n=n, method=decoding, top_k=top_k,
                             temperature=temperature, seed=seed)


def reply_decoding(loaded: LoadedRun, decoding: str | None) -> str:
    """The decoding a chat request gets: its own, or the run's ``model.reply_decoding``."""
    return decoding if decoding is not None else str(getattr(loaded.config.model, "reply_decoding", "sample"))


def classify(loaded: LoadedRun, inputs: Sequence[str]) -> list[dict[str, Any]]:
    """Label, its probability and every class's probability per input (text, or numbers written as text)."""
    task = require(loaded, "classify")
    if not inputs:
        raise UserError("nothing to classify")
    return task.classify(loaded.model, list(inputs))


def forecast_settings(loaded: LoadedRun, horizon: int | None = None, level: float | None = None
                      ) -> tuple[int, float]:
    """The horizon and interval coverage to forecast with: the given ones, checked, or the run's defaults."""
    require(loaded, "forecast")
    horizon = loaded.config.data.horizon if horizon is None else horizon
    if horizon < 1:
        raise UserError(f"--horizon must be at least 1, got {horizon}")
    level = loaded.config.model.interval if level is None else level
    if not 0 < level < 1:
        raise UserError(f"--level must be in (0, 1), got {level}")
    return horizon, level


def saved_history(loaded: LoadedRun) -> tuple[np.ndarray, list[str], list[str], str]:
    """The end of the run's own series kept in its checkpoint: values (n, k), times, columns, source."""
    saved = require(loaded, "forecast").saved
    return (np.asarray(saved["history"], dtype=np.float64), list(saved["history_times"]), list(saved["columns"]),
            str(saved["source"]))


def forecast(loaded: LoadedRun, values: np.ndarray, horizon: int, level: float, series: Any = None,
             seed: int = 0) -> dict[str, np.ndarray]:
    """``horizon`` steps after the end of ``values`` (n, k), original units: mean, lower, upper, each (horizon, k)."""
    task = require(loaded, "forecast")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise UserError("the history must be a non-empty list of values (or of rows of values)")
    if not np.isfinite(values).all():
        raise UserError("the history holds a value that is not a finite number")
    return task.forecast(loaded.model, values, horizon, level, series=series, seed=seed)

"""The task registry: a task is data + model + loss + metrics + decoding, registered under a name.

The CLI, the tuner, the server and the benchmarks all reach tasks through `get_task`, so a new task
becomes trainable, tunable and servable by registering itself here.
"""

from __future__ import annotations

import importlib

from rnnkit.errors import UserError
from rnnkit.tasks.base import Task

# task name -> module that registers it; imported lazily so `rnnkit --help` stays fast
_MODULES: dict[str, str] = {
    "lm": "rnnkit.tasks.lm",
    "parity": "rnnkit.tasks.parity",
    "forecast": "rnnkit.tasks.forecast",
    "text-classify": "rnnkit.tasks.text_classify",
    "sequence-classify": "rnnkit.tasks.sequence_classify",
    "seq2seq": "rnnkit.tasks.seq2seq",
}
_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a Task subclass available under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def add_task_module(name: str, module: str) -> None:
    """Let a task living outside this package be found by name (imported on first use)."""
    _MODULES[name] = module


def get_task(name: str) -> type[Task]:
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown task {name!r} (known: {', '.join(sorted(_MODULES))})") from None


def task_names() -> list[str]:
    return sorted(_MODULES)


__all__ = ["Task", "register", "get_task", "task_names", "add_task_module"]

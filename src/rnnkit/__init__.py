"""rnnkit: recurrent neural networks on PyTorch, from the equations to shipped models.

The Python API (the command line is a thin layer over it)::

    import rnnkit
    run = rnnkit.train("sms-spam", max_steps=300)                 # a recipe -> rnnkit.Run
    run = rnnkit.train("text-classify", data=[(text, label), ...])  # a task on your own data
    run.evaluate("test"); run.classify(["free entry ..."]); run.metrics
    run = rnnkit.load("runs/spam"); run.resume(max_steps=600)
    rnnkit.recipes(); rnnkit.tune("sms-spam", space={...}, trials=8)

``help(rnnkit.train)``, ``help(rnnkit.Run)``, ``help(rnnkit.callbacks)`` explain each. Nothing heavy (PyTorch)
is imported until one of them is used, so ``import rnnkit`` stays instant.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from rnnkit.version import __version__

# name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "load": "rnnkit.api.training",
    "recipes": "rnnkit.api.training",
    "check": "rnnkit.api.training",
    "Run": "rnnkit.api.run",
    "Study": "rnnkit.api.training",
    "UserError": "rnnkit.errors",
}
_SUBMODULES = ("callbacks", "api", "errors", "datasets")

if TYPE_CHECKING:  # for type checkers and IDEs: the names resolve as if imported eagerly
    from rnnkit import callbacks as callbacks
    from rnnkit.api.run import Run as Run
    from rnnkit.api.training import Study as Study
    from rnnkit.api.training import check as check
    from rnnkit.api.training import load as load
    from rnnkit.api.training import recipes as recipes
    from rnnkit.api.training import train as train
    from rnnkit.api.training import tune as tune
    from rnnkit.errors import UserError as UserError

__all__ = [
    "Run",
    "Study",
    "UserError",
    "__version__",
    "callbacks",
    "check",
    "datasets",
    "load",
    "recipes",
    "train",
    "tune",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"rnnkit.{name}")
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Rnnkit(types.ModuleType):
    """The type of the ``rnnkit`` module: ``rnnkit.train`` and ``rnnkit.tune`` are the API's functions.

    Why: ``rnnkit.train`` and ``rnnkit.tune`` are also packages (the training loop, the tuner). Importing a
    submodule binds it as an attribute of its parent, so the first ``import rnnkit.train.loop`` would replace the
    function ``rnnkit.train`` by the package. These two names are properties of the module's type instead, which
    the import system's binding cannot override. The packages are imported by their full names as usual
    (``from rnnkit.train.loop import Trainer``; not ``import rnnkit.train.loop as loop``).
    """

    @property
    def train(self) -> Any:
        return importlib.import_module("rnnkit.api.training").train

    @train.setter
    def train(self, value: Any) -> None:  # the import system binding the package rnnkit.train: keep the function
        pass

    @property
    def tune(self) -> Any:
        return importlib.import_module("rnnkit.api.training").tune

    @tune.setter
    def tune(self, value: Any) -> None:
        pass


sys.modules[__name__].__class__ = _Rnnkit

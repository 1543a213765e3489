"""The public Python API (what ``import rnnkit`` offers; the CLI verbs call nothing else).

    rnnkit.train(recipe_or_task, data=..., overrides=..., max_steps=..., callbacks=...) -> Run
    rnnkit.load(path, checkpoint="best") -> Run
    rnnkit.tune(recipe, space=..., trials=...) -> Study
    rnnkit.recipes(), rnnkit.check(recipe, overrides=...)
    Run.evaluate / predict / generate / classify / translate / chat / forecast / resume / export, Run.metrics

See each function's docstring: ``help(rnnkit.train)``.

The command line (``rnnkit.cli``, ``rnnkit.commands``) imports this package and nothing else of rnnkit (an
import-linter contract in pyproject.toml says so): besides the API proper it finds here the few pieces a command
line needs to speak like the API - the errors, the checks of its options and inputs (``cli_number``,
``check_text``, ``check_output``), the limits, the data-set commands (``datasets``) and the server (``serve``).
Names are imported on first use (PEP 562), so ``rnnkit --help`` loads neither PyTorch nor numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
_NAMES = {
    # the API
    "Run": "rnnkit.api.run",
    "Study": "rnnkit.api.training",
    "check": "rnnkit.api.training",
    "gradient_flow": "rnnkit.api.training",
    "load": "rnnkit.api.training",
    "recipes": "rnnkit.api.training",
    "train": "rnnkit.api.training",
    "tune": "rnnkit.api.training",
    "tune_report": "rnnkit.api.training",
    "Prediction": "rnnkit.api.results",
    "Translation": "rnnkit.api.results",
    # what a command line needs to speak like the API
    "check_text": "rnnkit.api.checks",
    "check_length": "rnnkit.api.checks",
    "check_output": "rnnkit.api.checks",
    "parse_fractions": "rnnkit.api.checks",
    "MAX_NEW_TOKENS": "rnnkit.api.checks",
    "MAX_INPUT_LENGTH": "rnnkit.api.checks",
    "DEFAULT_NEW_TOKENS": "rnnkit.config",
    "MAX_COUNT": "rnnkit.config",
    "MAX_SEED": "rnnkit.config",
    "MAX_SIZE": "rnnkit.config",
    "Overrides": "rnnkit.config",
    "RenamedKeyWarning": "rnnkit.config",
    "cli_number": "rnnkit.config",
    "parse_overrides": "rnnkit.config",
    "ArgumentError": "rnnkit.errors",
    "RenamedArgumentWarning": "rnnkit.errors",
    "UserError": "rnnkit.errors",
    "UserTypeError": "rnnkit.errors",
    "UserValueError": "rnnkit.errors",
    "__version__": "rnnkit.version",
}
_SUBMODULES = ("datasets", "serve", "text")  # rnnkit.api.datasets, .serve, .text (see each)

if TYPE_CHECKING:  # for type checkers and IDEs: the names resolve as if imported eagerly
    from rnnkit.api.checks import MAX_INPUT_LENGTH as MAX_INPUT_LENGTH
    from rnnkit.api.checks import MAX_NEW_TOKENS as MAX_NEW_TOKENS
    from rnnkit.api.checks import check_length as check_length
    from rnnkit.api.checks import check_output as check_output
    from rnnkit.api.checks import check_text as check_text
    from rnnkit.api.checks import parse_fractions as parse_fractions
    from rnnkit.api.results import Prediction as Prediction
    from rnnkit.api.results import Translation as Translation
    from rnnkit.api.run import Run as Run
    from rnnkit.api.training import Study as Study
    from rnnkit.api.training import check as check
    from rnnkit.api.training import gradient_flow as gradient_flow
    from rnnkit.api.training import load as load
    from rnnkit.api.training import recipes as recipes
    from rnnkit.api.training import train as train
    from rnnkit.api.training import tune as tune
    from rnnkit.api.training import tune_report as tune_report
    from rnnkit.config import DEFAULT_NEW_TOKENS as DEFAULT_NEW_TOKENS
    from rnnkit.config import MAX_COUNT as MAX_COUNT
    from rnnkit.config import MAX_SEED as MAX_SEED
    from rnnkit.config import MAX_SIZE as MAX_SIZE
    from rnnkit.config import Overrides as Overrides
    from rnnkit.config import RenamedKeyWarning as RenamedKeyWarning
    from rnnkit.config import cli_number as cli_number
    from rnnkit.config import parse_overrides as parse_overrides
    from rnnkit.errors import ArgumentError as ArgumentError
    from rnnkit.errors import RenamedArgumentWarning as RenamedArgumentWarning
    from rnnkit.errors import UserError as UserError
    from rnnkit.errors import UserTypeError as UserTypeError
    from rnnkit.errors import UserValueError as UserValueError
    from rnnkit.version import __version__ as __version__

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"rnnkit.api.{name}")
    raise AttributeError(f"module 'rnnkit.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

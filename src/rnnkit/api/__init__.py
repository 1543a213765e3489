"""The public Python API (what ``import rnnkit`` offers; the CLI verbs call nothing else).

    rnnkit.train(recipe_or_task, data=..., overrides=..., max_steps=..., callbacks=...) -> Run
    rnnkit.load(path, checkpoint="best") -> Run
    rnnkit.tune(recipe, space=..., trials=...) -> Study
    rnnkit.recipes(), rnnkit.check(recipe, overrides=...)
    Run.evaluate / generate / classify / translate / chat / forecast / resume / export, Run.metrics

See each function's docstring: ``help(rnnkit.train)``.
"""

from rnnkit.api.run import Run, check_length, check_text
from rnnkit.api.training import Study, check, gradient_flow, load, recipes, train, tune, tune_report

__all__ = [
    "Run",
    "Study",
    "check",
    "check_length",
    "check_text",
    "gradient_flow",
    "load",
    "recipes",
    "train",
    "tune",
    "tune_report",
]

"""Property test of configuration validation through the real CLI entry point (``rnnkit.cli.main``).

Every numeric field of every shipped recipe is fed 0, negative numbers, nan, inf, huge numbers and wrong types
(strings, lists, booleans, tables) with ``rnnkit train RECIPE --check --set key=value``, which resolves the
configuration exactly as a training run does and builds the model (on the meta device, from placeholder
vocabularies). Whatever the value, the outcome is acceptance (exit 0) or exit 2 with one line naming the field;
never a traceback or exit 1. Hypothesis then draws further values at random.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import typing
from contextlib import redirect_stderr, redirect_stdout
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.cli import main
from rnnkit.config import SECTIONS, field_types
from rnnkit.tasks.recipes import list_recipes, load_recipe

RECIPES = [name for name, _ in list_recipes()]
# the edge cases, as typed after --set key=: zero, negatives, a fraction, nan, inf, huge, and wrong types
EDGES = ["0", "-1", "-0.5", "0.5", "nan", "-inf", "1e300", str(10**30), '"abc"', "[1, 2]", "true", "{a = 1}"]


def _numeric(tp: typing.Any) -> bool:
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0] in (int, float)
    return tp in (int, float)


@cache
def numeric_keys(recipe: str, shared: bool = True) -> tuple[str, ...]:
    """The recipe's numeric keys; ``shared=False`` leaves out [optim] and [train] (the same for every recipe)."""
    config = load_recipe(recipe)
    keys = []
    for section in SECTIONS if shared else ("data", "model"):
        obj = getattr(config, section)
        hints = field_types(type(obj))
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(obj) if _numeric(hints[f.name])]
    return tuple(keys)


@cache
def first_recipe_of_each_task() -> set[str]:
    first: dict[str, str] = {}
    for name in RECIPES:
        first.setdefault(load_recipe(name).task, name)
    return set(first.values())


def check(recipe: str, key: str, literal: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["train", recipe, "--check", "--json", "--set", f"{key}={literal}"])
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    if code == 0:
        assert json.loads(out.getvalue())["ok"] is True
        return
    assert code == 2, (recipe, key, literal, code, err.getvalue())
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), (recipe, key, literal, err.getvalue())
    assert key in lines[0], (recipe, key, literal, lines[0])


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_numeric_field_takes_edge_values_without_a_traceback(recipe):
    """[data] and [model] keys for every recipe; the shared [optim] / [train] keys for one recipe of each task
    (their declarations are the same everywhere; the random test below reaches them in every recipe)."""
    keys = numeric_keys(recipe, shared=recipe in first_recipe_of_each_task())
    assert keys
    for key in keys:
        for literal in EDGES:
            check(recipe, key, literal)


def _literal(value: typing.Any) -> str:
    """A Python value as the TOML literal a user would type after ``--set key=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)


VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e3, 1e3)), max_size=3),
)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_values_for_random_fields(data):
    recipe = data.draw(st.sampled_from(RECIPES), label="recipe")
    key = data.draw(st.sampled_from(numeric_keys(recipe)), label="key")
    check(recipe, key, _literal(data.draw(VALUES, label="value")))

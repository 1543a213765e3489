"""Search spaces: a TOML file with one table per config field, checked against the recipe's typed config.

    [model.hidden]
    type = "int"          # int | float | categorical
    low = 8
    high = 64
    step = 8              # optional (int: default 1; float: none = continuous)
    [optim.lr]
    type = "float"
    low = 1e-4
    high = 1e-1
    log = true            # sample on a log scale (low must be > 0)
    [model.cell]
    type = "categorical"
    choices = ["lstm", "gru"]

Every mistake is a `UserError` naming the file and the field, raised before any trial runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.config import SECTIONS, RunConfig, load_toml
from rnnkit.errors import UserError, is_file
from rnnkit.tasks.recipes import load_recipe

TYPES = ("int", "float", "categorical")
_KEYS = {
    "int": {"type", "low", "high", "step", "log"},
    "float": {"type", "low", "high", "step", "log"},
    "categorical": {"type", "choices"},
}


@dataclass
class Param:
    """One searched config field (``name`` is ``section.field``)."""

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out

    def suggest(self, trial: Any) -> Any:
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.type == "float":
            return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, self.choices)

    def grid(self) -> list[Any]:
        """The values a grid search visits."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise UserError(
                f"[{self.name}]: the grid sampler needs a step for a float range "
                f'(or use type = "categorical" with choices)'
            )
        n = int(math.floor((float(self.high) - float(self.low)) / float(self.step) + 1e-9)) + 1
        return [round(float(self.low) + i * float(self.step), 12) for i in range(n)]

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not float(self.low) <= value <= float(self.high):
            return False
        if self.step is not None:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return self.type != "int" or float(value).is_integer()


@dataclass
class SearchSpace:
    params: list[Param]
    source: str = ""

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def to_dict(self) -> dict[str, Any]:
        return {p.name: p.to_dict() for p in self.params}

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}

    def grid(self) -> dict[str, list[Any]]:
        try:
            return {p.name: p.grid() for p in self.params}
        except UserError as e:
            raise UserError(f"{self.source}: {e}") from None

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def baseline(self, config: RunConfig) -> dict[str, Any]:
        """The recipe's own values of the searched fields (to enqueue as trial 0); each must lie in the space."""
        out = {}
        for p in self.params:
            value = config.get(p.name)
            if not p.contains(value):
                raise UserError(
                    f"{self.source}: [{p.name}]: the recipe's value {value!r} lies outside the "
                    f"search space {p.to_dict()}; widen it to run the baseline"
                )
            out[p.name] = value
        return out


def _number(table: dict[str, Any], key: str, where: str) -> float | int:
    if key not in table:
        raise UserError(f"{where}: missing '{key}'")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{where}: '{key}' must be a finite number, got {v!r}")
    return v


def _param(name: str, table: Any, where: str) -> Param:
    if not isinstance(table, dict):
        raise UserError(f'{where}: expected a table like [{name}] with type = "int", low = ..., high = ...')
    kind = table.get("type")
    if kind not in TYPES:
        raise UserError(f"{where}: unknown type {kind!r} (expected one of {', '.join(TYPES)})")
    extra = set(table) - _KEYS[kind]
    if extra:
        raise UserError(
            f'{where}: unknown key(s) {", ".join(sorted(extra))} for type = "{kind}" '
            f"(allowed: {', '.join(sorted(_KEYS[kind]))})"
        )
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise UserError(f"{where}: 'choices' must be a non-empty list")
        if any(isinstance(c, (list, dict)) for c in choices):
            raise UserError(f"{where}: choices must be numbers, strings or booleans")
        if len({repr(c) for c in choices}) != len(choices):
            raise UserError(f"{where}: duplicate choices")
        return Param(name, kind, choices=list(choices))
    low, high = _number(table, "low", where), _number(table, "high", where)
    step = _number(table, "step", where) if "step" in table else None
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: 'log' must be true or false, got {log!r}")
    if kind == "int":
        for key, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and not float(v).is_integer():
                raise UserError(f"{where}: '{key}' must be an integer for type = \"int\", got {v!r}")
        low, high = int(low), int(high)
        step = int(step) if step is not None else None
    if low > high:
        raise UserError(f"{where}: low ({low}) is greater than high ({high})")
    if step is not None and step <= 0:
        raise UserError(f"{where}: step must be positive, got {step}")
    if log and low <= 0:
        raise UserError(f"{where}: log = true needs low > 0, got low = {low}")
    if log and step is not None and not (kind == "int" and step == 1):
        raise UserError(f"{where}: log = true cannot be combined with a step")
    return Param(name, kind, low=low, high=high, step=step, log=log)


def parse_space(raw: dict[str, Any], source: str = "space") -> SearchSpace:
    """Tables ``[section.field]`` -> a SearchSpace (fields are not yet checked against a recipe)."""
    params = []
    for section, fields in raw.items():
        if section not in SECTIONS:
            raise UserError(
                f"{source}: [{section}]: unknown section (expected [section.field] with section one of "
                f"{', '.join(SECTIONS)}, e.g. [model.hidden])"
            )
        if not isinstance(fields, dict) or not fields:
            raise UserError(f"{source}: [{section}]: expected one table per field, e.g. [{section}.NAME]")
        for name, table in fields.items():
            key = f"{section}.{name}"
            params.append(_param(key, table, f"{source}: [{key}]"))
    if not params:
        raise UserError(f"{source}: the search space is empty (add tables like [model.hidden] with type, low, high)")
    return SearchSpace(params, source)


def load_space(path: str | Path) -> SearchSpace:
    p = Path(path)
    if not is_file(p, "space=..."):
        raise UserError(f"space=...: file not found: {path}")
    return parse_space(load_toml(p), str(p))


def check_space(space: SearchSpace, recipe: str, overrides: dict[str, Any]) -> RunConfig:
    """Every field exists in the recipe's typed config and accepts every value the space can give.

    Returns the base configuration (recipe + overrides). A field both fixed by ``--set`` and searched is an error.
    """
    base = load_recipe(recipe, overrides)
    for p in space.params:
        where = f"{space.source}: [{p.name}]"
        if p.name in overrides:
            raise UserError(f'{where}: the field is both searched and fixed (overrides={{"{p.name}": ...}})')
        section, name = p.name.split(".", 1)
        known = hasattr(getattr(base, section), name)  # an unknown field is reported by the probes below
        current = base.get(p.name) if known else None
        numeric = isinstance(current, (int, float)) and not isinstance(current, bool)
        if known and p.type in ("int", "float") and not numeric:
            raise UserError(
                f'{where}: type = "{p.type}" but the field holds {type(current).__name__} values '
                f'(e.g. {current!r}); use type = "categorical"'
            )
        if known and p.type == "float" and isinstance(current, int):
            raise UserError(f'{where}: the field is an integer; use type = "int"')
        probes = list(p.choices) if p.type == "categorical" else [p.low, p.high]
        for value in probes:
            try:
                load_recipe(recipe, {**overrides, p.name: value})
            except UserError as e:
                msg = str(e)
                if "unknown field" in msg:
                    section = p.name.split(".")[0]
                    known = msg.split("(known: ", 1)[-1].rstrip(")") if "(known: " in msg else ""
                    raise UserError(
                        f"{where}: unknown field {p.name!r} for recipe {base.recipe!r} (task "
                        f"{base.task}; {section} fields: {known})"
                    ) from None
                raise UserError(f"{where}: value {value!r} is not valid here: {msg.split(': ', 1)[-1]}") from None
    return base

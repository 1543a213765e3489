"""Recipes and run configurations resolved for their task: TOML + overrides -> a checked ``RunConfig``.

This lives in the tasks layer because only a task knows its [data] and [model] sections; ``rnnkit.config``
supplies the section machinery (declarations, types, ranges) and knows no task.

Resolution, in order: old key names are moved to their new place (one ``RenamedKeyWarning`` per source, so old
recipes and the config.toml of old run directories still load), overrides are applied, old values are read as
their new names (``RenamedValueWarning``: ``model.backend = "fused"`` is ``"fast"``), every value is
type-checked and range-checked from its declaration, then the rules between keys are checked (``needs``
declarations, loss terms the task does not use, the task's own ``check_config``). Any failure is one
``UserError`` naming where the value came from (the file, or ``--set key=value``) and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnnkit.config import (
    SECTIONS,
    ConfigError,
    InapplicableKeyWarning,
    OptimConfig,
    RunConfig,
    TrainConfig,
    build_section,
    declaration,
    load_toml,
    origin_of,
    renamed,
    split_key,
    warn_renamed,
    warn_renamed_values,
)
from rnnkit.errors import UserError, is_dir, is_file
from rnnkit.paths import recipes_dir
from rnnkit.tasks import get_task
from rnnkit.tasks.base import Task


def section_classes(task_cls: type[Task]) -> dict[str, type]:
    return {"data": task_cls.DataConfig, "model": task_cls.ModelConfig, "optim": OptimConfig, "train": TrainConfig}


def _base_key(key: str) -> str:
    return key.split("[", 1)[0]


def config_from_dict(raw: dict[str, Any], source: str, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Resolve a recipe dict (+ overrides) into a checked RunConfig for its task. ``source`` names the file."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    unknown = set(raw) - set(SECTIONS) - {"task", "recipe", "description"}
    if unknown:
        raise UserError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            f"expected task, recipe, description and sections {', '.join(SECTIONS)}"
        )
    task_name = raw.get("task")
    if not isinstance(task_name, str):
        raise UserError(f"{source}: missing 'task = \"...\"' at the top of the recipe")
    task_cls = get_task(task_name)
    classes = section_classes(task_cls)
    for s in SECTIONS:
        if not isinstance(raw.setdefault(s, {}), dict):
            raise UserError(f"{source}: [{s}] must be a table")

    # old names written in the file
    used: list[tuple[str, str]] = []
    for s in SECTIONS:
        for old, new in renamed(classes[s]).items():
            if old in raw[s]:
                ns, nn = split_key(new)
                if nn in raw[ns]:
                    raise UserError(f"{source}: both {s}.{old} (the old name) and {new} are set; keep {new}")
                raw[ns][nn] = raw[s].pop(old)
                used.append((f"{s}.{old}", new))
    warn_renamed(source, used)

    # overrides, under their new names
    origins: dict[str, str] = {}
    for k, value in (overrides or {}).items():
        s, n = split_key(k)
        new = renamed(classes[s]).get(n)
        if new:
            warn_renamed(origin_of(overrides, k), [(k, new)])
            s, n = split_key(new)
        raw[s][n] = value
        origins[f"{s}.{n}"] = origin_of(overrides, k)

    def where(key: str) -> str:
        return origins.get(_base_key(key), source)

    # old values under their new names (model.backend = "fused" -> "fast"), one warning per source
    by_source: dict[str, list[tuple[str, str, str]]] = {}
    for s in SECTIONS:
        names = {f.name for f in dataclasses.fields(classes[s])}
        for k, value in raw[s].items():
            if k in names and isinstance(value, str):
                new_value = declaration(classes[s], k).renamed_values.get(value)
                if new_value is not None:
                    raw[s][k] = new_value
                    by_source.setdefault(where(f"{s}.{k}"), []).append((f"{s}.{k}", value, new_value))
    for src, pairs in by_source.items():
        warn_renamed_values(src, pairs)

    def fail(e: ConfigError) -> UserError:
        return UserError(f"{where(e.key)}: {e}")

    for s in SECTIONS:
        known = {f.name for f in dataclasses.fields(classes[s])}
        for k in raw[s]:
            if k not in known:
                near = difflib.get_close_matches(k, known, n=1)
                hint = f"did you mean {s}.{near[0]}? " if near else ""
                raise UserError(
                    f"{where(f'{s}.{k}')}: unknown field {k!r} in [{s}] for task {task_name!r} "
                    f"({hint}known: {', '.join(sorted(known))})"
                )
    while True:
        sections: dict[str, Any] = {}
        for s in SECTIONS:
            try:
                sections[s] = build_section(classes[s], s, raw[s])
            except ConfigError as e:
                raise fail(e) from None
        config = RunConfig(
            task=task_name,
            recipe=str(raw.get("recipe", Path(source).stem)),
            description=str(raw.get("description", "")),
            given=frozenset(f"{s}.{k}" for s in SECTIONS for k in raw[s]),
            **sections,
        )
        try:
            check_rules(config, task_cls)
        except ConfigError as e:
            if not _drop_inapplicable(e, raw, origins, source):
                raise fail(e) from None
            continue
        return config


def _drop_inapplicable(e: ConfigError, raw: dict[str, Any], origins: dict[str, str], source: str) -> bool:
    """A recipe's setting of an option the cell named by an override does not support (``--set model.cell=mamba``
    on the AWD-LSTM recipe, whose weight drop needs hidden-to-hidden matrices) is not the user's request: it is
    dropped back to its default with a warning, so every recipe runs with every cell. The same option asked for by
    the user (``--set``), or by a recipe that also names the cell, stays an error. True when it was dropped."""
    from rnnkit.cells import registry

    fields_ = {key for key, _ in registry.options().values()}
    if e.key not in fields_ or e.key in origins or "model.cell" not in origins:
        return False
    section, name = split_key(e.key)
    if name not in raw[section]:
        return False
    value = raw[section].pop(name)
    warnings.warn(
        f"{source}: {e.key} = {value!r} does not apply to model.cell = {raw['model'].get('cell')!r} "
        f"({e.reason.split(': ', 1)[-1]}); left at its default",
        InapplicableKeyWarning,
        stacklevel=4,
    )
    return True


def check_rules(config: RunConfig, task_cls: type[Task]) -> None:
    """The rules between keys: declared ``per`` and ``needs``, loss terms, then the task's own ``check_config``."""
    for s in SECTIONS:
        obj = getattr(config, s)
        for f in dataclasses.fields(obj):
            decl = declaration(type(obj), f.name)
            value = getattr(obj, f.name)
            if decl.per is not None and isinstance(value, list) and not value:
                raise ConfigError(f"{s}.{f.name}", f"is empty: give one size for every layer, or one per {decl.per}")
            if decl.per is not None and isinstance(value, list) and len(value) != config.get(decl.per):
                count = config.get(decl.per)
                raise ConfigError(
                    f"{s}.{f.name}",
                    f"= {value} holds {len(value)} values but {decl.per} = {count}: "
                    f"give one per layer, or set {decl.per} = {len(value)}",
                )
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if value == default:
                continue
            if decl.loss_term and f.name not in task_cls.loss_terms:
                users = _tasks_using(f.name) or ["none"]
                raise ConfigError(
                    f"{s}.{f.name}",
                    f"is a loss term task {config.task!r} does not use (used by: "
                    f"{', '.join(users)}); leave it at {default!r}",
                )
            for other, required in decl.needs.items():
                actual = config.get(other)
                if actual != required:
                    raise ConfigError(f"{s}.{f.name}", f"= {value!r} needs {other} = {required!r} (it is {actual!r})")
    if hasattr(config.model, "cell"):
        from rnnkit.tasks import fields

        fields.check_recurrence(config)
    task_cls.check_config(config)


def _tasks_using(term: str) -> list[str]:
    from rnnkit.tasks import task_names

    return [n for n in task_names() if term in get_task(n).loss_terms]


def find_recipe(name: str) -> Path:
    """A recipe by name (``ptb-small``) from the shipped recipes, or a path to a TOML file."""
    p = Path(name)
    if p.suffix == ".toml" or is_file(p, "recipe"):
        if not is_file(p, "recipe"):
            raise UserError(f"recipe file not found: {name}")
        return p
    candidate = recipes_dir() / f"{name}.toml"
    if not candidate.is_file() and is_dir(p, "recipe"):
        hint = f"; to train it on, use resume=... {name}" if (p / "config.toml").is_file() else ""
        raise UserError(f"recipe {name}: is a directory, not a recipe (a name or a .toml file){hint}")
    if not candidate.is_file():
        known = ", ".join(sorted(q.stem for q in recipes_dir().glob("*.toml")))
        raise UserError(f"unknown recipe {name!r} (known: {known}; or give a path to a .toml file)")
    return candidate


def load_recipe(name: str, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    path = find_recipe(name)
    raw = load_toml(path)
    raw.setdefault("recipe", path.stem)
    return config_from_dict(raw, str(path), overrides)


def read_config(path: Path, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """A run directory's ``config.toml`` (written by any rnnkit since 0.1), resolved like a recipe.

    Every key counts as set (``RunConfig.given = None``), those an older rnnkit did not write included: a resumed
    run, or one trained from a run's config.toml, uses the values recorded and chooses nothing from its data."""
    return dataclasses.replace(config_from_dict(load_toml(path), str(path), overrides), given=None)


def reresolve(config: RunConfig, source: str, overrides: Mapping[str, Any]) -> RunConfig:
    """``config`` with more ``overrides`` (from ``source``), still knowing which keys the user set before."""
    new = config_from_dict(config.to_dict(), source, overrides)
    return dataclasses.replace(new, given=None if config.given is None else config.given | set(overrides))


def list_recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped recipe."""
    out = []
    for p in sorted(recipes_dir().glob("*.toml")):
        try:
            raw = load_toml(p)
        except UserError:
            continue
        out.append((p.stem, str(raw.get("description", "")).strip().splitlines()[0] if raw.get("description") else ""))
    return out

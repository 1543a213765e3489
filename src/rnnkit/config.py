"""Typed run configuration: TOML recipes in four sections (data, model, optim, train), `--set` overrides.

A recipe names its task (``task = "lm"``); the task supplies the dataclasses for its ``data`` and ``model``
sections, while ``optim`` and ``train`` are shared by every task so the trainer, tuner and CLI treat all tasks
alike. Every field can be overridden as ``--set section.field=value``; values are parsed as TOML literals and
checked against the field's declared type, so a typo fails at once with the field's name instead of deep
inside a training run.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from rnnkit.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("data", "model", "optim", "train")


@dataclass
class OptimConfig:
    """Optimiser, gradient clipping and learning-rate schedule."""

    name: str = "sgd"  # sgd | adam | adamw | ntasgd (SGD, then averaged SGD once validation stalls; Merity 2017)
    lr: float = 1.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    clip: float = 5.0  # global gradient-norm clip; 0 disables
    # constant | zaremba (lr * decay ** max(epoch - decay_after, 0)) | plateau (x decay when valid stalls)
    # | cosine (to min_lr over max_epochs)
    schedule: str = "constant"
    decay: float = 0.5
    decay_after: int = 4  # zaremba: epochs at full lr (0-based index of the last one)
    patience: int = 0  # plateau: epochs without improvement before decaying
    min_lr: float = 0.0
    warmup_steps: int = 0  # linear warm-up from 0, per optimiser step
    nonmono: int = 5  # ntasgd: start averaging when validation is worse than the best of all but the last nonmono


@dataclass
class TrainConfig:
    """The training loop: budget, batching, logging and checkpoints."""

    batch_size: int = 20
    max_epochs: int = 10
    max_steps: int = 0  # total optimiser steps across resumes; 0 = no limit
    max_time: float = 0.0  # seconds for this invocation; 0 = no limit
    seed: int = 1234
    log_every: int = 50  # steps between training records in metrics.jsonl
    checkpoint_every: int = 0  # steps between last.pt saves (besides each epoch end and the stop); 0 = off
    eval_every: int = 0  # steps between validations (besides each epoch end); 0 = off
    early_stop: int = 0  # stop after this many validations without improvement; 0 = off
    eval_test: bool = True  # evaluate best.pt on the test split when training ends
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads on CPU; 0 = PyTorch's default
    tensorboard: bool = True
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on CUDA)
    # fp32 | bf16 | fp16 (CUDA, with gradient scaling) | auto (fastest safe choice for the device; the resolved
    # choice is what config.toml records). Autocast with fp32 master weights; loss and evaluation in fp32.
    precision: str = "fp32"


@dataclass
class RunConfig:
    """A resolved configuration: what a run directory's ``config.toml`` holds."""

    task: str
    recipe: str
    data: Any
    model: Any
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task, "recipe": self.recipe}
        if self.description:
            out["description"] = self.description
        for s in SECTIONS:
            out[s] = dataclasses.asdict(getattr(self, s))
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def get(self, key: str) -> Any:
        section, name = _split_key(key)
        return getattr(getattr(self, section), name)


def _split_key(key: str) -> tuple[str, str]:
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise UserError(f"bad config key {key!r}: expected section.field with section one of {', '.join(SECTIONS)}")
    return parts[0], parts[1]


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Coerce a parsed TOML value to a dataclass field type, or raise UserError naming the field."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for a in args:
            try:
                return _check_type(value, a, where)
            except UserError:
                continue
        raise UserError(f"{where}: expected {tp}, got {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            value = [value] if not isinstance(value, (dict,)) else value
        if not isinstance(value, list):
            raise UserError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise UserError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise UserError(f"{where}: expected a string, got {value!r}")
    return value


def build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate a section dataclass from a dict, rejecting unknown keys with their location."""
    hints = _field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k not in known:
            raise UserError(f"{where}: unknown field {k!r} (known: {', '.join(sorted(known))})")
        kwargs[k] = _check_type(v, hints[k], f"{where}.{k}")
    return cls(**kwargs)


def parse_value(text: str) -> Any:
    """A `--set` value: a TOML literal (``650``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"bad --set {item!r}: expected section.field=value, e.g. --set model.hidden=650")
        key, _, value = item.partition("=")
        key = key.strip()
        _split_key(key)
        out[key] = parse_value(value.strip())
    return out


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8") from None


def config_from_dict(raw: dict[str, Any], source: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Resolve a recipe dict (+ overrides) into a typed RunConfig for its task."""
    from rnnkit.tasks import get_task

    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, value in (overrides or {}).items():
        section, name = _split_key(key)
        raw.setdefault(section, {})[name] = value
    unknown = set(raw) - set(SECTIONS) - {"task", "recipe", "description"}
    if unknown:
        raise UserError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                        f"expected task, recipe, description and sections {', '.join(SECTIONS)}")
    task_name = raw.get("task")
    if not isinstance(task_name, str):
        raise UserError(f"{source}: missing 'task = \"...\"' at the top of the recipe")
    task_cls = get_task(task_name)
    sections = {}
    for s, cls in (("data", task_cls.DataConfig), ("model", task_cls.ModelConfig),
                   ("optim", OptimConfig), ("train", TrainConfig)):
        values = raw.get(s, {})
        if not isinstance(values, dict):
            raise UserError(f"{source}: [{s}] must be a table")
        sections[s] = build_section(cls, values, f"{source}: {s}")
    return RunConfig(task=task_name, recipe=str(raw.get("recipe", Path(source).stem)),
                     description=str(raw.get("description", "")), **sections)


def find_recipe(name: str) -> Path:
    """A recipe by name (``ptb-small``) from the shipped recipes, or a path to a TOML file."""
    from rnnkit.paths import recipes_dir

    p = Path(name)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise UserError(f"recipe file not found: {name}")
        return p
    candidate = recipes_dir() / f"{name}.toml"
    if not candidate.is_file():
        known = ", ".join(sorted(q.stem for q in recipes_dir().glob("*.toml")))
        raise UserError(f"unknown recipe {name!r} (known: {known}; or give a path to a .toml file)")
    return candidate


def load_recipe(name: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    path = find_recipe(name)
    raw = load_toml(path)
    raw.setdefault("recipe", path.stem)
    return config_from_dict(raw, str(path), overrides)


def list_recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped recipe."""
    from rnnkit.paths import recipes_dir

    out = []
    for p in sorted(recipes_dir().glob("*.toml")):
        try:
            raw = load_toml(p)
        except UserError:
            continue
        out.append((p.stem, str(raw.get("description", "")).strip().splitlines()[0] if raw.get("description")
                    else ""))
    return out

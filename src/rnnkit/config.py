"""Typed run configuration: four sections (data, model, optim, train), each a dataclass of declared keys.

A recipe names its task (``task = "lm"``); the task supplies the dataclasses of its ``data`` and ``model``
sections, while ``optim`` and ``train`` are shared by every task so the trainer, tuner and CLI treat all tasks
alike. Every field can be overridden as ``--set section.field=value``.

Every field is declared with ``key(default, meaning, **rules)``: its meaning and the values it accepts are data
on the field (``dataclasses.field`` metadata), so one declaration drives three things that used to drift apart:
the type check and range check at load time (a bad value fails at once, naming the key and where the value came
from, instead of deep inside a training run), the glossary in docs/config.md (``python -m rnnkit.tasks.glossary``)
and the argparse types of the CLI's numeric options (``cli_number``).

This module knows no task: turning a recipe into a ``RunConfig`` for its task is ``rnnkit.tasks.recipes``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import math
import re
import sys
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import tomli_w

from rnnkit.errors import PathError, UserError, is_dir, lookup

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("data", "model", "optim", "train")
_META = "rnnkit"  # the dataclass field metadata key that holds a field's Key

# Sizes (units, tokens, examples...) are bounded so that a typo such as hidden = 10**12 is a clear error at load
# time rather than an allocation failure or an integer overflow inside PyTorch. The bounds are far above any
# model that fits in memory today; model building still turns an allocation failure into a UserError.
MAX_SIZE = 1 << 20  # widths: hidden, embedding, attention; also batch sizes
MAX_COUNT = 1 << 40  # step, example and token counts
MAX_SEED = (1 << 32) - 1
# tokens a language model generates when the caller does not say: Run.generate, rnnkit generate and the server's
# POST /v1/generate read this one value (translation and chat default to the run's own length instead)
DEFAULT_NEW_TOKENS = 50


class ConfigError(UserError):
    """A bad value of one configuration key. Whoever resolves the configuration adds where the value came from
    (a recipe file, a run's config.toml, ``--set key=value``), so the message names the file and the field."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key} {reason}")


class RenamedKeyWarning(DeprecationWarning):
    """A configuration key under its old name; it still loads for one release (the message names the new key)."""


class InapplicableKeyWarning(UserWarning):
    """A recipe's value that does not apply to the cell an override chose (AWD-LSTM's weight drop for a cell without
    hidden-to-hidden matrices): left at its default, with this warning (rnnkit.tasks.recipes)."""


class RenamedValueWarning(RenamedKeyWarning):
    """A configuration value under its old name (``model.backend = "fused"``); read as the new one for a release."""


@dataclass(frozen=True)
class Key:
    """The declaration of one configuration field: what it means and which values it accepts.

    Numbers are finite unless ``finite=False``; ``ge/gt/le/lt`` bound them (and a list's items); ``special``
    lists values that are allowed outside the range because they mean something (``{0: "no limit"}``).
    ``choices`` maps each allowed string to its meaning; ``pattern`` is a regular expression a string must match
    (described by ``pattern_doc``). ``path`` says what a path must be where that is knowable before any data is
    read: ``"file"`` or ``"dir"`` (checked when the path exists as given). ``length``/``max_length`` bound a
    list's length; ``per`` names the integer key a list must hold one value for each unit of (``hidden``:
    ``per="model.layers"``, checked with the rules between keys). ``needs`` names other keys' values that a value
    other than the default requires, e.g. ``{"model.arch": "awd"}``. ``loss_term`` marks an [optim] key that only
    tasks using that loss term accept. ``renamed_values`` maps old values to the new ones they are read as, for one
    release, with a ``RenamedValueWarning`` (``model.backend = "fused"`` -> ``"fast"``).
    """

    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True
    special: Mapping[Any, str] = field(default_factory=dict)
    choices: Mapping[str, str] | None = None
    pattern: str | None = None
    pattern_doc: str = ""
    path: str | None = None
    length: int | None = None
    max_length: int | None = None
    min_length: int | None = None
    per: str | None = None
    needs: Mapping[str, Any] = field(default_factory=dict)
    loss_term: bool = False
    renamed_values: Mapping[str, str] = field(default_factory=dict)

    # -- checking ---------------------------------------------------------------------------------
    def check(self, value: Any, name: str) -> None:
        """Raise ConfigError(name, ...) unless ``value`` (already of the declared type) is allowed."""
        if isinstance(value, list):
            n = len(value)
            if self.length is not None and n != self.length:
                raise ConfigError(name, f"must hold {self.length} values, got {n}")
            if self.max_length is not None and n > self.max_length:
                what = "one" if self.max_length == 1 else f"at most {self.max_length}"
                raise ConfigError(name, f"takes {what} {'file' if self.path else 'value'} here, got {n}: {value}")
            if self.min_length is not None and n < self.min_length:
                raise ConfigError(
                    name,
                    f"needs at least {self.min_length} value(s), got none"
                    if n == 0
                    else f"needs at least {self.min_length} values, got {n}",
                )
            for i, v in enumerate(value):
                self._check_one(v, f"{name}[{i}]" if n > 1 else name)
            return
        self._check_one(value, name)

    def _check_one(self, value: Any, name: str) -> None:
        if _hashable(value) and value in self.special:
            return
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            self._check_number(value, name)
        elif isinstance(value, str):
            self._check_string(value, name)

    def _check_number(self, value: float, name: str) -> None:
        if isinstance(value, float) and not math.isfinite(value) and self.finite:
            raise ConfigError(name, f"must be a finite number, got {value}")
        low = (self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt)
        high = (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt)
        if not (low or high):
            return
        upper = self.le if self.le is not None else self.lt
        if upper is not None and abs(upper) <= 1000 and (self.ge is not None or self.gt is not None):
            want = self.range_text()  # a short two-sided range reads best whole: "in [0, 1)"
        elif low:
            want = f">= {_num(self.ge)}" if self.ge is not None else f"> {_num(self.gt)}"
        else:
            want = f"<= {_num(self.le)}" if self.le is not None else f"< {_num(self.lt)}"
        also = "".join(f" (or {_toml(v)} = {m})" for v, m in self.special.items())
        raise ConfigError(name, f"must be {want}{also}, got {_num(value)}")

    def _check_string(self, value: str, name: str) -> None:
        if self.choices is not None and value not in self.choices:
            raise ConfigError(name, f"must be one of {', '.join(self.choices)}, got {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ConfigError(name, f"must be {self.pattern_doc or f'like {self.pattern}'}, got {value!r}")
        if self.path and value:
            p = Path(value).expanduser()
            try:
                found = lookup(p)
            except PathError as e:
                raise ConfigError(name, f"names a path the system cannot look up ({e.reason}): {value}") from None
            if self.path == "file" and is_dir(p):
                raise ConfigError(name, f"must name a file, but {value} is a directory")
            if self.path == "dir" and found is not None and not p.is_dir():
                raise ConfigError(name, f"must name a directory, but {value} is a file")

    # -- describing (error messages and the glossary) ---------------------------------------------
    def range_text(self) -> str:
        """The allowed range in words: ">= 1", "in [0, 1)", "> 0", "" when unbounded."""
        lo = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        hi = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return f"{'>=' if lo[0] == '[' else '>'} {lo[1:]}"
        if hi:
            return f"{'<=' if hi[-1] == ']' else '<'} {hi[:-1]}"
        return ""

    def allowed_text(self) -> str:
        """Everything a reader needs to know about allowed values, for the glossary."""
        parts = []
        if self.choices is not None:
            parts.append(" | ".join(f"`{c}`" for c in self.choices))
        if self.pattern_doc:
            parts.append(self.pattern_doc)
        rng = self.range_text()
        if rng:
            parts.append(rng)
        if self.path:
            parts.append(f"path to a {self.path}")
        if self.length is not None:
            parts.append(f"{self.length} values")
        if self.max_length is not None:
            parts.append(f"at most {self.max_length}")
        if self.min_length is not None:
            parts.append(f"at least {self.min_length}")
        if self.per is not None:
            parts.append(f"a list: one value per {self.per}")
        for v, meaning in self.special.items():
            parts.append(f"`{_toml(v)}` = {meaning}")
        for old, new in self.renamed_values.items():
            parts.append(f"`{_toml(old)}`: the old name of `{_toml(new)}`")
        if self.needs:
            parts.append("non-default needs " + ", ".join(f"{k} = {_toml(v)}" for k, v in self.needs.items()))
        return "; ".join(parts)


def _hashable(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool))


def _num(x: float) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        x = int(x)
    if isinstance(x, int) and x > 1_000_000:  # the sanity bounds read better as powers of two
        if x & (x - 1) == 0:
            return f"2^{x.bit_length() - 1}"
        if (x + 1) & x == 0:
            return f"2^{x.bit_length()}-1"
    return repr(x) if isinstance(x, float) else str(x)


def _toml(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def key(default: Any, doc: str, **rules: Any) -> Any:
    """A dataclass field declared with its meaning and rules (see ``Key``); mutable defaults are copied."""
    meta = {_META: Key(doc, **rules)}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def declaration(cls: type, name: str) -> Key:
    """The Key of field ``name`` of section dataclass ``cls`` (a bare Key for an undeclared field)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get(_META) or Key("")
    raise KeyError(name)


def renamed(cls: type) -> dict[str, str]:
    """Old field names a section still accepts for one release -> the new ``section.field``."""
    return dict(getattr(cls, "RENAMED", {}))


# -- the shared sections ------------------------------------------------------------------------------------------
OPTIMIZERS = {
    "sgd": "stochastic gradient descent (with optim.momentum)",
    "adam": "Adam",
    "adamw": "Adam with decoupled weight decay",
    "ntasgd": "SGD, then averaged SGD once validation stalls (non-monotonically triggered; Merity et al. 2017)",
}
SCHEDULES = {
    "constant": "optim.lr throughout",
    "zaremba": "lr * decay ** max(epoch - decay_after, 0) (Zaremba et al. 2014)",
    "plateau": "x decay each time validation fails to improve for more than optim.patience evaluations",
    "cosine": "from optim.lr to optim.min_lr over train.max_epochs",
}
PRECISIONS = {
    "fp32": "float32 throughout",
    "bf16": "bfloat16 autocast",
    "fp16": "float16 autocast with gradient scaling (CUDA)",
    "auto": "bf16 on a GPU that has it (else fp16), bf16 on a CPU with native bf16 units, else fp32 (config.toml "
    "records the choice); a rule, not a timing: at small widths fp32 can be faster (ptb-small on an AVX512-BF16 CPU: "
    "bf16 0.89x, benchmarks/results/lm-speed-small-cpu.json)",
}
# The fast backend's implementations (rnnkit.cells.registry declares which cell has which; rnnkit.cells.select
# chooses). Kept here because the [train] section is declared below the cells layer; a test checks they agree.
RECURRENCES = {
    "auto": "fp32: the kernel; bf16/fp16: the faster of kernel and projected for each LSTM shape, timed at its "
    "first step (the choices are saved in checkpoints)",
    "kernel": "PyTorch's recurrent kernel (oneDNN on CPU, cuDNN on CUDA)",
    "projected": "LSTM only: rnnkit's projected recurrence (GEMMs in the autocast dtype, fp32 cell state)",
}
LOSS_OVER_TIME = {
    "mean": "mean over all tokens of a batch (pytorch/examples; lr ~20 for SGD)",
    "sum_time": "summed over the bptt steps, mean over the batch (Zaremba et al.; lr ~1)",
}


@dataclass
class OptimConfig:
    """The objective's extra terms, the optimiser, gradient clipping and the learning-rate schedule."""

    name: str = key("sgd", "optimiser", choices=OPTIMIZERS)
    lr: float = key(1.0, "learning rate (before schedule and warm-up)", gt=0)
    momentum: float = key(0.0, "SGD momentum", ge=0, lt=1)
    weight_decay: float = key(0.0, "L2 penalty (decoupled for adamw)", ge=0)
    betas: list[float] = key([0.9, 0.999], "Adam's (beta1, beta2)", ge=0, lt=1, length=2)
    clip: float = key(5.0, "global gradient-norm clip", gt=0, special={0: "no clipping"})
    schedule: str = key("constant", "learning-rate schedule (times a linear warm-up)", choices=SCHEDULES)
    decay: float = key(0.5, "zaremba / plateau: factor the learning rate is multiplied by", gt=0, le=1)
    decay_after: int = key(4, "zaremba: epochs at full lr (0-based index of the last one)", ge=0, le=MAX_COUNT)
    patience: int = key(0, "plateau: evaluations without improvement before decaying", ge=0, le=MAX_COUNT)
    min_lr: float = key(0.0, "cosine / plateau: the lowest learning rate", ge=0)
    warmup_steps: int = key(0, "linear warm-up from 0 over this many optimiser steps", ge=0, le=MAX_COUNT)
    nonmono: int = key(
        5,
        "ntasgd: start averaging when validation is worse than the best of all but the last nonmono evaluations",
        ge=1,
        le=MAX_COUNT,
    )
    # loss terms: part of the objective, so they live here; only tasks that use a term accept another value
    ar: float = key(
        0.0,
        "activation regularisation (Merity et al. 2017): ar * mean(dropped last-layer "
        "output ** 2) added to the objective (the logged loss stays the NLL)",
        ge=0,
        loss_term=True,
    )
    tar: float = key(
        0.0,
        "temporal activation regularisation: tar * mean((h_t - h_{t-1}) ** 2) on the raw last-layer output",
        ge=0,
        loss_term=True,
    )
    loss_over_time: str = key(
        "mean", "how a batch's per-token losses make the objective", choices=LOSS_OVER_TIME, loss_term=True
    )


@dataclass
class TrainConfig:
    """The training loop: budget, batching, logging and checkpoints."""

    batch_size: int = key(
        20,
        "training examples (LM: token columns) per optimiser step; the global batch under distributed training",
        ge=1,
        le=MAX_SIZE,
    )
    eval_batch_size: int = key(
        0,
        "examples per evaluation batch (LM: columns of the evaluation stream)",
        ge=1,
        le=MAX_SIZE,
        special={0: "the task's default"},
    )
    max_epochs: int = key(10, "epochs to train", ge=1, le=MAX_COUNT)
    max_steps: int = key(0, "total optimiser steps across resumes", ge=1, le=MAX_COUNT, special={0: "no limit"})
    max_time: float = key(0.0, "seconds of training for this invocation", gt=0, special={0: "no limit"})
    seed: int = key(1234, "seed of the model's initialisation, dropout and the batch order", ge=0, le=MAX_SEED)
    log_every: int = key(50, "optimiser steps between training records in metrics.jsonl", ge=1, le=MAX_COUNT)
    checkpoint_every: int = key(
        0,
        "steps between last.pt saves (besides each epoch end and the stop)",
        ge=1,
        le=MAX_COUNT,
        special={0: "only at epoch ends and the stop"},
    )
    eval_every: int = key(
        0, "steps between validations (besides each epoch end)", ge=1, le=MAX_COUNT, special={0: "only at epoch ends"}
    )
    early_stop: int = key(
        0,
        "stop after this many validations without improvement of the task's metric (rnnkit.callbacks.EarlyStopping; "
        "best.pt keeps the best model)",
        ge=1,
        le=MAX_COUNT,
        special={0: "never"},
    )
    eval_test: bool = key(True, "evaluate best.pt on the test split when training ends")
    device: str = key(
        "auto",
        "where to train",
        pattern=r"auto|cpu|cuda|cuda:\d+|mps",
        pattern_doc="auto (CUDA when present), cpu, cuda, cuda:N or mps",
    )
    threads: int = key(
        0,
        "torch intra-op threads on CPU (the `rnnkit` command also makes waiting threads spin briefly, then sleep: "
        "GOMP_SPINCOUNT=1000 unless the environment sets it or OMP_WAIT_POLICY)",
        ge=1,
        le=4096,
        special={0: "PyTorch's default"},
    )
    tensorboard: bool = key(True, "write TensorBoard event files")
    deterministic: bool = key(False, "torch.use_deterministic_algorithms (slower on CUDA)")
    precision: str = key(
        "fp32", "autocast precision, with fp32 master weights; loss and evaluation in fp32", choices=PRECISIONS
    )
    recurrence: str = key(
        "auto",
        "which implementation the fast backend runs (RNNKIT_RECURRENCE overrides it; run.json records what ran "
        "and why)",
        choices=RECURRENCES,
        renamed_values={"fused": "kernel"},
    )


D = TypeVar("D")
M = TypeVar("M")


@dataclass
class RunConfig(Generic[D, M]):
    """A resolved configuration: what a run directory's ``config.toml`` holds."""

    task: str
    recipe: str
    data: D
    model: M
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""
    # the keys ("section.key") the recipe, config.toml or overrides set; None = every key counts as set. The others
    # a task may choose from its data (rnnkit.tasks.auto). Not written out: config.toml lists every key.
    given: frozenset[str] | None = field(default=None, compare=False, repr=False)

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
        section, name = split_key(key)
        return getattr(getattr(self, section), name)


def split_key(key: str) -> tuple[str, str]:
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise UserError(f"bad config key {key!r}: expected section.field with section one of {', '.join(SECTIONS)}")
    return parts[0], parts[1]


# -- types ------------------------------------------------------------------------------------------------------
def type_name(tp: Any) -> str:
    """A field's type as the glossary writes it: int, float, bool, str, list[str], table."""
    origin = typing.get_origin(tp)
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"list[{type_name(inner)}]"
    if origin is dict:
        return "table"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


_SPOKEN = {
    "int": ("an integer", "integers"),
    "float": ("a number", "numbers"),
    "str": ("a string", "strings"),
    "bool": ("true or false", "booleans"),
}


def _spoken(tp: Any) -> str:
    """A type as an error message says it: ``int | list[int]`` -> "an integer or a list of integers"."""
    if typing.get_origin(tp) is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"a list of {_SPOKEN.get(type_name(inner), (None, type_name(inner) + ' values'))[1]}"
    return _SPOKEN.get(type_name(tp), (type_name(tp),))[0]


def coerce(value: Any, tp: Any, name: str) -> Any:
    """A parsed TOML value as the declared type, or ConfigError naming the field. A scalar where a list is
    declared is a one-element list (``data.path = "a.txt"``); an empty string there is an empty list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for a in (a for a in typing.get_args(tp) if a is not type(None)):
            try:
                return coerce(value, a, name)
            except ConfigError:
                continue
        spoken = " or ".join(_spoken(a) for a in typing.get_args(tp) if a is not type(None))
        raise ConfigError(name, f"must be {spoken}, got {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if isinstance(value, dict):
            raise ConfigError(name, f"must be a list, got a table {value!r}")
        if not isinstance(value, list):
            value = [] if value == "" else [value]
        return [coerce(v, inner, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, inner = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise ConfigError(name, f'must be a table (e.g. {{"0" = "negative"}}), got {value!r}')
        return {str(k): coerce(v, inner, f"{name}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, f"must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(name, f"must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(name, f"must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(name, f"must be a string, got {value!r}")
    return value


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build_section(cls: type, section: str, values: dict[str, Any]) -> Any:
    """A section dataclass from a dict: unknown keys, wrong types and values out of range raise ConfigError
    naming ``section.field`` (for one value: the caller knows where each came from and says so)."""
    hints = field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"{section}.{k}", f"is not a key of [{section}] here (known: {', '.join(sorted(known))})")
        name = f"{section}.{k}"
        value = coerce(v, hints[k], name)
        declaration(cls, k).check(value, name)
        kwargs[k] = value
    return cls(**kwargs)


# -- overrides ----------------------------------------------------------------------------------------------------
class Overrides(dict):
    """``section.field -> value`` overrides, remembering where each came from (``--set k=v``, ``--max-steps``)
    so that an error names what the user typed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins: dict[str, str] = {}

    def put(self, key: str, value: Any, origin: str) -> None:
        self[key] = value
        self.origins[key] = origin


def origin_of(overrides: Mapping[str, Any] | None, key: str) -> str:
    """Where override ``key`` came from, for error messages."""
    origins = getattr(overrides, "origins", {})
    if key in origins:
        return origins[key]
    value = (overrides or {}).get(key)
    return f'overrides={{"{key}": {value!r}}}'  # as Python gives it; the command line says --set KEY=VALUE


def parse_value(text: str) -> Any:
    """A `--set` value: a TOML literal (``650``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``) or a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str]) -> Overrides:
    out = Overrides()
    for item in items:
        if "=" not in item:
            raise UserError(f"bad --set {item!r}: expected section.field=value, e.g. --set model.hidden=650")
        key_, _, value = item.partition("=")
        key_ = key_.strip()
        split_key(key_)
        out.put(key_, parse_value(value.strip()), f"--set {item.strip()}")
    return out


def warn_renamed(source: str, pairs: list[tuple[str, str]]) -> None:
    """One warning per source for every old key name it used (old -> new)."""
    if pairs:
        names = ", ".join(f"{old} -> {new}" for old, new in pairs)
        warnings.warn(
            f"{source}: renamed configuration key(s), old name(s) accepted until rnnkit 0.3: {names}",
            RenamedKeyWarning,
            stacklevel=3,
        )


def warn_renamed_values(source: str, pairs: list[tuple[str, str, str]]) -> None:
    """One warning per source for every old value it used (key, old, new)."""
    if pairs:
        names = ", ".join(f"{k} = {_toml(old)} -> {_toml(new)}" for k, old, new in pairs)
        warnings.warn(
            f"{source}: renamed configuration value(s), old name(s) accepted until rnnkit 0.3: {names}",
            RenamedValueWarning,
            stacklevel=3,
        )


def load_toml(path: Path) -> dict[str, Any]:
    try:
        lookup(path)
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8") from None


# -- CLI numbers --------------------------------------------------------------------------------------------------
def cli_number(kind: type, flag: str, **rules: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` for a numeric option, checked by the same rules as a configuration key.

    ``--max-steps 0`` is then "argument --max-steps: must be >= 1, got 0" (exit 2, one line) instead of being
    accepted or failing later; nan/inf are refused wherever a finite number is meant.
    """
    rule = Key("", **rules)

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        try:
            rule.check(value, flag)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(f"{e.reason}") from None
        return value

    parse.__name__ = "integer" if kind is int else "number"  # argparse names the type in its messages
    return parse

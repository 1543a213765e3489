"""Declarations of the keys several tasks share, written once so that a key means one thing in every task.

Each function returns a ``rnnkit.config.key`` field; a task passes its own default (and, where the meaning
narrows, its own wording). The glossary (docs/config.md) lists a key once when its declaration is the same in
every task that has it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rnnkit.cells import registry
from rnnkit.config import MAX_COUNT, MAX_SEED, MAX_SIZE, ConfigError, key

# the registry's live views: a cell registered later (a plug-in) is a valid model.cell and listed in the glossary
CELLS = registry.CellDocs()
BACKEND_DOCS = registry.BACKENDS
BALANCES = {
    "none": "as the data comes",
    "weights": "class-weighted loss (each class weighs the same)",
    "sampler": "class-balanced sampling with replacement",
}
POOLINGS = {
    "last": "the last valid step's state",
    "mean": "mean over valid steps",
    "max": "max over valid steps",
    "attention": "additive attention over valid steps (model.attention_size)",
}


# -- [model] -----------------------------------------------------------------------------------------------------
def cell(default: str = "lstm") -> Any:
    return key(default, "recurrent cell (rnnkit.cells.registry; docs/recurrences.md)", choices=CELLS)


def backend(default: str = "fast") -> Any:
    return key(
        default,
        "implementation of the recurrent layers",
        choices=BACKEND_DOCS,
        renamed_values=registry.RENAMED_BACKENDS,
    )


def heads() -> Any:
    return key(
        0,
        registry.options()["heads"][1],
        ge=1,
        le=MAX_SIZE,
        special={0: "the largest of 4, 3, 2, 1 that divides every layer's width"},
    )


def expand() -> Any:
    return key(0.0, registry.options()["expand"][1], gt=0, le=64, special={0: "the cell's default"})


def state_size() -> Any:
    return key(16, registry.options()["state_size"][1], ge=1, le=1024)


def conv_size() -> Any:
    return key(4, registry.options()["conv_size"][1], ge=0, le=64)


def dt_rank() -> Any:
    return key(0, registry.options()["dt_rank"][1], ge=1, le=MAX_SIZE, special={0: "ceil(hidden / 16)"})


@dataclass
class RecurrentKeys:
    """The [model] keys of every recurrent model: the cell, its backend and the cells' own hyperparameters - one
    declaration, inherited by each task's [model] section (``class LMModel(fields.RecurrentKeys)``), so a cell
    added to the registry is configurable in every task. A key for an option the chosen cell does not support
    must stay at its default (:func:`check_recurrent`)."""

    cell: str = cell()
    backend: str = backend()
    heads: int = heads()
    expand: float = expand()
    state_size: int = state_size()
    conv_size: int = conv_size()
    dt_rank: int = dt_rank()


CELL_OPTION_KEYS = ("heads", "expand", "state_size", "conv_size", "dt_rank")  # RecurrentSpec fields of the same name


def cell_options(m: Any) -> dict[str, Any]:
    """The cell's own hyperparameters of a [model] section, as ``RecurrentSpec`` takes them: 0 = the cell's default
    becomes None, and ``heads = 0`` the largest count up to 4 that divides every layer's size (and inner width),
    so a recipe of any width runs every cell (650 units: 2 heads)."""
    out = {k: getattr(m, k) for k in CELL_OPTION_KEYS if hasattr(m, k)}
    for k in ("expand", "dt_rank"):
        if out.get(k) == 0:
            out[k] = None
    if out.get("heads") == 0:
        hidden = getattr(m, "hidden", 1)
        sizes = hidden if isinstance(hidden, list) else [hidden]
        widths = sizes + [round(out["expand"] * s) for s in sizes if out.get("expand")]
        out["heads"] = next(k for k in (4, 3, 2, 1) if all(w % k == 0 for w in widths))
    return out


def hidden(default: int) -> Any:
    """``model.hidden``: one size for every layer, or a list of one per layer (``[256, 128]``)."""
    return key(
        default,
        "units per recurrent layer (per direction): one size for every layer, or a list of one "
        "per layer ([256, 128]: layers of different sizes; the output layer sees the last)",
        ge=1,
        le=MAX_SIZE,
        per="model.layers",
    )


def last_size(hidden: int | list[int]) -> int:
    """The last recurrent layer's size: what an output layer (or a tied embedding) sees."""
    return hidden if isinstance(hidden, int) else hidden[-1]


def layers(default: int) -> Any:
    return key(default, "stacked recurrent layers", ge=1, le=256)


def embedding(default: int) -> Any:
    return key(default, "word embedding size", ge=1, le=MAX_SIZE)


def dropout(default: float = 0.0, doc: str = "dropout probability between layers and before the output") -> Any:
    return key(default, doc, ge=0, lt=1)


def bidirectional(default: bool, doc: str = "read each sequence in both directions") -> Any:
    return key(default, doc)


def attention_size(doc: str) -> Any:
    return key(0, doc, ge=1, le=MAX_SIZE, special={0: "the size of the vectors attended to"})


def init_scale(default: float) -> Any:
    return key(
        default,
        "uniform initialisation in [-init_scale, init_scale]",
        gt=0,
        special={0: "PyTorch's default initialisation"},
    )


def forget_bias(default: float) -> Any:
    return key(default, "LSTM forget-gate bias at initialisation", ge=-100, le=100)


def check_recurrent(m: Any) -> None:
    """The [model] keys of a recurrent model against the cell's registry entry: a backend the cell has no
    implementation for, or an option it does not support set to something other than its default, is a
    configuration error naming the key and the cells that do support it."""
    cell = registry.get(m.cell)
    if m.backend not in cell.backends:
        others = ", ".join(registry.with_backend(m.backend))
        raise ConfigError(
            "model.cell",
            f'= {m.cell!r} has no {m.backend} implementation (cells with one: {others}); set model.backend = "scratch"',
        )
    defaults = {f.name: f.default for f in dataclasses.fields(m)}
    asked = {
        "bidirectional": bool(getattr(m, "bidirectional", False)),
        "layer_sizes": isinstance(getattr(m, "hidden", None), list) and len(set(m.hidden)) > 1,
        "forget_bias": getattr(m, "forget_bias", 0.0) != defaults.get("forget_bias", 0.0),
        "weight_drop": bool(getattr(m, "weight_drop", 0.0)),
        "identity_init": getattr(m, "init", None) == "identity",
        **{k: getattr(m, k) != defaults[k] for k in CELL_OPTION_KEYS if k in defaults},
    }
    for option, wanted in asked.items():
        if wanted and not cell.supports(option):
            field, what = registry.options()[option]
            value = getattr(m, field.split(".", 1)[1])
            others = ", ".join(registry.supporting(option)) or "none"
            raise ConfigError(field, f"= {value!r}: cell {m.cell!r} does not support {what} (cells that do: {others})")


def check_recurrence(config: Any) -> None:
    """``train.recurrence`` names an implementation of the fast backend: the model's cell must have it."""
    m, wanted = config.model, config.train.recurrence
    if wanted == "auto" or not hasattr(m, "cell"):
        return
    cell = registry.get(m.cell)
    if getattr(m, "backend", "fast") != "fast":
        raise ConfigError(
            "train.recurrence", f"= {wanted!r} picks a fast implementation, but model.backend = {m.backend!r}"
        )
    if wanted not in cell.forms:
        others = ", ".join(registry.with_form(wanted)) or "none"
        raise ConfigError(
            "train.recurrence",
            f"= {wanted!r} is not an implementation of cell {m.cell!r} (it has {', '.join(cell.forms) or 'none'}; "
            f"cells with {wanted}: {others})",
        )


# -- [data] ------------------------------------------------------------------------------------------------------
def path(default: list[str], doc: str, *, one: bool = False, optional: bool = False, kind: str = "file") -> Any:
    """``data.path``: always a list of paths (a string is a one-element list)."""
    rules: dict[str, Any] = {"path": kind}
    if one:
        rules["max_length"] = 1
    if not optional:
        rules["min_length"] = 1
    return key(default, doc, **rules)


def split_file(default: str, split: str) -> Any:
    return key(
        default,
        f"the {split} split's text, relative to --data-dir (or absolute)"
        + ("" if split == "train" else f'; "" = carve data.{split}_fraction off the training text'),
        path="file",
    )


def fraction(default: float, doc: str) -> Any:
    return key(default, doc, gt=0, lt=0.5)


def split_seed() -> Any:
    return key(
        0, "seed of the data set's split (train.seed orders batches and initialises the model)", ge=0, le=MAX_SEED
    )


def min_count(default: int = 1) -> Any:
    return key(default, "training words seen fewer times become <unk>", ge=1, le=MAX_COUNT)


def max_vocab(doc: str = "the vocabulary's size limit (most frequent first, specials included)") -> Any:
    return key(0, doc, ge=1, le=MAX_COUNT, special={0: "no limit"})


def lowercase(default: bool) -> Any:
    return key(default, "fold case before tokenising")


def bucket(default: int = 20) -> Any:
    return key(
        default,
        "sort runs of this many batches by length (less padding)",
        ge=1,
        le=MAX_COUNT,
        special={0: "plain random batches"},
    )


def balance() -> Any:
    return key("none", "class imbalance", choices=BALANCES)


def word_dropout(doc: str = "training only: replace input words by <unk> with this probability") -> Any:
    return key(0.0, doc, ge=0, lt=1)

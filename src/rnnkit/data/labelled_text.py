"""Labelled text files (one example a line, ``label<TAB>text`` or ``text<TAB>label``) and their tokenisation.

Errors name the file and line: a line without a tab, an empty label or text, a label column that holds text
rather than a few class names (the wrong ``data.label_column``), an empty or non-UTF-8 file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.text import read_text, split_lines
from rnnkit.errors import UserError

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
_DIGITS = re.compile(r"\d")


def tokenize(text: str, lowercase: bool = True, digits: bool = False) -> list[str]:
    """Words and punctuation marks as separate tokens (``"Free entry!"`` -> ``free entry !``).

    With ``digits`` every digit becomes ``0``, so numbers of one shape share a token (``08452810075`` and
    ``09061701461`` both read ``00000000000``), which keeps phone numbers and prices out of ``<unk>``.
    """
    if lowercase:
        text = text.lower()
    if digits:
        text = _DIGITS.sub("0", text)
    return _TOKEN.findall(text)


@dataclass
class Example:
    text: str
    label: str
    source: str  # "file:line", for messages


def _split_line(line: str, label_column: int) -> tuple[str, str] | None:
    if "\t" not in line:
        return None
    if label_column == 0:
        label, _, text = line.partition("\t")
    else:
        text, _, label = line.rpartition("\t")
    return label.strip(), text.strip()


def read_labelled(
    path: Path, label_column: int = 0, max_classes: int = 100, keys: Mapping[str, str] | None = None
) -> list[Example]:
    """Every non-blank line of ``path`` as an Example.

    ``label_column`` 0: the label is the first field (split on the first tab); 1 or -1: the label is the last
    field (split on the last tab, so the text may hold tabs and quotes as it likes). ``keys``: how the caller
    sets data.label_column, as for ``rnnkit.data.timeseries.read_series_csv`` (None: ``overrides={...}``; ``{}``:
    the run's own layout, which the caller cannot choose).
    """
    if label_column not in (0, 1, -1):
        raise UserError(f"data.label_column: expected 0 (label<TAB>text) or 1 (text<TAB>label), got {label_column}")
    text = read_text(path)
    out: list[Example] = []
    where = "label<TAB>text" if label_column == 0 else "text<TAB>label"
    for n, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        parts = _split_line(line, label_column)
        if parts is None:
            raise UserError(f"{path}: line {n}: no tab; expected {where} (data.label_column={label_column})")
        label, body = parts
        if not label:
            raise UserError(f"{path}: line {n}: empty label (data.label_column={label_column})")
        if not body:
            raise UserError(f"{path}: line {n}: empty text")
        out.append(Example(body, label, f"{path}:{n}"))
    if not out:
        raise UserError(f"{path}: file is empty")
    check_label_column(out, path, label_column, max_classes, keys)
    return out


def check_label_column(
    examples: list[Example], path: Path, label_column: int, max_classes: int, keys: Mapping[str, str] | None = None
) -> None:
    """Labels are a few class names; text in the label column means the wrong ``data.label_column``."""
    distinct: dict[str, str] = {}
    for e in examples:
        distinct.setdefault(e.label, e.source)
    too_many = len(distinct) > max_classes or (len(examples) >= 20 and len(distinct) > len(examples) // 2)
    if too_many:
        label, source = next(iter(distinct.items()))
        line = source.rsplit(":", 1)[1]
        shown = label if len(label) <= 40 else label[:37] + "..."
        other = 1 if label_column == 0 else 0
        how = f'overrides={{"data.label_column": {other}}}' if keys is None else keys.get("data.label_column")
        raise UserError(
            f"{path}: line {line}: the label column (data.label_column={label_column}) holds "
            f"{len(distinct)} distinct values, e.g. {shown!r}, which looks like text, not a class name; "
            f"is the label in column {other}? ({how + '; ' if how else ''}at most "
            f"data.max_classes={max_classes} classes)"
        )

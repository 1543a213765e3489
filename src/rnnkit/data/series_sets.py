"""Labelled series in the layouts people keep them in: one file -> series (each ``(steps, channels)``) + labels.

* **long CSV** (the layout of a database table or a pandas ``melt``; sktime / tsfresh's "long" format): a header
  with ``id``, ``label`` and ``step`` columns, then one column per channel; one row per (series, step). Series may
  differ in length; rows may come in any order (each series is ordered by its ``step``).
* **wide CSV** (the UCR archive's layout): one series per line, the label first (or in a column named ``label``,
  ``class``, ``target`` or ``y``), then one value per step; a header line is optional; a series shorter than the
  longest leaves its last cells empty. ``.tsv`` files are tab-separated (the UCR 2018 archive's files).
* Either CSV may be gzipped (``.csv.gz``).
* **npz**: ``numpy.savez(path, x=X, y=y)``, X ``(examples, steps, channels)`` or ``(examples, steps)``, y one
  label each. ``layout`` says how X is laid out (``check_layout``): an array that looks like ``(examples,
  channels, steps)`` - the layout of aeon / sktime's numpy3D - is refused rather than silently read sideways.

Every mistake is a ``UserError`` naming the user's file, the line and the column, and what to change.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import UserError

LAYOUTS = {
    "auto": "(examples, steps, channels); an array with fewer steps than channels is refused as probably "
    "(examples, channels, steps)",
    "steps_first": "(examples, steps, channels) whatever the sizes",
    "channels_first": "(examples, channels, steps), the layout of aeon / sktime numpy3D: transposed on reading",
}
LABEL_NAMES = ("label", "class", "target", "y")
MIN_STEPS = 2  # fewer steps than this is not a series


@dataclass
class SeriesSet:
    """Series of one file: ``x[i]`` is ``(steps_i, channels)`` float64; ``where[i]`` locates series i in the
    file for messages (``line 17`` or ``id 'a3' (line 17)``)."""

    path: str
    x: list[np.ndarray]
    labels: list[str]
    where: list[str]
    channels: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # long CSV: each series' id (in order of first appearance)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([a.shape[0] for a in self.x], dtype=np.int64)


def read_series(path: Path, shown: str | None = None, layout: str = "auto") -> SeriesSet:
    """Read ``path`` (``.npz``, or a long or wide CSV/TSV, told apart by the header). ``shown`` is the name
    messages give the file (the user's own name for it)."""
    name = shown or str(path)
    suffix = file_suffix(path)
    if suffix == ".npz":
        return _read_npz(path, name, layout)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix.lower() == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise UserError(f"{name}: cannot read: {e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"{name}: line {line}: not valid UTF-8 text; expected a CSV of series") from None
    delimiter = (
        "\t" if path.suffix.lower() in (".tsv", ".tab") or ("\t" in text[:4096] and "," not in text[:4096]) else ","
    )
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [(n, r) for n, r in enumerate(rows, start=1) if any(c.strip() for c in r)]  # blank lines skipped
    if not rows:
        raise UserError(f"{name}: the file is empty; expected a CSV of labelled series")
    header = [c.strip().lower() for c in rows[0][1]]
    if {"id", "label", "step"} <= set(header):
        return _read_long(rows, name)
    return _read_wide(rows, name)


def file_suffix(path: Path | str) -> str:
    """The format's suffix, under a ``.gz`` (``sales.csv.gz`` -> ``.csv``; ``x.tar.gz`` -> ``.tar``)."""
    p = Path(path)
    if p.suffix.lower() == ".gz":
        p = p.with_suffix("")
    return p.suffix.lower()


def _number(cell: str, name: str, line: int, column: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        if not cell.strip():
            raise UserError(f"{name}: line {line}, column {column}: empty value; every step needs a value") from None
        raise UserError(f"{name}: line {line}, column {column}: not a number: {cell.strip()!r}"[:300]) from None
    if not math.isfinite(v):
        raise UserError(
            f"{name}: line {line}, column {column}: {cell.strip()} (missing or infinite); fill it or drop the series"
        )
    return v


def _read_long(rows: list[tuple[int, list[str]]], name: str) -> SeriesSet:
    header = [c.strip() for c in rows[0][1]]
    low = [c.lower() for c in header]
    i_id, i_label, i_step = low.index("id"), low.index("label"), low.index("step")
    chans = [j for j in range(len(header)) if j not in (i_id, i_label, i_step)]
    if not chans:
        raise UserError(f"{name}: line 1: no value columns; expected id, label, step, then one column per channel")
    width = len(header)
    series: dict[str, dict] = {}
    for line, r in rows[1:]:
        if len(r) != width:
            raise UserError(
                f"{name}: line {line}: {len(r)} fields, expected {width} ({', '.join(header)}); every row needs "
                f"the id, label, step and a value for each of the {len(chans)} channel column(s)"
            )
        sid, label = r[i_id].strip(), r[i_label].strip()
        if not sid:
            raise UserError(f"{name}: line {line}, column id: empty; every row needs the id of its series")
        if not label:
            raise UserError(f"{name}: line {line}, column label: the label is empty; give every row its series' label")
        step = _number(r[i_step], name, line, "step")
        values = [_number(r[j], name, line, header[j]) for j in chans]
        s = series.get(sid)
        if s is None:
            s = series[sid] = {"label": label, "line": line, "steps": [], "values": [], "lines": []}
        elif s["label"] != label:
            raise UserError(
                f"{name}: line {line}: series {sid!r} has label {label!r} here but {s['label']!r} at line "
                f"{s['line']}; a series has one label"
            )
        s["steps"].append(step)
        s["values"].append(values)
        s["lines"].append(line)
    if not series:
        raise UserError(f"{name}: no rows after the header; expected one row per (series, step)")
    x, labels, where = [], [], []
    for sid, s in series.items():
        steps = np.asarray(s["steps"])
        order = np.argsort(steps, kind="stable")
        dup = np.flatnonzero(np.diff(steps[order]) == 0)
        if dup.size:
            a, b = s["lines"][order[dup[0]]], s["lines"][order[dup[0] + 1]]
            raise UserError(f"{name}: lines {a} and {b}: series {sid!r} has step {steps[order[dup[0]]]:g} twice")
        x.append(np.asarray(s["values"], dtype=np.float64)[order])
        labels.append(s["label"])
        where.append(f"series {sid!r} (line {s['line']})")
    return SeriesSet(name, x, labels, where, [header[j] for j in chans], list(series))


def _read_wide(rows: list[tuple[int, list[str]]], name: str) -> SeriesSet:
    first = [c.strip() for c in rows[0][1]]

    def numeric(c: str) -> bool:
        try:
            float(c)
            return True
        except ValueError:
            return False

    has_header = not all(numeric(c) for c in first[1:] if c) or not first[1:]
    label_col = 0
    if has_header:
        low = [c.lower() for c in first]
        label_col = next((low.index(n) for n in LABEL_NAMES if n in low), 0)
        body = rows[1:]
    else:
        body = rows
    if not body:
        raise UserError(f"{name}: no series after the header; expected one series per line, its label first")
    x, labels, where = [], [], []
    for line, r in body:
        cells = [c.strip() for c in r]
        if label_col >= len(cells) or not cells[label_col]:
            raise UserError(
                f"{name}: line {line}: the label is empty (column {label_col + 1}); every series needs its label"
            )
        label = cells[label_col]
        values = cells[:label_col] + cells[label_col + 1 :]
        n = len(values)
        while n and not values[n - 1]:
            n -= 1  # a shorter series leaves its last cells empty
        col = lambda j: f"{j + 1 + (j >= label_col)}"  # noqa: E731 - 1-based column in the file
        x.append(np.array([_number(values[j], name, line, col(j)) for j in range(n)], dtype=np.float64)[:, None])
        labels.append(label)
        where.append(f"line {line}")
    return SeriesSet(name, x, labels, where, ["value"])


def check_layout(shape: tuple[int, ...], layout: str, name: str) -> bool:
    """Whether an ``(examples, a, b)`` array must be transposed (``channels_first``). With ``layout = "auto"``
    an array whose middle axis is shorter than its last one is refused: as (examples, steps, channels) it would
    be series of a few steps over many channels, which is almost always (examples, channels, steps) read
    sideways (a univariate set from aeon is (n, 1, steps))."""
    if layout == "channels_first":
        return True
    if layout == "steps_first" or len(shape) != 3 or shape[1] >= shape[2]:
        return False
    raise UserError(
        f"{name}: X has shape {tuple(shape)}, which looks like (examples, channels, steps) = {shape[0]} series of "
        f"{shape[1]} channel(s) x {shape[2]} steps; rnnkit reads (examples, steps, channels). Pass "
        f'X.transpose(0, 2, 1), or set data.layout = "channels_first" (or "steps_first" if it really is '
        f"{shape[1]} steps of {shape[2]} channels)"
    )


def _read_npz(path: Path, name: str, layout: str) -> SeriesSet:
    try:
        with np.load(path, allow_pickle=False) as f:  # no pickles: nothing in a user's file executes
            x, y = np.asarray(f["x"], dtype=np.float64), np.asarray(f["y"]).astype(str)
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise UserError(f"{name}: not an .npz file holding arrays x and y ({e})") from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] != y.shape[0] or 0 in x.shape:
        raise UserError(
            f"{name}: x must be numbers of shape (examples, steps, channels) with one label in y per example; "
            f"got x {x.shape}, y {y.shape}"
        )
    if check_layout(x.shape, layout, name):
        x = x.transpose(0, 2, 1)
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        raise UserError(f"{name}: x[{bad[0][0]}] holds a missing or infinite value at step {bad[0][1]}; fill it")
    empty = [i for i, v in enumerate(y.tolist()) if not v.strip()]
    if empty:
        raise UserError(f"{name}: y[{empty[0]}]: the label is empty")
    return SeriesSet(name, list(x), [v.strip() for v in y.tolist()], [f"x[{i}]" for i in range(len(y))])


def check_lengths(s: SeriesSet, min_steps: int = MIN_STEPS) -> None:
    short = [i for i, a in enumerate(s.x) if a.shape[0] < min_steps]
    if short:
        i = short[0]
        raise UserError(
            f"{s.path}: {s.where[i]}: {s.x[i].shape[0]} step(s); a series needs at least {min_steps} "
            f"({len(short)} such series): drop them or join them to longer ones"
        )


def series_inputs(inputs: Any, channels: int) -> tuple[bool, list[np.ndarray]]:
    """(one input?, series as (steps, channels) arrays) from what a user hands ``Run.classify``: one (steps,
    channels) array (or (steps,) for one channel), an (n, steps, channels) array ((n, steps) for one channel),
    a list of arrays (lengths may differ), or a pandas DataFrame - long (``id``, ``step`` and channel columns;
    a ``label`` column is ignored) or wide (one series per row, trailing empty cells for shorter series)."""
    single, xs = _series_inputs(inputs, channels)
    return single, _check_channels(xs, channels)


def _series_inputs(inputs: Any, channels: int) -> tuple[bool, list[np.ndarray]]:
    if hasattr(inputs, "columns") and hasattr(inputs, "to_numpy"):
        return False, _frame_series(inputs)
    if isinstance(inputs, np.ndarray) or (
        isinstance(inputs, (list, tuple)) and inputs and all(np.ndim(v) == 0 for v in inputs)
    ):
        arr = np.asarray(inputs, dtype=np.float64)
        if arr.ndim == 1 and channels == 1:
            return True, [arr[:, None]]
        if arr.ndim == 2 and channels == 1 and arr.shape[1] != 1:
            return False, list(arr[:, :, None])  # (n, steps) of one channel
        if arr.ndim == 2:
            return True, [arr]
        if arr.ndim == 3:
            return False, list(arr)
        raise UserError(f"inputs: expected (steps, channels) or (n, steps, channels) arrays, got shape {arr.shape}")
    if isinstance(inputs, (list, tuple)) and inputs:
        out = []
        for i, v in enumerate(inputs):
            a = np.asarray(v, dtype=np.float64)
            a = a[:, None] if a.ndim == 1 and channels == 1 else a
            if a.ndim != 2:
                raise UserError(f"inputs[{i}]: expected a (steps, channels) array, got shape {a.shape}")
            out.append(a)
        return False, out
    raise UserError(f"inputs: expected arrays of series or a DataFrame, got {type(inputs).__name__}")


def _check_channels(xs: list[np.ndarray], channels: int) -> list[np.ndarray]:
    for i, a in enumerate(xs):
        if a.shape[1] != channels:
            raise UserError(
                f"inputs[{i}]: a series of {a.shape[1]} channel(s); the run was trained on {channels} "
                f"(arrays are (steps, channels))"
            )
    return xs


def _frame_series(frame: Any) -> list[np.ndarray]:
    cols = {str(c).lower(): c for c in frame.columns}
    if "id" in cols and "step" in cols:
        skip = {cols["id"], cols["step"]} | ({cols["label"]} if "label" in cols else set())
        values = [c for c in frame.columns if c not in skip]
        out = []
        for _, g in frame.groupby(cols["id"], sort=False):
            out.append(g.sort_values(cols["step"])[values].to_numpy(dtype=np.float64))
        return out
    keep = [c for c in frame.columns if str(c).lower() not in LABEL_NAMES]
    rows = frame[keep].to_numpy(dtype=np.float64)
    out = []
    for r in rows:
        n = len(r)
        while n and np.isnan(r[n - 1]):
            n -= 1
        out.append(r[:n, None])
    return out

"""In-memory data as users hold it - Python lists, numpy arrays, pandas objects - turned into plain values, and
written in the files a task reads (``rnnkit.train(recipe, data=...)``).

Why files: a run must resume, evaluate and serve long after the Python objects are gone (another process, another
day, ``rnnkit serve``). So in-memory data is written once into the run directory in the task's own format (TSV,
CSV, npz) and the configuration points at those files; from then on the run is like any other. Each task's
``write_data`` (rnnkit.tasks.base) picks the reader below for its kind of data and the writer for its format.

pandas is never imported here: a DataFrame or Series is recognised by its attributes, so rnnkit works without
pandas and accepts pandas objects when they are given. Every mistake is a UserError naming the element
(``data[3]: the text is empty``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import UserError


def is_frame(obj: Any) -> bool:
    """A pandas DataFrame (or anything with its shape of API)."""
    return hasattr(obj, "columns") and hasattr(obj, "index") and hasattr(obj, "to_numpy")


def is_series(obj: Any) -> bool:
    """A pandas Series."""
    return not hasattr(obj, "columns") and hasattr(obj, "index") and hasattr(obj, "to_numpy") and hasattr(obj, "name")


def _one_line(text: str) -> str:
    """A text as one line of a TSV file: tabs and line breaks become spaces."""
    return " ".join(text.replace("\t", " ").split())


def _label(v: Any, where: str) -> str:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, (str, int, bool)):
        raise UserError(f"{where}: a label must be a string or an integer, got {type(v).__name__}")
    label = _one_line(str(v))
    if not label:
        raise UserError(f"{where}: the label is empty")
    return label


def _column(frame: Any, names: tuple[str, ...], what: str) -> Any:
    cols = {str(c).lower(): c for c in frame.columns}
    for n in names:
        if n in cols:
            return frame[cols[n]]
    raise UserError(
        f"data: the DataFrame has no {what} column (columns: {', '.join(map(str, frame.columns))}); "
        f"name it {names[0]!r}"
    )


def text_pairs(data: Any, first: str = "text", second: str = "label") -> list[tuple[str, str]]:
    """``(text, label)`` pairs (or ``(source, target)``) from a list of pairs, a dict of two equal-length columns
    or a DataFrame with those two named columns. Texts become one line each; the second item of a classification
    pair may be an integer."""
    label_like = second == "label"
    if is_frame(data):
        a, b = _column(data, (first,), first).tolist(), _column(data, (second,), second).tolist()
        rows = list(zip(a, b))
    elif isinstance(data, Mapping):
        if first not in data or second not in data:
            raise UserError(f"data: a dict of columns needs the keys {first!r} and {second!r}, got {list(data)}")
        a, b = list(data[first]), list(data[second])
        if len(a) != len(b):
            raise UserError(f"data: {first!r} has {len(a)} items but {second!r} has {len(b)}")
        rows = list(zip(a, b))
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        rows = list(data)
    else:
        raise UserError(
            f"data: expected a list of ({first}, {second}) pairs, a dict of columns or a DataFrame, got "
            f"{type(data).__name__}"
        )
    if not rows:
        raise UserError("data: no examples")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, (tuple, list)) or len(row) != 2:
            raise UserError(f"data[{i}]: expected a ({first}, {second}) pair, got {row!r}"[:200])
        text, other = row
        if not isinstance(text, str):
            raise UserError(f"data[{i}]: the {first} must be a string, got {type(text).__name__}")
        text = _one_line(text)
        if not text:
            raise UserError(f"data[{i}]: the {first} is empty")
        if label_like:
            other = _label(other, f"data[{i}]")
        else:
            if not isinstance(other, str) or not _one_line(other):
                raise UserError(f"data[{i}]: the {second} must be a non-empty string")
            other = _one_line(other)
        out.append((text, other))
    return out


def write_tsv(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """One row per line, fields joined by tabs (the fields hold no tab or line break: ``text_pairs`` saw to it)."""
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")


def text_lines(data: Any) -> list[str]:
    """A corpus for a language model: one string (kept line by line) or a sequence of strings (one per line)."""
    if isinstance(data, str):
        lines = data.splitlines()
    elif is_series(data):
        lines = [str(v) for v in data.tolist()]
    elif isinstance(data, Sequence) and not isinstance(data, bytes):
        lines = []
        for i, v in enumerate(data):
            if not isinstance(v, str):
                raise UserError(f"data[{i}]: expected a string (a line of text), got {type(v).__name__}")
            lines += v.splitlines() or [""]
    else:
        raise UserError(f"data: expected a string or a list of strings, got {type(data).__name__}")
    lines = [ln.rstrip() for ln in lines]
    if not any(ln.strip() for ln in lines):
        raise UserError("data: the text is empty")
    return lines


# -- time series -------------------------------------------------------------------------------------------------
def _time_labels(index: Any) -> list[str] | None:
    """Time labels the CSV reader understands, from a pandas index; None for a plain 0..n-1 row number."""
    n = len(index)
    kind = type(index).__name__
    if kind == "RangeIndex" and index.start == 0 and index.step == 1:
        return None
    if kind == "PeriodIndex":
        freq = str(getattr(index, "freqstr", "") or "")
        if freq.startswith("M"):
            return [p.strftime("%Y-%m") for p in index]
        return [p.to_timestamp().strftime("%Y-%m-%d %H:%M:%S") for p in index]
    values = list(index)
    if values and all(isinstance(v, (dt.datetime, dt.date)) for v in values):
        stamps = [v if isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day) for v in values]
        midnight = all((s.hour, s.minute, s.second, s.microsecond) == (0, 0, 0, 0) for s in stamps)
        monthly = (
            midnight
            and n > 1
            and all(s.day == 1 for s in stamps)
            and min((b - a).days for a, b in zip(stamps, stamps[1:])) >= 28
        )
        if monthly:
            return [s.strftime("%Y-%m") for s in stamps]
        return [s.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M:%S") for s in stamps]
    labels = []
    for v in values:
        if isinstance(v, (np.generic,)):
            v = v.item()
        labels.append(repr(v) if isinstance(v, float) else str(v))
    return labels


def series_table(data: Any) -> tuple[np.ndarray, list[str] | None, list[str]]:
    """``(values (n, k), time labels or None, column names)`` from a pandas Series or DataFrame (the index is the
    time: dates, periods or numbers), a dict of equal-length columns, or numbers (a list or array of n values, or
    n rows of k values)."""
    times: list[str] | None = None
    if is_series(data):
        columns = [str(data.name) if data.name is not None else "value"]
        values = np.asarray(data.to_numpy(), dtype=object)[:, None]
        times = _time_labels(data.index)
    elif is_frame(data):
        columns = [str(c) for c in data.columns]
        values = np.asarray(data.to_numpy(), dtype=object)
        times = _time_labels(data.index)
    elif isinstance(data, Mapping):
        columns = [str(c) for c in data]
        cols = [list(v) for v in data.values()]
        if not cols or len({len(c) for c in cols}) != 1:
            raise UserError("data: a dict of series needs one or more columns of equal length")
        values = np.asarray(cols, dtype=object).T
    else:
        try:
            values = np.asarray(data, dtype=object) if not isinstance(data, (str, bytes)) else None
        except ValueError:
            values = None
        if values is None or values.ndim not in (1, 2):
            raise UserError(
                f"data: expected numbers (a list, an array or rows of equal length), a pandas Series or DataFrame "
                f"or a dict of columns; got {type(data).__name__}"
            )
        if values.ndim == 1:
            values = values[:, None]
        columns = ["value"] if values.shape[1] == 1 else [f"value{j}" for j in range(values.shape[1])]
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] < 1:
        raise UserError(f"data: a series needs two or more points of one or more values, got shape {values.shape}")
    out = np.empty(values.shape, dtype=np.float64)

    def where(i: int, j: int) -> str:  # in the user's terms: the column and the time (its index), or the row
        return f"column {columns[j]!r} at {times[i]}" if times is not None else f"row {i}, column {columns[j]!r}"

    for (i, j), v in np.ndenumerate(values):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise UserError(f"data: {where(i, j)}: not a number: {v!r}"[:200]) from None
        if not math.isfinite(x):
            raise UserError(
                f"data: {where(i, j)}: {x} (missing or infinite); fill or drop such rows first "
                f"(forecasting needs a complete, evenly spaced series)"
            )
        out[i, j] = x
    if times is not None:
        seen: dict[str, int] = {}
        for i, t in enumerate(times):
            if t in seen:
                raise UserError(f"data: time {t} appears twice in the index; a series has one row per time")
            seen[t] = i
        if is_series(data) or is_frame(data):
            index = data.index
            if getattr(index, "is_monotonic_increasing", True) is False:
                i = next(k for k in range(1, len(index)) if index[k] < index[k - 1])
                raise UserError(
                    f"data: the index is not in time order: {times[i]} comes after {times[i - 1]}; sort it first "
                    f"(data.sort_index())"
                )
    if len(set(columns)) != len(columns):
        raise UserError(f"data: duplicate column names {columns}")
    return out, times, columns


def write_series_csv(path: Path, values: np.ndarray, times: list[str] | None, columns: list[str]) -> None:
    """A CSV the forecasting reader takes: a time column first (row numbers when there are no times), then the
    value columns; values written exactly (``repr``)."""
    time_col = next(n for n in ("time", "t", "_time") if n not in columns)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([time_col, *columns])
    labels = times if times is not None else [str(i) for i in range(values.shape[0])]
    for label, row in zip(labels, values):
        w.writerow([label, *(repr(float(x)) for x in row)])
    path.write_text(buf.getvalue(), encoding="utf-8")


# -- numeric sequences -------------------------------------------------------------------------------------------
def labelled_arrays(data: Any, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """``(x (n, steps, channels) float64, y (n,) labels as strings)`` from ``(X, y)``: X of shape (n, steps,
    channels), or (n, steps) for one channel; y one label (string or integer) per example. ``name`` is what
    messages call the argument (``data``, ``test_data``)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise UserError(f"{name}: expected a pair (X, y): X of shape (examples, steps, channels), y one label each")
    x_raw, y_raw = data
    try:
        x = np.asarray(x_raw.to_numpy() if hasattr(x_raw, "to_numpy") else x_raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{name}: X must be numbers of shape (examples, steps, channels)") from None
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or 0 in x.shape:
        raise UserError(f"{name}: X must have shape (examples, steps, channels), got {x.shape}")
    if not np.isfinite(x).all():
        i = int(np.argwhere(~np.isfinite(x))[0][0])
        raise UserError(f"{name}: X[{i}] holds a value that is not a finite number")
    ys = list(y_raw.tolist() if hasattr(y_raw, "tolist") else y_raw)
    if len(ys) != x.shape[0]:
        raise UserError(f"{name}: X has {x.shape[0]} examples but y has {len(ys)} labels")
    y = np.array([_label(v, f"y[{i}]") for i, v in enumerate(ys)], dtype=str)
    return x, y

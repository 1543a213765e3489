"""Time series for forecasting: CSV reading with validation, a synthetic series, chronological splits, windows,
the value transform and the scaler.

Conventions used throughout (and by `rnnkit.tasks.forecast`):

* a series is ``values`` of shape ``(n, k)`` (``k`` value columns forecast jointly) plus ``n`` time labels;
* a window is named by its *origin* ``o``: the inputs are ``values[o - lookback : o]`` and the targets
  ``values[o : o + horizon]``;
* the split ``[start, end)`` owns a window when all its targets lie inside the split (``start <= o`` and
  ``o + horizon <= end``); the inputs may reach back into earlier splits (that history is known at forecast time),
  never forward, so no target of one split is ever an input or target of an earlier split's window.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.text import read_text
from rnnkit.errors import UserError

MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"}
TRANSFORMS = ("none", "log")
SYNTHETIC = ("sine",)


@dataclass
class Series:
    """A univariate or multivariate series: ``values`` (n, k) float64, ``times`` (n labels), ``columns`` (k).

    Covariates (``exog_columns``: the ``past_count`` past-only ones, then the known-future ones): ``exog``
    (n + f, c) holds their values at every time, and for the ``f`` times after the last value (``future_times``,
    rows of the file without a value) the known-future covariates (the past-only ones are NaN there)."""

    values: np.ndarray
    times: list[str]
    columns: list[str]
    time_col: str
    source: str  # file path or a description of the synthetic series
    exog: np.ndarray | None = None
    exog_columns: list[str] = field(default_factory=list)
    past_count: int = 0
    future_times: list[str] = field(default_factory=list)
    column_times: list[list[str]] | None = None  # series of different spans: each column's own times (end-aligned)

    def __len__(self) -> int:
        return self.values.shape[0]

    def head(self, n: int) -> Series:
        """The first ``n`` points; the covariates of the times after them become the future."""
        exog = self.exog
        return Series(
            self.values[:n],
            self.times[:n],
            self.columns,
            self.time_col,
            self.source,
            exog,
            self.exog_columns,
            self.past_count,
            (self.times[n:] + self.future_times) if exog is not None else [],
        )


# -- reading -------------------------------------------------------------------------------------------
def parse_target(target: str | list[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``; ``""`` -> ``[]`` (every column but the time column)."""
    items = target if isinstance(target, list) else target.split(",")
    return [t.strip() for t in items if t.strip()]


def read_series_csv(
    path: Path,
    time_col: str = "",
    target: str | list[str] = "",
    sort: bool = False,
    series_col: str = "",
    past: str | list[str] = "",
    future: str | list[str] = "",
    keys: Mapping[str, str] | None = None,
) -> Series:
    """Read a CSV with a header row, a time column and one or more numeric value columns.

    ``series_col``: a column naming the series of each row (the long layout of many series in one file: id,
    time, value); each series becomes a value column named by its id. Every series needs the same times.

    ``time_col``: the time column's name ("" = the first column; "none" = there is none, rows are numbered from 0).
    ``target``: the value column(s) to forecast, comma-separated ("" = every column but the time column and the
    covariates). ``past``, ``future``: covariate columns, comma-separated: past-only ones (known up to each
    origin) and known-future ones (known ahead: calendars, planned prices). Rows at the end of the file with no
    value but the known-future covariates give those for the times after the series (``Series.future_times``).
    Missing or non-numeric values, ragged rows and unknown column names are reported with file, line and column;
    so are impossible, duplicated and out-of-order times (see ``check_times``), unless ``sort`` puts the rows in
    time order.

    ``keys``: how the caller sets each column key, for the hint a message ends with. None: as ``rnnkit.train``
    does (``overrides={"data.value_columns": NAME}``, which the CLI says as ``--set data.value_columns=NAME``); a
    mapping names the caller's own argument per key (``forecast_report``: ``{"data.value_columns": "target=..."}``,
    the CLI's ``--target``), and a key it lacks is the run's own, which the caller cannot choose: no hint.
    """

    def choose(field: str, what: str) -> str:
        how = f'overrides={{"{field}": NAME}}' if keys is None else keys.get(field)
        return f"{what} {how}" if how else ""

    text = read_text(path)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:  # pragma: no cover - read_text rejects empty files
        raise UserError(f"{path}: file is empty") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise UserError(f"{path}: line 1: expected a header row naming the columns")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise UserError(f"{path}: line 1: duplicate column name(s) {', '.join(map(repr, dup))}")

    def col(name: str, field: str) -> int:
        if name not in header:
            hint = choose(field, "; choose with")
            raise UserError(f"{path}: {field}={name!r} is not a column (columns: {', '.join(header)}){hint}")
        return header.index(name)

    if time_col.lower() == "none":
        t_idx = None
    elif time_col:
        t_idx = col(time_col, "data.time_column")
    else:
        t_idx = 0
    s_idx = col(series_col, "data.series_column") if series_col else None
    if s_idx is not None and s_idx == t_idx:
        raise UserError(f"{path}: column {header[s_idx]!r} is both data.time_column and data.series_column")
    past_names, future_names = parse_target(past), parse_target(future)
    x_idx = [col(c, "data.past_covariates") for c in past_names] + [
        col(c, "data.future_covariates") for c in future_names
    ]
    if x_idx and s_idx is not None:
        raise UserError(f"{path}: covariates with data.series_column are not supported; one series per file")
    for i in x_idx:
        if x_idx.count(i) > 1 or i in (t_idx, s_idx):
            raise UserError(f"{path}: column {header[i]!r} is named twice among the time, series and covariates")
    wanted = parse_target(target)
    if wanted:
        v_idx = [col(c, "data.value_columns") for c in wanted]
        if t_idx is not None and t_idx in v_idx:
            raise UserError(f"{path}: column {header[t_idx]!r} is both data.time_column and data.value_columns")
        both = [header[i] for i in v_idx if i in x_idx]
        if both:
            raise UserError(f"{path}: column {both[0]!r} is both a covariate and data.value_columns")
    else:
        v_idx = [i for i in range(len(header)) if i not in (t_idx, s_idx, *x_idx)]
    if s_idx is not None and len(v_idx) != 1:
        hint = choose("data.value_columns", ": name its column with")
        raise UserError(
            f"{path}: with data.series_column={series_col!r} each row holds one value{hint} "
            f"(columns: {', '.join(header)})"
        )
    if not v_idx:
        raise UserError(
            f"{path}: no value column (columns: {', '.join(header)}); the CSV needs a time column "
            f"and at least one numeric column"
        )
    rows: list[list[float]] = []
    exog: list[list[float]] = []
    times: list[str] = []
    lines: list[int] = []
    ids: list[str] = []
    n_past = len(past_names)
    future_from: int | None = None  # the line of the first row with no value (the known future begins)
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue  # blank lines (e.g. at the end of the file)
        if len(fields) != len(header):
            raise UserError(f"{path}: line {line}: {len(fields)} fields, expected {len(header)} as in the header")
        if future_names and all(fields[i].strip().lower() in MISSING for i in v_idx):
            future_from = future_from or line  # a row of the known future: its known-future covariates only
            exog.append(
                [math.nan] * n_past
                + [_number(path, line, header[i], fields[i], "future covariate") for i in x_idx[n_past:]]
            )
            times.append(fields[t_idx].strip() if t_idx is not None else str(len(times)))
            lines.append(line)
            continue
        if future_from is not None:
            raise UserError(
                f"{path}: line {line}: a value after the rows without one (from line {future_from}); rows of the "
                f"known future (covariates only) come after the series"
            )
        if x_idx:
            exog.append([_number(path, line, header[i], fields[i], "covariate") for i in x_idx])
        row = []
        for i in v_idx:
            raw = fields[i].strip()
            name = header[i]
            if raw.lower() in MISSING:
                raise UserError(
                    f"{path}: line {line}, column {name!r}: missing value ({raw or 'empty'}); "
                    f"fill or drop such rows first (forecasting needs an evenly spaced, complete series)"
                )
            try:
                x = float(raw)
            except ValueError:
                hint = choose("data.value_columns", "choose numeric columns with")
                raise UserError(
                    f"{path}: line {line}, column {name!r}: not a number: {raw[:40]!r}" + (f" ({hint})" if hint else "")
                ) from None
            if not math.isfinite(x):
                raise UserError(f"{path}: line {line}, column {name!r}: value {raw!r} is not finite")
            row.append(x)
        rows.append(row)
        times.append(fields[t_idx].strip() if t_idx is not None else str(len(times)))
        lines.append(line)
        if s_idx is not None:
            ids.append(fields[s_idx].strip())
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    if s_idx is not None:
        return _panel(path, rows, times, lines, ids, header[t_idx] if t_idx is not None else "", sort)
    values = np.asarray(rows, dtype=np.float64)
    x = np.asarray(exog, dtype=np.float64).reshape(len(times), len(x_idx)) if x_idx else None
    if t_idx is not None:
        order = check_times(times, lines, str(path), header[t_idx], sort and future_from is None)
        if order is not None:
            values, times = values[order], [times[i] for i in order]
            x = x[order] if x is not None else None
    n = values.shape[0]
    return Series(
        values,
        times[:n],
        [header[i] for i in v_idx],
        header[t_idx] if t_idx is not None else "",
        str(path),
        x,
        [header[i] for i in x_idx],
        n_past,
        times[n:],
    )


def _number(path: Path, line: int, name: str, raw: str, what: str) -> float:
    """A covariate's value: a finite number, or an error naming the file, line and column."""
    raw = raw.strip()
    try:
        x = float(raw)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise UserError(
            f"{path}: line {line}, column {name!r}: {what} {raw[:40] or 'missing'!r} is not a number (covariates "
            f"need a value at every time{'' if what == 'covariate' else ' of the known future'})"
        )
    return x


def _panel(
    path: Path, rows: list[list[float]], times: list[str], lines: list[int], ids: list[str], time_col: str, sort: bool
) -> Series:
    """Many series in the long layout -> one column per series (in order of first appearance), their times
    checked one series at a time. Series may start and end at different times: each must be complete from its
    first time to its last (no time of the others missing in between), and the columns are aligned at their
    ends - row i is each series' (n - i)-th last point, NaN before a shorter series starts - with each series' own
    time labels in ``Series.column_times`` (a global model reads each series alone: what lines up is the position
    before the forecast, as the last windows of every series in neuralforecast's cross-validation)."""
    groups: dict[str, list[int]] = {}
    for i, sid in enumerate(ids):
        if not sid:
            raise UserError(f"{path}: line {lines[i]}: the series column is empty; every row names its series")
        groups.setdefault(sid, []).append(i)
    per: dict[str, list[str]] = {}
    for sid, idx in groups.items():
        t = [times[i] for i in idx] if time_col else [str(k) for k in range(len(idx))]
        order = check_times(t, [lines[i] for i in idx], str(path), time_col, sort) if time_col else None
        if order is not None:
            idx, t = [idx[k] for k in order], [t[k] for k in order]
        groups[sid], per[sid] = idx, t
    columns = list(groups)
    first = per[columns[0]]
    if all(per[c] == first for c in columns):
        values = np.asarray([[rows[i][0] for i in idx] for idx in groups.values()], dtype=np.float64).T
        return Series(values, first, columns, time_col, str(path))
    key = time_key(first[0]) if time_col else None
    if key is None:
        raise UserError(
            f"{path}: the series have different times; series of different spans need a time column of months, "
            f"dates or numbers to be placed on one time line (data.time_column)"
        )
    keys = {c: [key(label) for label in per[c]] for c in columns}
    label_of = {k: label for c in columns for k, label in zip(keys[c], per[c])}
    grid = sorted(label_of)
    where = {k: g for g, k in enumerate(grid)}
    n = max(len(per[c]) for c in columns)
    values = np.full((n, len(columns)), np.nan)
    for j, c in enumerate(columns):
        pos = [where[k] for k in keys[c]]
        if pos[-1] - pos[0] + 1 != len(pos):  # a time of the line missing between this series' first and last
            gap = next(g for g in range(pos[0], pos[-1] + 1) if g not in set(pos))
            other = next(o for o in columns if grid[gap] in set(keys[o]))
            before = per[c][[p for p in pos if p < gap][-1] - pos[0]]
            raise UserError(
                f"{path}: series {c!r} has no row at time {label_of[grid[gap]]!r} (after {before!r}), where "
                f"series {other!r} has one; each series needs every time from its first to its last (fill or drop "
                f"the gaps first)"
            )
        values[n - len(pos) :, j] = [rows[i][0] for i in groups[c]]
    longest = max(columns, key=lambda c: len(per[c]))
    return Series(values, per[longest], columns, time_col, str(path), column_times=[per[c] for c in columns])


def time_key(label: str) -> Any:
    """The sortable key function of time labels like ``label`` (months, dates, date-times, numbers), or None."""
    kind = next((k for name, shape, k in TIME_KINDS if shape.match(label)), None)
    return kind


def starts(values: np.ndarray) -> list[int]:
    """Each column's first row with a value (a panel's shorter series are NaN before it, see ``_panel``)."""
    return [int(np.argmax(np.isfinite(values[:, j]))) for j in range(values.shape[1])]


# -- time labels: kinds, validity, order -----------------------------------------------------------------
def _month_key(label: str) -> float | None:
    y, m = label.split("-")
    return int(y) * 12 + int(m) - 1 if 1 <= int(m) <= 12 else None


def _date_key(*formats: str) -> Any:
    def parse(label: str) -> float | None:
        for fmt in formats:
            try:
                # read as UTC: a local clock's daylight-saving hour would repeat or skip labels that do not
                return dt.datetime.strptime(label, fmt).replace(tzinfo=dt.timezone.utc).timestamp()
            except ValueError:
                continue
        return None

    return parse


def _number_key(label: str) -> float | None:
    x = float(label)
    return x if math.isfinite(x) else None


# (what a user calls it, the shape of its labels, the sortable key of a label of that shape or None if impossible)
TIME_KINDS: list[tuple[str, re.Pattern[str], Any]] = [
    ("year-month", re.compile(r"^\d{1,4}-\d{1,2}$"), _month_key),
    ("date", re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$"), _date_key("%Y-%m-%d")),
    (
        "date and time",
        re.compile(r"^\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2})?$"),
        _date_key("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"),
    ),
    ("date", re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$"), _date_key("%Y/%m/%d")),
    ("date", re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$"), _date_key("%d/%m/%Y")),
    ("number", re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"), _number_key),
]


def check_times(times: list[str], lines: list[int], source: str, column: str, sort: bool = False) -> list[int] | None:
    """Check a series' time labels; returns the row order that sorts them (``sort``), or None if already sorted.

    The first label decides the kind (year-month, date, date and time, number); every other label must be a valid
    label of the same kind (``1949-13`` is not a month), no time may repeat, and times must increase down the
    file - a forecaster trained on shuffled rows learns nothing true, silently. Labels of no known kind (``Q1``,
    ``week 3``) can only be checked for repeats. Errors name the line: ``FILE: line N: ...``.
    """
    kind = next(((name, shape, key) for name, shape, key in TIME_KINDS if shape.match(times[0])), None)
    seen: dict[Any, int] = {}
    keys: list[float] = []
    for label, line in zip(times, lines):
        if kind is None:
            k: Any = label
        else:
            name, shape, key = kind
            k = key(label) if shape.match(label) else None
            if k is None:
                why = (
                    f"is not a valid {name}"
                    if shape.match(label)
                    else f"is not a {name} like {times[0]!r} on line {lines[0]}"
                )
                raise UserError(f"{source}: line {line}, column {column!r}: time {label!r} {why}")
            keys.append(k)
        if k in seen:
            raise UserError(
                f"{source}: line {line}, column {column!r}: duplicate time {label!r} (also on line "
                f"{seen[k]}); a series has one row per time"
            )
        seen[k] = line
    if kind is None:
        return None
    for i in range(1, len(keys)):
        if keys[i] < keys[i - 1]:
            if sort:
                return sorted(range(len(keys)), key=keys.__getitem__)
            raise UserError(
                f"{source}: line {lines[i]}, column {column!r}: time {times[i]!r} comes before "
                f"{times[i - 1]!r} on line {lines[i - 1]}; the rows must be in time order (or set "
                f"data.sort = true to sort them)"
            )
    return None


def synthetic_series(
    kind: str = "sine", length: int = 1000, step: float = 0.1, noise: float = 0.0, seed: int = 0
) -> Series:
    """The textbook series (Geron, *Hands-On Machine Learning*, ch. 14): y(t) = t sin(t) / 3 + 2 sin(5t).

    A slow sine whose amplitude grows linearly (the trend) plus a fast sine, sampled at t = 0, step, 2 step, ...
    (``length`` points), with optional Gaussian noise of standard deviation ``noise`` (seeded by ``seed``).
    """
    if kind not in SYNTHETIC:
        raise UserError(f"data.synthetic: expected one of {', '.join(SYNTHETIC)}, got {kind!r}")
    if length < 2 or step <= 0:
        raise UserError("data.synthetic_length must be >= 2 and data.synthetic_step > 0")
    t = np.arange(length, dtype=np.float64) * step
    y = t * np.sin(t) / 3 + 2 * np.sin(5 * t)
    if noise > 0:
        y = y + np.random.default_rng(seed).normal(0.0, noise, size=length)
    decimals = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
    times = [f"{v:.{decimals}f}" for v in t]
    return Series(
        y[:, None],
        times,
        ["y"],
        "t",
        f"synthetic {kind}: t*sin(t)/3 + 2*sin(5t), {length} points, step {step}, noise {noise}",
    )


# -- splits and windows --------------------------------------------------------------------------------
def split_bounds(n: int, valid_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """Chronological ``[start, end)`` index ranges: train, then valid, then test (the most recent points)."""
    for name, f in (("data.valid_fraction", valid_fraction), ("data.test_fraction", test_fraction)):
        if not 0 < f < 0.5:
            raise UserError(f"{name} must be in (0, 0.5), got {f}")
    n_test = max(1, int(round(n * test_fraction)))
    n_valid = max(1, int(round(n * valid_fraction)))
    a, b = n - n_test - n_valid, n - n_test
    return {"train": (0, a), "valid": (a, b), "test": (b, n)}


def window_origins(bounds: tuple[int, int], lookback: int, horizon: int, stride: int = 1) -> np.ndarray:
    """Origins of the windows a split owns: inputs ``[o - lookback, o)``, targets ``[o, o + horizon)`` in bounds."""
    start, end = bounds
    first = max(start, lookback)
    last = end - horizon  # inclusive
    if last < first:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, last + 1, max(stride, 1), dtype=np.int64)


def gather_windows(
    values: np.ndarray, origins: np.ndarray, lookback: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (B, lookback, k), targets (B, horizon, k)) for the given origins."""
    back = origins[:, None] + np.arange(-lookback, 0)[None, :]
    ahead = origins[:, None] + np.arange(horizon)[None, :]
    return values[back], values[ahead]


# -- transform and scaling -------------------------------------------------------------------------------
def check_transform(name: str) -> None:
    if name not in TRANSFORMS:
        raise UserError(f"data.transform: expected one of {', '.join(TRANSFORMS)}, got {name!r}")


def apply_transform(values: np.ndarray, name: str, series: Series | None = None, offset: int = 0) -> np.ndarray:
    """The value transform before scaling: ``log`` for multiplicative growth/seasonality (needs values > 0)."""
    check_transform(name)
    if name == "none":
        return values.astype(np.float64)
    bad = np.argwhere(values <= 0)
    if bad.size:
        i, j = (int(v) for v in bad[0])
        if series is not None:
            where = (
                f"{series.source}: line {offset + i + 2}, column {series.columns[j]!r}: "
                f"value {values[i, j]:g}"
            )  # +2: the header line and 1-based numbering
        else:
            where = f"value {values[i, j]:g} at row {offset + i}"
        raise UserError(
            f"{where} is not positive, so data.transform=log cannot take its log; train with data.transform=none "
            f'(overrides={{"data.transform": "none"}})'
        )
    return np.log(values)


def invert_transform(values: np.ndarray, name: str) -> np.ndarray:
    if name == "log":
        return np.exp(np.clip(values, -700, 700))
    return values


@dataclass
class Scaler:
    """Standardisation per column, fitted on the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        nan = np.isnan(values).any()  # a panel's shorter series: over each column's known values
        mean = np.nanmean(values, axis=0) if nan else values.mean(axis=0)
        std = np.nanstd(values, axis=0) if nan else values.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)  # a constant column stays as it is (shifted to 0)
        return cls(mean, std)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


# -- time labels beyond the end --------------------------------------------------------------------------
_MONTH = re.compile(r"^(\d{1,4})-(\d{1,2})$")
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d",
    "%d/%m/%Y",
)


def _months(label: str) -> int | None:
    m = _MONTH.match(label)
    return int(m.group(1)) * 12 + int(m.group(2)) - 1 if m and 1 <= int(m.group(2)) <= 12 else None


def _datetime(label: str) -> tuple[dt.datetime, str] | None:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(label, fmt), fmt
        except ValueError:
            continue
    return None


def future_times(times: list[str], horizon: int) -> list[str]:
    """Labels for the ``horizon`` steps after the last time, continuing its spacing.

    Understands year-month (``1960-12`` -> ``1961-01``), dates and date-times (the last step's spacing), and
    numbers (integers or decimals). Anything else becomes ``LAST+1``, ``LAST+2``...
    """
    if not times:
        return [f"+{i}" for i in range(1, horizon + 1)]
    last = times[-1]
    prev = times[-2] if len(times) > 1 else None
    m1, m0 = _months(last), _months(prev) if prev else None
    if m1 is not None and (prev is None or m0 is not None):
        step = (m1 - m0) if m0 is not None and m1 > m0 else 1
        width = len(_MONTH.match(last).group(1))  # type: ignore[union-attr]
        out = []
        for i in range(1, horizon + 1):
            y, mo = divmod(m1 + i * step, 12)
            out.append(f"{y:0{width}d}-{mo + 1:02d}")
        return out
    d1, d0 = _datetime(last), _datetime(prev) if prev else None
    if d1 is not None:
        delta = (d1[0] - d0[0]) if d0 is not None and d1[0] > d0[0] else dt.timedelta(days=1)
        return [(d1[0] + i * delta).strftime(d1[1]) for i in range(1, horizon + 1)]
    try:
        x1 = float(last)
        x0 = float(prev) if prev is not None else x1 - 1
        step_f = x1 - x0 if x1 != x0 else 1.0
        decimals = len(last.split(".")[1]) if "." in last else 0
        if decimals == 0 and not step_f.is_integer():
            decimals = 3
        return [f"{x1 + i * step_f:.{decimals}f}" for i in range(1, horizon + 1)]
    except ValueError:
        return [f"{last}+{i}" for i in range(1, horizon + 1)]


# -- the season: from the time index, checked against the autocorrelation --------------------------------------
# what a time step is called, and the seasonal periods such data usually has (the shorter first)
FREQUENCY_SEASONS: dict[str, tuple[int, ...]] = {
    "minutely": (60, 1440),
    "half-hourly": (48, 336),
    "hourly": (24, 168),
    "daily": (7, 365),
    "weekly": (52,),
    "monthly": (12,),
    "quarterly": (4,),
    "yearly": (),
}
BY_INDEX = ("monthly", "quarterly")  # the season is the calendar's, the autocorrelation only confirms it
UNKNOWN_SEASONS = (4, 7, 12, 24, 52)  # tried when the time index says nothing (rows numbered, odd labels)
_SPACINGS = (  # (seconds between labels, up to this spread, name)
    (60, 0, "minutely"),
    (1800, 0, "half-hourly"),
    (3600, 0, "hourly"),
    (86400, 3600, "daily"),  # a daylight-saving day is 23 or 25 hours in a local clock
    (7 * 86400, 3600, "weekly"),
)


def time_frequency(times: list[str]) -> str | None:
    """What one step of these time labels is: "monthly", "daily", ... (see ``FREQUENCY_SEASONS``), or None.

    Read from the median spacing of the labels: year-month labels (``1949-01``: monthly, or quarterly when they
    step by 3 months), dates and date-times, and whole numbers between 1000 and 3000 stepping by one (years).
    """
    if len(times) < 3:
        return None
    months = [_months(t) for t in times]
    if all(m is not None for m in months):
        step = float(np.median(np.diff(np.asarray(months, dtype=np.float64))))
        return {1.0: "monthly", 3.0: "quarterly", 12.0: "yearly"}.get(step)
    stamps = [_datetime(t) for t in times]
    if all(s is not None for s in stamps):
        secs = np.diff(np.asarray([s[0].timestamp() for s in stamps if s is not None]))  # type: ignore[union-attr]
        step = float(np.median(secs))
        for spacing, spread, name in _SPACINGS:
            if abs(step - spacing) <= spread:
                return name
        days = step / 86400
        if 28 <= days <= 31:
            return "monthly"
        if 89 <= days <= 92:
            return "quarterly"
        if 365 <= days <= 366:
            return "yearly"
        return None
    try:
        nums = np.asarray([float(t) for t in times])
    except ValueError:
        return None
    if np.all(nums == np.round(nums)) and nums.min() >= 1000 and nums.max() <= 3000 and np.all(np.diff(nums) == 1):
        return "yearly"
    return None


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation r_0 .. r_max_lag of a 1-D series (the usual biased estimator)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    den = float(np.dot(x, x))
    if den <= 0:
        return np.zeros(max_lag + 1)
    return np.array([float(np.dot(x[: n - k], x[k:])) / den for k in range(max_lag + 1)])


def seasonal_evidence(x: np.ndarray, m: int) -> float | None:
    """The strongest autocorrelation at lag ``m`` that is a significant local peak there - of the differenced
    series (a short season on a trend) or of the series less its linear trend (a long, smooth season: the annual
    cycle of daily data) - else None. Significant: above the 90% Bartlett limit, as the classical seasonality test
    of the M4 benchmarks; a peak: within 0.05 of the largest autocorrelation within m/10 lags of m, and 0.1 above
    the lowest at a shorter lag - a slowly decaying autocorrelation (a trend, a long cycle) is never that."""
    x = np.asarray(x, dtype=np.float64)
    t = np.arange(len(x), dtype=np.float64)
    detrended = x - np.polyval(np.polyfit(t, x, 1), t) if len(x) > 2 else x
    w = max(1, m // 10)
    best = None
    for series in (np.diff(x), detrended):
        if m < 2 or len(series) < 3 * m:
            continue
        r = autocorrelation(series, m + w)
        limit = 1.645 * math.sqrt((1 + 2 * float(np.sum(r[1:m] ** 2))) / len(series))
        peak = r[m] >= float(np.max(r[m - w : m + w + 1])) - 0.05 and r[m] - float(np.min(r[1:m])) >= 0.1
        if r[m] > limit and peak:
            best = max(best or -1.0, float(r[m]))
    return best


def infer_season(values: np.ndarray, times: list[str]) -> tuple[int, str]:
    """The seasonal period of a series, and why: the periods its time index suggests (monthly: 12; daily: 7,
    365; ...; none known: 4, 7, 12, 24, 52), kept when the autocorrelation shows them (``seasonal_evidence``, on
    the mean of the columns' standardised values); of several, the strongest. Monthly and quarterly data keep
    their calendar's one season without that evidence (``BY_INDEX``) where two seasons fit. 1 = no season."""
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    sd = v.std(axis=0)
    x = ((v - v.mean(axis=0)) / np.where(sd > 0, sd, 1)).mean(axis=1)
    freq = time_frequency(times)
    candidates = FREQUENCY_SEASONS.get(freq, ()) if freq else UNKNOWN_SEASONS
    what = f"{freq} time index" if freq else "no time frequency known"
    floor = 0.0 if freq else 0.3  # five guesses instead of the index's one or two: stronger evidence wanted
    found = [(r, m) for m in candidates if (r := seasonal_evidence(x, m)) is not None and r >= floor]
    if not found and freq in BY_INDEX and len(x) >= 2 * candidates[0]:
        # a calendar's one season, as R's frequency() gives it, even where a short history's autocorrelation is
        # not significant: each candidate decides for itself (ETS by AICc, Theta by its test, the backtest)
        m = candidates[0]
        return m, f"{what}: its calendar's season (autocorrelation not significant at lag {m}; the models decide)"
    if found:
        r, m = max(found)
        return m, f"{what}; autocorrelation {r:.2f} at lag {m}"
    if not candidates:
        return 1, f"{what}: no season"
    tried = ", ".join(str(m) for m in candidates)
    return 1, f"{what}; no seasonal autocorrelation at lag {tried}"

"""In-memory data written into a run directory, so that the run never needs the Python objects again.

``rnnkit.train("sms-spam", data=[(text, label), ...])`` keeps the recipe's settings and replaces its files with
the user's data: the task writes the data in its own file format into ``RUN/data/`` (``Task.write_data``: a
label<TAB>text TSV, a time-series CSV, an .npz of arrays, a text file, a source<TAB>target TSV) and returns the
``[data]`` overrides that point the configuration at those files, as ``data/NAME`` paths. run.json records it
under ``materialised`` (what the data was, each file's size and sha256, the overrides), and every reader of the
run - resume, ``rnnkit eval``, ``load``, ``serve``, ``export`` - reads ``data.*`` relative to the run directory
itself when that key is present (``rnnkit.runs.run_data_dir``), so the run keeps working when it is moved.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from rnnkit.config import RunConfig
from rnnkit.errors import UserError, file_error
from rnnkit.tasks import get_task
from rnnkit.tasks.base import MEMORY_DIR


def describe_data(data: Any) -> str:
    """What the user handed over, for run.json: ``list of 120 items``, ``pandas.Series of 144 items``..."""
    kind = type(data)
    top = kind.__module__.split(".")[0]
    name = kind.__qualname__ if top == "builtins" else f"{top}.{kind.__qualname__}"
    try:
        n = len(data)
    except TypeError:
        return name
    if isinstance(data, tuple) and n == 2:  # (X, y)
        try:
            return f"{name} (X, y) of {len(data[1])} examples"
        except TypeError:
            pass
    return f"{name} of {n} items"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def materialise(
    data: Any, run_path: Path, config: RunConfig, test_data: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write ``data`` (and ``test_data``, a test split of the user's own) into ``run_path/data`` for ``config``'s
    task; returns (the [data] overrides, the run.json record). The folder is replaced whole, and removed again if
    the task refuses the data."""
    folder = run_path / MEMORY_DIR
    task_cls = get_task(config.task)
    try:
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    except OSError as e:
        raise file_error(folder, e, "create the data folder") from None
    try:
        overrides = task_cls.write_data(data, folder, config)
        if test_data is not None:
            overrides = {**overrides, **task_cls.write_test_data(test_data, folder, config)}
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"{folder}: cannot write the data: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    files = {
        f"{MEMORY_DIR}/{p.name}": {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
    record = {"from": describe_data(data), "files": files, "overrides": dict(overrides)}
    if test_data is not None:
        record["test_from"] = describe_data(test_data)
    return dict(overrides), record


def remove(run_path: Path) -> None:
    """Undo ``materialise`` (a run that failed before it wrote anything else)."""
    shutil.rmtree(run_path / MEMORY_DIR, ignore_errors=True)

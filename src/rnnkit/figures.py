"""Every PNG rnnkit draws (learning curves, confusion matrices, diagnoses, forecasts, attention) goes through here.

Why: rnnkit runs inside other people's programs - a notebook with its inline backend, a script that draws its own
figures, a GUI. ``matplotlib.use("Agg")`` (what library code often does to draw without a display) switches the
*global* backend under them, and ``pyplot.subplots`` registers figures in pyplot's global list, which a notebook
then shows (or leaks). A ``matplotlib.figure.Figure`` with an Agg canvas attached touches neither: it needs no
display, no backend and no pyplot, and is freed like any object.

    fig = figure((10, 4))            # a Figure with an Agg canvas; fig.subplots(...) etc. as usual
    ax = fig.subplots()
    ...
    save_png(fig, path)              # atomic (temporary file + rename); a failed write is one UserError line

Third-party drawing that only exists through pyplot (Optuna's matplotlib plots in ``rnnkit tune report``) runs
inside ``pyplot_figures()``: the backend stays as the user set it, interactive mode is off while it draws, and
every figure it opened is closed afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rnnkit.errors import PathError, UserError, UserValueError, file_error, is_dir


def figure(figsize: tuple[float, float] = (6.4, 4.8), dpi: float = 100) -> Any:
    """A ``matplotlib.figure.Figure`` drawn by the Agg canvas: no backend switch, no pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def output_file(path: str | os.PathLike, flag: str, call: str | None = None) -> Path:
    """A PNG about to be written (``--plot``, ``--show-attention``; an API call's ``plot`` argument with ``call``),
    checked before any work: a typo in its directory costs nothing. The directory must exist: a mistyped path is
    reported, not created. The error names the option or argument (``rnnkit.errors.ArgumentError``)."""
    p = Path(path)
    if not str(path):
        raise UserValueError(flag, "is an empty file name; give one such as plot.png", call)
    try:
        inside = is_dir(p.parent)
        if is_dir(p):
            raise UserValueError(flag, f"{path}: is a directory; give a file name such as {p / 'plot.png'}", call)
    except PathError as e:
        raise UserValueError(flag, f"{path}: {e.reason}", call) from None
    if not inside:
        if p.parent.exists():  # a file (or a device) where the directory should be: nothing to create
            raise UserValueError(flag, f"{path}: {p.parent} is a file, not a directory", call)
        raise UserValueError(flag, f"{path}: directory {p.parent} does not exist; create it first", call)
    return p


def save_png(fig: Any, path: str | Path, dpi: float = 90, flag: str | None = None, **kwargs: Any) -> Path:
    """Write ``fig`` as a PNG at ``path`` whole or not at all (temporary file + rename, so a reader never sees half
    a file and an interrupted write leaves the old one). A write that fails (full disk, read-only, no such
    directory) is a UserError naming the file (and ``flag``, the option that chose it, when given)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi, format="png", **kwargs)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        err = file_error(path, e)
        raise UserError(f"{flag}: {err}" if flag else str(err)) from None
    return path


@contextlib.contextmanager
def pyplot_figures() -> Iterator[None]:
    """For code that can only draw through pyplot: leave the backend alone, keep interactive mode off while it
    draws (nothing pops up or is shown by a notebook) and close every figure opened inside."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    interactive = plt.isinteractive()
    plt.ioff()
    try:
        yield
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        if interactive:
            plt.ion()

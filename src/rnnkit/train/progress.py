"""Progress display: a notebook bar in Jupyter, a terminal bar on a TTY, silence otherwise (logs and CI stay
clean) or when asked (``progress=False``, ``--quiet``, ``--json``)."""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from typing import Any

# how a line is said to its reader: as written (Python's words), or as a front end says it (``words``); a context
# variable, so a front end's wording stays with the call that set it (not other threads of the same process)
_words: contextvars.ContextVar[Callable[[str], str] | None] = contextvars.ContextVar("rnnkit_words", default=None)


@contextlib.contextmanager
def words(say: Callable[[str], str]) -> Iterator[None]:
    """Lines written while inside go through ``say``: the command line says a line in Python's words
    (``overrides={KEY: VALUE}``) as its own (``--set KEY=VALUE``), as it does errors and notes."""
    token = _words.set(say)
    try:
        yield
    finally:
        _words.reset(token)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm's notebook widget renders; a terminal bar would print garbage)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    try:
        ip = get() if get is not None else None
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def bar_kind(enabled: bool | None) -> str:
    """Which bar to draw: "notebook", "terminal" or "none". ``enabled`` None chooses by where rnnkit runs;
    True draws one even on a pipe (a terminal bar, or the notebook's in Jupyter)."""
    if enabled is False:
        return "none"
    if in_notebook():
        return "notebook"
    if enabled or sys.stderr.isatty():
        return "terminal"
    return "none"


class Progress:
    def __init__(self, enabled: bool | None = None) -> None:
        self.kind = bar_kind(enabled)
        self.enabled = self.kind != "none"
        self.bar: Any = None

    def start_epoch(self, epoch: int, total: int, done: int) -> None:
        if not self.enabled:
            return
        self.close()
        if self.kind == "notebook":
            from tqdm.auto import tqdm  # the widget where ipywidgets is installed, else a text bar

            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}", unit="batch", leave=False)
            return
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            initial=done,
            desc=f"epoch {epoch + 1}",
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def write(self, line: str) -> None:
        say = _words.get()
        if say is not None:
            line = say(line)
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

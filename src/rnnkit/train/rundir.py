"""A run directory: everything one training run produced, in files other tools can read.

    RUN/config.toml           the resolved configuration (recipe + overrides)
    RUN/run.json              how it was started: data dir, device, precision, versions, command line (the keys:
                              rnnkit.runs.setup)
    RUN/summary.json          the summary of the last training invocation (what `rnnkit train --json` prints)
    RUN/data/                 in-memory data given to rnnkit.train(data=...), in the task's file format
    RUN/metrics.jsonl         one JSON object per line: training records and evaluation records
    RUN/checkpoints/last.pt   latest state, for exact resume
    RUN/checkpoints/best.pt   best validation metric so far
    RUN/tensorboard/          event files
    RUN/curves.png            learning curves
    RUN/.lock                 held (flock) by the one trainer writing this run; RUN/.lock.json says who

One trainer per run: two processes appending to one ``metrics.jsonl`` and renaming over each other's checkpoints
would corrupt both runs' records. The lock is an OS file lock (``filelock``: flock on POSIX), which the kernel
drops when its holder dies, so a lock left by a kill -9 can never block a run; ``.lock.json`` (pid, host, start
time, command) is only there to name the holder in the refusal, and to notice a holder that ended uncleanly.
Every write here reports a full disk, a read-only file system or a path that is not a directory as one line
naming the file (UserError), never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rnnkit.config import RunConfig
from rnnkit.errors import UserError, file_error, is_dir, lookup
from rnnkit.tasks.recipes import read_config


def _clean(v: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays parseable by strict readers."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` whole (temporary file + rename): a failed write leaves the old file."""
    from rnnkit.train.checkpoint import default_mode

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, default_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise file_error(path, e) from None


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (a lock's holder: a dead one's lock is stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLocked(UserError):
    """Another trainer holds the run directory."""


class RunLock:
    """The lock one trainer holds on a run directory while it writes it (see the module docstring)."""

    def __init__(self, run: Path) -> None:
        from filelock import FileLock

        self.run = run
        self.file = run / ".lock"
        self.info = run / ".lock.json"
        self._lock = FileLock(str(self.file), timeout=0)

    def acquire(self) -> str:
        """Take the lock or raise RunLocked naming the holder. Returns a note when a holder that died without
        releasing it (kill -9, a lost machine) is taken over, else ''."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunLocked(
                f"{self.run}: another trainer is writing this run ({self._describe(self._holder())}); "
                f"wait for it to finish or stop it"
            ) from None
        except OSError as e:
            raise file_error(self.file, e, "lock") from None
        try:
            stale = self._holder(wait=0.0)  # ours now: a record left behind is a dead holder's, none means none
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(["rnnkit", *sys.argv[1:]]) if sys.argv else "",
            }
            write_text_atomic(self.info, json.dumps(record) + "\n")
        except BaseException:
            self._lock.release()
            raise
        if not stale or (stale.get("pid"), stale.get("host")) == (record["pid"], record["host"]):
            return ""
        return f"took over the lock of {self._describe(stale)}, which ended without releasing it"

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        with contextlib.suppress(OSError):
            self.info.unlink(missing_ok=True)
        self._lock.release()

    @property
    def held(self) -> bool:
        return bool(self._lock.is_locked)

    def _holder(self, wait: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + wait  # the holder writes its record just after taking the lock (slower on a
        while True:  # loaded machine: give it a few seconds before calling it anonymous)
            try:
                return dict(json.loads(self.info.read_text()))
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            except (OSError, ValueError, TypeError):
                break
        return {}

    @staticmethod
    def _describe(h: dict[str, Any]) -> str:
        if not h:
            return "a process that has not said who it is"
        pid, host = h.get("pid", "?"), h.get("host", "?")
        gone = host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)
        return (
            f"pid {pid} on {host}"
            + (" (no longer running)" if gone else "")
            + (f", since {h['since']}" if h.get("since") else "")
            + (f": {h['command']}" if h.get("command") else "")
        )


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock: RunLock | None = None
        self._lock_depth = 0
        self._made = False  # this process created the directory (removed again if nothing was written into it)

    config_file = property(lambda self: self.path / "config.toml")
    meta_file = property(lambda self: self.path / "run.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    last = property(lambda self: self.path / "checkpoints" / "last.pt")
    best = property(lambda self: self.path / "checkpoints" / "best.pt")
    summary_file = property(lambda self: self.path / "summary.json")
    tensorboard = property(lambda self: self.path / "tensorboard")
    curves = property(lambda self: self.path / "curves.png")

    def exists(self) -> bool:
        lookup(self.path, "run directory")  # a name the system cannot look up is one line, not a traceback
        return self.config_file.is_file()

    def require(self) -> RunDir:
        if not is_dir(self.path, "run directory"):
            raise UserError(f"{self.path}: run directory not found")
        if not self.exists():
            raise UserError(f"{self.path}: not a run directory (no config.toml)")
        return self

    # -- the writer's lock ---------------------------------------------------------------------------------
    def create(self) -> None:
        """Make the directory (and its parents), or say in one line why it cannot be."""
        if lookup(self.path, "run directory") is not None and not self.path.is_dir():
            raise UserError(f"{self.path}: exists and is not a directory; choose another run directory")
        if self.path.is_dir():
            return
        try:
            self.path.mkdir(parents=True)
            self._made = True
        except FileExistsError:
            if self.path.is_dir():  # made by another process just now
                return
            raise UserError(f"{self.path}: exists and is not a directory; choose another run directory") from None
        except OSError as e:
            raise file_error(self.path, e, "create the run directory") from None

    def lock(self) -> str:
        """Hold this run for writing (re-entrant: each call needs an ``unlock``). Creates the directory, then
        removes the temporary files a killed writer left (safe now that no other writer can be mid-save).
        Raises RunLocked naming the holder; returns a note when a dead holder's lock was taken over."""
        if self._lock_depth:
            self._lock_depth += 1
            return ""
        self.create()
        lock = RunLock(self.path)
        try:
            note = lock.acquire()
        except BaseException:
            self._remove_if_unused()
            raise
        self._lock, self._lock_depth = lock, 1
        try:
            self.remove_temp_files()
        except BaseException:
            self.unlock()
            raise
        return note

    def unlock(self) -> None:
        if self._lock_depth == 0:
            return
        self._lock_depth -= 1
        if self._lock_depth == 0 and self._lock is not None:
            self._lock.release()
            self._lock = None
            self._remove_if_unused()

    def _remove_if_unused(self) -> None:
        """A run that failed before writing anything leaves no empty directory behind (only one it created)."""
        if self._made:
            with contextlib.suppress(OSError):
                if {p.name for p in self.path.iterdir()} <= {".lock", ".lock.json"}:
                    for name in (".lock.json", ".lock"):
                        (self.path / name).unlink(missing_ok=True)
                    self.path.rmdir()

    @property
    def locked(self) -> bool:
        """Whether this process holds the run (through this RunDir)."""
        return self._lock_depth > 0

    def remove_temp_files(self) -> list[Path]:
        """Delete what an interrupted atomic write leaves: ``.NAME.XXXX.tmp`` beside checkpoints and run files,
        ``curves.tmp.png`` of a plot cut short, ``metrics.tmp`` of earlier versions."""
        from rnnkit.train.checkpoint import TEMP_GLOB

        removed = []
        for where, pattern in (
            (self.path, TEMP_GLOB),
            (self.checkpoints, TEMP_GLOB),
            (self.path, "*.tmp.png"),
            (self.path, "metrics.tmp"),
        ):
            if not where.is_dir():
                continue
            for p in where.glob(pattern):
                try:
                    p.unlink()
                except OSError as e:
                    raise file_error(p, e, "remove a leftover temporary file") from None
                removed.append(p)
        return removed

    # -- files -----------------------------------------------------------------------------------------------
    def write_config(self, config: RunConfig) -> None:
        self.create()
        write_text_atomic(self.config_file, config.to_toml())

    def read_config(self, overrides: dict[str, Any] | None = None) -> RunConfig:
        return read_config(self.config_file, overrides)

    def write_meta(self, meta: dict[str, Any]) -> None:
        self.create()
        write_text_atomic(self.meta_file, json.dumps(meta, indent=2) + "\n")

    def read_meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_text_atomic(self.summary_file, json.dumps(_clean(summary), indent=2, default=str) + "\n")

    def read_summary(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.summary_file.read_text()))
        except (OSError, ValueError, TypeError):
            return {}

    def append_metrics(self, record: dict[str, Any]) -> None:
        try:
            with open(self.metrics_file, "a") as f:
                f.write(json.dumps(_clean(record)) + "\n")
        except OSError as e:
            raise file_error(self.metrics_file, e) from None

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.is_file():
            return []
        out = []
        for line in self.metrics_file.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        return out

    def truncate_metrics(self, step: int) -> None:
        """Drop records after ``step``: on resume they describe work the checkpoint does not contain."""
        if not self.metrics_file.is_file():
            return
        lines = self.metrics_file.read_text().splitlines()
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        if len(kept) == len(lines):  # nothing to drop: the file stays as it is (a no-op resume writes nothing)
            return
        write_text_atomic(self.metrics_file, "".join(json.dumps(r) + "\n" for r in kept))

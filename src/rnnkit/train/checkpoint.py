"""Checkpoints written atomically and read without executing code.

A crash or kill -9 during a save must never leave a truncated ``last.pt``: we write to a temporary file in the
same directory, fsync it, and rename over the old one (atomic on POSIX). A save that fails (a full disk, a file
system turned read-only) leaves the previous file as it was and says so in one line. Loading uses
``weights_only=True``, so a checkpoint from an untrusted source cannot run code; everything we store is plain data
and tensors. Load errors are our own words: PyTorch's advice to retry with ``weights_only=False`` is exactly what a
user must not do with a file that fails this check, so it is never repeated.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit.errors import UserError, file_error, is_dir, os_reason

FORMAT = "rnnkit-checkpoint/1"
# the parts every checkpoint holds (last.pt and best.pt alike), and what each is
PARTS = {
    "model": dict,  # the state_dict
    "artifacts": dict,  # what inference needs: vocabulary, labels, scalers
    "loop": dict,  # the loop's position and records (step, epoch, best, ...)
    "optimizer": dict,
    "schedule": dict,
    "rng": dict,
    "task_loop": dict,  # state a task carries between batches
}
TEMP_GLOB = ".*.tmp"  # what save_atomic's temporary files look like (left behind only by a kill mid-save)


def _write_failed(e: BaseException) -> bool:
    """Whether an exception from torch.save is the file write failing (and not, say, an unpicklable object)."""
    if isinstance(e, OSError) or os_reason(e):
        return True
    return isinstance(e, RuntimeError) and ("inline_container" in str(e) or "file write failed" in str(e))


def default_mode() -> int:
    """The permissions an ordinary ``open(path, "w")`` would give (0o666 less the umask): mkstemp's 0o600 would
    hide a run's files from the rest of a team sharing the directory."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` atomically; a failed write raises UserError and leaves ``path`` as it was."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, default_mode())
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
        if not _write_failed(e):
            raise
        kept = "the previous checkpoint is kept" if path.is_file() else "nothing was saved"
        if not os_reason(e):  # PyTorch's stream writer reported the failure without the OSError behind it
            raise UserError(f"{path}: cannot write: the write failed ({str(e).splitlines()[0][:80]}); {kept}") from None
        raise UserError(f"{file_error(path, e)}; {kept}") from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """A checkpoint written by ``save_atomic``, or UserError saying in one line why the file is not one."""
    if is_dir(path, "checkpoint"):
        raise UserError(f"{path}: is a directory, not a checkpoint")
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        size = path.stat().st_size
        # torch.save writes a zip archive: anything else (random bytes, a file cut short, a bare pickle) is
        # refused before a byte of it is unpickled
        is_zip = size > 0 and zipfile.is_zipfile(path)
    except OSError as e:
        raise file_error(path, e, "read") from None
    if size == 0:
        raise UserError(f"{path}: empty file (0 bytes), not a loadable rnnkit checkpoint")
    if not is_zip:
        raise UserError(f"{path}: not a loadable rnnkit checkpoint (not a PyTorch checkpoint file, or one cut short)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except OSError as e:
        raise file_error(path, e, "read") from None
    except Exception as e:  # a damaged archive, or one holding objects weights_only refuses
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(e))
        if found:
            raise UserError(
                f"{path}: not a loadable rnnkit checkpoint (it holds a Python object, {found.group(1)}; "
                f"rnnkit loads only tensors and plain data, so that a checkpoint can never run code)"
            ) from None
        raise UserError(f"{path}: not a loadable rnnkit checkpoint (damaged: {type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an rnnkit checkpoint (missing format {FORMAT!r})")
    damaged = [k for k, kind in PARTS.items() if not isinstance(ckpt.get(k), kind)]
    loop = ckpt.get("loop")
    if isinstance(loop, dict):
        damaged += [f"loop.{k}" for k in ("step", "epoch") if type(loop.get(k)) is not int]
    if damaged:
        raise UserError(
            f"{path}: not a complete rnnkit checkpoint (missing or damaged: {', '.join(damaged)}); "
            f"it was changed after rnnkit wrote it"
        )
    return ckpt


def check_task(ckpt: dict[str, Any], task: str, path: Path) -> None:
    """A checkpoint of another task (copied from another run) is refused by name, before anything compares
    vocabularies or shapes that would only describe the symptom."""
    theirs = ckpt.get("task")
    if theirs is not None and theirs != task:
        raise UserError(
            f"{path}: this checkpoint belongs to another task ({theirs!r}, recipe "
            f"{ckpt.get('config', {}).get('recipe', '?')!r}); this run trains task {task!r}"
        )


def load_weights(model: nn.Module, state: dict[str, Any], path: Path, config: Path, hint: str = "") -> None:
    """``model.load_state_dict(state)``, or one line saying that the checkpoint at ``path`` holds a model other than
    the one ``config`` describes (another size, another cell: a config.toml edited, a checkpoint copied over)."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in first[1:] if ln.strip()), first[0] if first else type(e).__name__)
        raise UserError(
            f"{path}: the model in this checkpoint does not match {config} ({detail[:200]}); "
            + (hint or "was config.toml edited, or the checkpoint copied from another run?")
        ) from None

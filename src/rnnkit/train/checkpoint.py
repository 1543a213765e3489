"""Checkpoints written atomically and read without executing code.

A crash or kill -9 during a save must never leave a truncated ``last.pt``: we write to a temporary file in the
same directory, fsync it, and rename over the old one (atomic on POSIX). Loading uses ``weights_only=True``, so
a checkpoint from an untrusted source cannot run code; everything we store is plain data and tensors.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from rnnkit.errors import UserError

FORMAT = "rnnkit-checkpoint/1"


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file, or one holding objects weights_only refuses
        raise UserError(f"{path}: not a loadable rnnkit checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})"
                        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an rnnkit checkpoint (missing format {FORMAT!r})")
    return ckpt

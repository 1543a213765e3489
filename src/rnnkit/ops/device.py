"""Choosing where to run: CUDA when present, CPU otherwise, `--device` to force."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rnnkit.errors import UserError, UserValueError


def pick_device(name: str = "auto") -> torch.device:
    if name in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserValueError("device", f"must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserValueError("device", f"is {name!r}, but no CUDA device is available on this machine (use cpu)")
    return dev


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch tensor on ``device``: on CUDA through pinned memory with a non-blocking copy, so the host
    goes on building and launching work while the batch crosses the bus (PyTorch's pinned-memory allocator keeps
    the staging buffer alive until the copy is done). Elsewhere a plain ``.to``."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


# the messages PyTorch's allocators (and its size arithmetic) raise for a tensor too large to make
_ALLOCATION_ERRORS = (
    "can't allocate memory",
    "out of memory",
    "not enough memory",
    "numel",
    "overflow",
    "Trying to create tensor with negative dimension",
    "must be less than",
    "too large",
)


@contextmanager
def allocation_guard(sizes: str) -> Iterator[None]:
    """Turn a failure to allocate (a model too large for this machine) into a one-line UserError naming
    ``sizes`` (e.g. ``model.hidden=65536, model.layers=4``); any other error passes through unchanged."""
    try:
        yield
    except MemoryError:
        raise UserError(f"out of memory building the model ({sizes}); use smaller sizes") from None
    except (RuntimeError, OverflowError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, OverflowError) or any(m.lower() in first.lower() for m in _ALLOCATION_ERRORS):
            raise UserError(f"cannot allocate the model ({sizes}): {first[:200]}; use smaller sizes") from None
        raise

"""Choosing where to run: CUDA when present, CPU otherwise, `--device` to force."""

from __future__ import annotations

import torch

from rnnkit.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    if name in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available on this machine (use --device cpu)")
    return dev


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch tensor on ``device``: on CUDA through pinned memory with a non-blocking copy, so the host
    goes on building and launching work while the batch crosses the bus (PyTorch's pinned-memory allocator keeps
    the staging buffer alive until the copy is done). Elsewhere a plain ``.to``."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)

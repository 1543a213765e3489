"""Which implementation runs a fused-backend LSTM call: PyTorch's kernel (oneDNN / cuDNN) or the projected
recurrence (``rnnkit.cells.projected``) - chosen per shape by timing both once, like ``cudnn.benchmark``.

Why a measurement and not a rule: which one is faster depends on the machine (bf16 units or not, oneDNN's
version, the GPU) and on the shape (hidden size, batch), and the answer differs between CPUs of the same
family. So the first training-mode call of a given configuration under reduced-precision autocast runs each
implementation a few times (forward and backward on random data of the call's shape, alternating, median
taken) and remembers the winner for that configuration for the rest of the process; later calls only look it
up. The timing draws its random numbers inside ``torch.random.fork_rng`` and takes gradients with
``torch.autograd.grad``, so it changes neither the RNG stream nor any ``.grad``: a run trains exactly as if the
choice had been known beforehand. The choices travel in checkpoints (``Precision.state_dict``), so a resumed
run uses the implementation it was trained with and resumes bit for bit.

Rules before any timing:

- fp32 / fp64 (no autocast): the kernel. In fp32 oneDNN's LSTM was faster than the projected layer at every
  shape measured on an AVX2 CPU (see docs/results.md), and it needs no timing at start.
- bf16 autocast on a CPU where oneDNN has no bf16 LSTM at all (AVX2 only): the projected layer, the only one
  that runs. ``train.precision = "auto"`` never asks for bf16 on such a CPU (bf16 is emulated there, ~80x
  slower than fp32), so this is reached only when bf16 is forced, e.g. to test its numerics.
- otherwise (bf16 on a CPU with AVX512 / AMX, bf16 or fp16 on CUDA): timed, per configuration.

The key of a configuration is (device, compute dtype, grad or not, layers and their sizes, batch): not the
sequence length, so variable-length BPTT (AWD-LSTM) times once, not once per length.

``RNNKIT_RECURRENCE=fused|projected`` (or :func:`set_policy`) forces one implementation wherever it can run;
``auto`` (the default) is the behaviour above.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

POLICIES = ("auto", "fused", "projected")
ENV = "RNNKIT_RECURRENCE"
TIMED_REPS = 3  # timed runs of each implementation, after one untimed warm-up each

_policy: str | None = None  # set_policy(); None: the environment variable, else "auto"
_choices: dict[str, str] = {}  # configuration key -> "fused" | "projected"
_timings: dict[str, dict[str, float]] = {}  # configuration key -> median ms of each, when timed


def policy() -> str:
    name = _policy if _policy is not None else os.environ.get(ENV, "auto") or "auto"
    if name not in POLICIES:
        from rnnkit.errors import UserError

        raise UserError(f"{ENV}: expected one of {', '.join(POLICIES)}, got {name!r}")
    return name


def set_policy(name: str | None) -> None:
    """Force ``fused`` or ``projected`` (or back to ``auto``) for this process; None: follow the environment."""
    global _policy
    if name is not None and name not in POLICIES:
        raise ValueError(f"recurrence policy must be one of {', '.join(POLICIES)}, not {name!r}")
    _policy = name


def choices() -> dict[str, str]:
    """The choices made so far in this process (what a checkpoint records)."""
    return dict(_choices)


def timings() -> dict[str, dict[str, float]]:
    """Median ms per implementation for every timed configuration (for benchmarks and reports)."""
    return {k: dict(v) for k, v in _timings.items()}


def load_choices(saved: dict[str, str]) -> None:
    """Adopt a checkpoint's choices, so a resumed run keeps the implementation it was trained with."""
    for key, impl in saved.items():
        if impl in ("fused", "projected"):
            _choices[key] = impl


def reset() -> None:
    """Forget every choice (tests)."""
    _choices.clear()
    _timings.clear()


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the call's matmuls run in: autocast's where it is on for ``x``'s device, else ``x``'s own."""
    kind = x.device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


def eligible(lstm: nn.LSTM, x: Tensor) -> bool:
    """Whether the projected layer can stand in for this call: unidirectional, no projection, time-major, 3-d."""
    return (
        not lstm.bidirectional
        and not getattr(lstm, "proj_size", 0)
        and not lstm.batch_first
        and isinstance(x, Tensor)
        and x.dim() == 3
    )


def key(lstm: nn.LSTM, x: Tensor, dtype: torch.dtype) -> str:
    sizes = ",".join(
        f"{getattr(lstm, f'weight_ih_l{k}').size(1)}x{getattr(lstm, f'weight_hh_l{k}').size(1)}"
        for k in range(lstm.num_layers)
    )
    mode = "train" if torch.is_grad_enabled() else "infer"
    return f"{x.device.type}/{str(dtype).removeprefix('torch.')}/{mode}/{sizes}/batch{x.size(1)}"


def _oneDNN_has_bf16_lstm() -> bool:  # noqa: N802 - the library's name
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def choose(lstm: nn.LSTM, x: Tensor) -> str:
    """``"fused"`` or ``"projected"`` for the call ``lstm(x)`` (see the module docstring)."""
    name = policy()
    if name != "auto":
        return name
    dtype = compute_dtype(x)
    if dtype not in (torch.bfloat16, torch.float16):
        return "fused"
    k = key(lstm, x, dtype)
    found = _choices.get(k)
    if found is not None:
        return found
    if x.device.type == "cpu" and dtype == torch.bfloat16 and not _oneDNN_has_bf16_lstm():
        _choices[k] = "projected"  # oneDNN cannot run a bf16 LSTM here at all
        return "projected"
    from rnnkit.cells.projected import lstm_stack

    fused = _thunk(lstm, x, lambda xs: nn.LSTM.forward(lstm, xs)[0])
    projected = _thunk(lstm, x, lambda xs: lstm_stack(lstm, xs, None, dtype)[0])
    _choices[k] = _time(k, x, fused, projected)
    return _choices[k]


def _time(k: str, x: Tensor, fused: Callable[[], Any], projected: Callable[[], Any]) -> str:
    """Median time of each thunk over TIMED_REPS alternating runs (after a warm-up run each); the faster wins.
    A kernel that cannot run this configuration at all (oneDNN without a primitive for it) loses."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    devices = [x.device] if x.device.type == "cuda" else []
    runs: dict[str, list[float]] = {"fused": [], "projected": []}
    with torch.random.fork_rng(devices=devices):
        for rep in range(TIMED_REPS + 1):
            for name, fn in (("fused", fused), ("projected", projected)):
                sync()
                t0 = time.perf_counter()
                try:
                    fn()
                except RuntimeError:
                    if name != "fused":
                        raise
                    _timings[k] = {"fused": float("inf")}
                    return "projected"
                sync()
                if rep:  # the first round warms caches and kernels up
                    runs[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) * 1e3 for name, v in runs.items()}
    _timings[k] = med
    return "projected" if med["projected"] < med["fused"] else "fused"


def _thunk(lstm: nn.LSTM, x: Tensor, run: Callable[[Tensor], Tensor]) -> Callable[[], None]:
    """A thunk running ``run`` (one implementation) forward and, when gradients are on, backward, on random data
    shaped like ``x``, without touching any parameter's ``.grad``."""
    params = [p for p in lstm.parameters() if p.requires_grad]
    grad = torch.is_grad_enabled() and bool(params)

    def thunk() -> None:
        xs = torch.randn(x.shape, device=x.device, dtype=x.dtype)
        if not grad:
            run(xs)
            return
        xs.requires_grad_(True)
        out = run(xs)
        torch.autograd.grad(out.float().sum(), [xs, *params], allow_unused=True)

    return thunk

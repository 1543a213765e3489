"""Which implementation runs a fast-backend LSTM call: PyTorch's kernel (oneDNN / cuDNN) or the projected
recurrence (``rnnkit.cells.projected``) - chosen per shape by timing both once, like ``cudnn.benchmark``.

The choice is a configuration value, ``train.recurrence`` (``auto`` | ``kernel`` | ``projected``), resolved once
per run into a :class:`Recurrence` that the task attaches to its model's LSTM modules (:func:`attach`); run.json
records the policy and where it came from. The environment variable ``RNNKIT_RECURRENCE`` still overrides the
configuration (run.json then says so), for benchmarks that force one implementation across every run of a
process. Modules that no run has attached one to (rnnkit.cells used as a library) follow the process default,
:func:`default`: the environment variable, else ``auto``.

Why a measurement and not a rule (``auto``): which one is faster depends on the machine (bf16 units or not,
oneDNN's version, the GPU) and on the shape (hidden size, batch), and the answer differs between CPUs of the same
family. So the first training-mode call of a given configuration under reduced-precision autocast runs each
implementation a few times (forward and backward on random data of the call's shape, alternating, median taken)
and the Recurrence remembers the winner for that configuration; later calls only look it up. The timing draws its
random numbers inside ``torch.random.fork_rng`` and takes gradients with ``torch.autograd.grad``, so it changes
neither the RNG stream nor any ``.grad``: a run trains exactly as if the choice had been known beforehand. The
choices travel in checkpoints (``Precision.state_dict``), so a resumed run uses the implementation it was trained
with and resumes bit for bit.

Rules before any timing:

- fp32 / fp64 (no autocast): the kernel. In fp32 oneDNN's LSTM was faster than the projected layer at every
  shape measured on an AVX2 CPU (see docs/results.md), and it needs no timing at start.
- bf16 autocast on a CPU where oneDNN has no bf16 LSTM at all (AVX2 only): the projected layer, the only one
  that runs. ``train.precision = "auto"`` never asks for bf16 on such a CPU (bf16 is emulated there, ~80x
  slower than fp32), so this is reached only when bf16 is forced, e.g. to test its numerics.
- otherwise (bf16 on a CPU with AVX512 / AMX, bf16 or fp16 on CUDA): timed, per configuration.

The key of a configuration is (device, compute dtype, grad or not, layers and their sizes, batch): not the
sequence length, so variable-length BPTT (AWD-LSTM) times once, not once per length.

``kernel`` or ``projected`` force one implementation wherever it can run (the projected layer runs unidirectional,
unpadded calls; others keep the kernel). ``fused``, the old name of ``kernel``, is accepted for one release.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

POLICIES = {
    "auto": "fp32: the kernel; bf16/fp16: the faster of the two for each shape, timed at its first call",
    "kernel": "PyTorch's LSTM kernel (oneDNN on CPU, cuDNN on CUDA)",
    "projected": "rnnkit's projected recurrence (rnnkit.cells.projected): low-precision GEMMs, fp32 state",
}
RENAMED = {"fused": "kernel"}  # old policy names -> new, accepted for one release
IMPLEMENTATIONS = ("kernel", "projected")
ENV = "RNNKIT_RECURRENCE"
TIMED_REPS = 3  # timed runs of each implementation, after one untimed warm-up each

_timings: dict[str, dict[str, float]] = {}  # every timing made in this process (benchmarks, reports, tests)


def canonical(name: str, where: str) -> str:
    """A policy name checked, an old name replaced by its new one (with a DeprecationWarning)."""
    new = RENAMED.get(name)
    if new is not None:
        warnings.warn(
            f"{where}: {name!r} is now called {new!r} (the old name is accepted until rnnkit 0.3)",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    if name not in POLICIES:
        from rnnkit.errors import UserError

        raise UserError(f"{where}: expected one of {', '.join(POLICIES)}, got {name!r}")
    return name


class Recurrence:
    """One run's policy for the fast LSTM's implementation and the per-shape choices made under it.

    ``policy``: ``auto``, ``kernel`` or ``projected``; ``source``: where it came from (``train.recurrence``, the
    environment variable, or ``default``) - what run.json records. ``choices``: configuration key -> the
    implementation chosen; ``timings``: the medians (ms) behind each timed choice.
    """

    def __init__(self, policy: str = "auto", source: str = "default", configured: str | None = None) -> None:
        self.policy = canonical(policy, source)
        self.source = source
        self.configured = configured  # the configuration's value when the environment overrode it
        self.choices: dict[str, str] = {}
        self.timings: dict[str, dict[str, float]] = {}

    def __repr__(self) -> str:
        return f"Recurrence({self.policy!r}, source={self.source!r}, choices={len(self.choices)})"

    def record(self) -> dict[str, Any]:
        """What run.json says about it: the policy, where it came from, what the configuration said."""
        out: dict[str, Any] = {"policy": self.policy, "from": self.source}
        if self.configured is not None and self.configured != self.policy:
            out["configured"] = self.configured
        return out

    def state_dict(self) -> dict[str, str]:
        return dict(self.choices)

    def load_state_dict(self, saved: dict[str, str]) -> None:
        """Adopt a checkpoint's choices, so a resumed run keeps the implementation it was trained with."""
        for k, impl in saved.items():
            impl = RENAMED.get(impl, impl)  # checkpoints of rnnkit 0.2 say "fused"
            if impl in IMPLEMENTATIONS:
                self.choices[k] = impl

    def choose(self, lstm: nn.LSTM, x: Tensor) -> str:
        """``"kernel"`` or ``"projected"`` for the call ``lstm(x)`` (see the module docstring)."""
        policy = self.policy
        if policy == "kernel":
            return "kernel"
        if policy == "projected":
            return "projected" if eligible(lstm, x) else "kernel"
        dtype = compute_dtype(x)
        if dtype not in (torch.bfloat16, torch.float16) or not eligible(lstm, x):
            return "kernel"
        k = key(lstm, x, dtype)
        found = self.choices.get(k)
        if found is not None:
            return found
        if x.device.type == "cpu" and dtype == torch.bfloat16 and not _oneDNN_has_bf16_lstm():
            self.choices[k] = "projected"  # oneDNN cannot run a bf16 LSTM here at all
            return "projected"
        from rnnkit.cells.projected import lstm_stack

        kernel = _thunk(lstm, x, lambda xs: nn.LSTM.forward(lstm, xs)[0])
        projected = _thunk(lstm, x, lambda xs: lstm_stack(lstm, xs, None, dtype)[0])
        self.choices[k] = _time(k, x, kernel, projected, self.timings)
        return self.choices[k]


def resolve(configured: str = "auto", where: str = "train.recurrence") -> Recurrence:
    """The run's Recurrence: the configured policy, unless ``RNNKIT_RECURRENCE`` overrides it."""
    env = os.environ.get(ENV, "")
    if env:
        return Recurrence(env, ENV, configured=configured)
    return Recurrence(configured, where)


_default: Recurrence | None = None


def default() -> Recurrence:
    """The process default, for modules no run has attached a Recurrence to: ``RNNKIT_RECURRENCE``, else auto."""
    global _default
    if _default is None:
        env = os.environ.get(ENV, "")
        _default = Recurrence(env, ENV) if env else Recurrence()
    return _default


def set_policy(name: str | None) -> None:
    """Make ``name`` the process default's policy (None: follow the environment again); forgets its choices."""
    global _default
    _default = None if name is None else Recurrence(name, "set_policy")


def attach(model: nn.Module, recurrence: Recurrence) -> None:
    """Give every LSTM of ``model`` that chooses its implementation the run's ``recurrence``."""
    for m in model.modules():
        if hasattr(m, "recurrence") and isinstance(m, nn.LSTM):
            m.recurrence = recurrence


def recurrence_of(model: nn.Module) -> Recurrence | None:
    """The Recurrence attached to ``model``'s LSTMs, if any."""
    for m in model.modules():
        found = getattr(m, "recurrence", None)
        if isinstance(found, Recurrence):
            return found
    return None


def timings() -> dict[str, dict[str, float]]:
    """Median ms per implementation for every configuration timed in this process (benchmarks and reports)."""
    return {k: dict(v) for k, v in _timings.items()}


def choices() -> dict[str, str]:
    """The process default's choices (modules used outside a run)."""
    return default().state_dict()


def reset() -> None:
    """Forget the process default's choices and every timing (tests)."""
    global _default
    _default = None
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


def _time(
    k: str,
    x: Tensor,
    kernel: Callable[[], Any],
    projected: Callable[[], Any],
    into: dict[str, dict[str, float]] | None = None,
) -> str:
    """Median time of each thunk over TIMED_REPS alternating runs (after a warm-up run each); the faster wins.
    A kernel that cannot run this configuration at all (oneDNN without a primitive for it) loses."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    devices = [x.device] if x.device.type == "cuda" else []
    runs: dict[str, list[float]] = {"kernel": [], "projected": []}
    med: dict[str, float]
    with torch.random.fork_rng(devices=devices):
        for rep in range(TIMED_REPS + 1):
            for name, fn in (("kernel", kernel), ("projected", projected)):
                sync()
                t0 = time.perf_counter()
                try:
                    fn()
                except RuntimeError:
                    if name != "kernel":
                        raise
                    med = {"kernel": float("inf")}
                    _timings[k] = med
                    if into is not None:
                        into[k] = dict(med)
                    return "projected"
                sync()
                if rep:  # the first round warms caches and kernels up
                    runs[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) * 1e3 for name, v in runs.items()}
    _timings[k] = med
    if into is not None:
        into[k] = dict(med)
    return "projected" if med["projected"] < med["kernel"] else "kernel"


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

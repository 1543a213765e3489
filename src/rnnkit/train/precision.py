"""Mixed precision: autocast forward passes with fp32 master weights, GradScaler for fp16.

Why: an LSTM language model spends nearly all its time in matmuls (the four gates, the hidden x vocabulary
decoder), and bf16/fp16 matmul units run them several times faster than fp32 where the hardware has them
(tensor cores on CUDA, AMX / AVX512-BF16 on recent x86 CPUs). Autocast runs those matmuls - including oneDNN's
LSTM layer on CPU (``mkldnn_rnn_layer``) and cuDNN's on CUDA - in the low precision while the parameters, the
optimiser state and the gradients handed to the optimiser stay fp32. The task computes its log-softmax /
cross-entropy in fp32 (``logits.float()``) and evaluation always runs in fp32, so reported perplexities are
comparable across precisions.

``train.precision``:

* ``fp32``: no autocast (the default; bit-identical to before this option existed).
* ``bf16``: autocast to bfloat16 (CPU with oneDNN bf16 support, or a CUDA GPU that supports it). Same exponent
  range as fp32, so no loss scaling is needed.
* ``fp16``: autocast to float16 on CUDA, with a ``GradScaler`` (its state is checkpointed) so small gradients
  do not underflow.
* ``auto``: a safe choice for the device by rule: bf16 on a GPU that has it, fp16 + scaling on older GPUs,
  bf16 on a CPU with native bf16 dot products (AMX or AVX512-BF16), fp32 on any other CPU - there bf16 is
  emulated (measured ~80x slower than fp32 for a matmul on an AVX2-only EPYC) and oneDNN has no bf16 LSTM. It is
  not timed: at small widths fp32 can be the faster (ptb-small, 2x200, on an AVX512-BF16 EPYC: bf16 at 0.89x fp32,
  benchmarks/results/lm-speed-small-cpu.json).

Under bf16/fp16 the fast backend's LSTM runs as oneDNN's/cuDNN's kernel or as rnnkit's projected recurrence
(``rnnkit.cells.projected``: bf16 GEMMs, fp32 cell state), whichever a short timing at the first step measured
faster for the shape (``train.recurrence = "auto"``, ``rnnkit.cells.select``); the run's choices are part of
:meth:`Precision.state_dict`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from rnnkit import config
from rnnkit.cells import select
from rnnkit.errors import UserError

PRECISIONS = tuple(config.PRECISIONS)  # declared with train.precision, checked when a config loads
# opt-in to bf16 on a CPU that can only emulate it: correct (the LSTM runs as rnnkit.cells.projected) but slow
EMULATED_BF16 = "RNNKIT_EMULATED_BF16"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True when the CPU has bfloat16 dot-product instructions (AMX tiles or AVX512-BF16) for oneDNN to use."""
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # a probe missing from this build must not stop training
            continue
    return False


def cpu_bf16_usable() -> bool:
    """True when oneDNN can run bf16 at all on this CPU (natively or with AVX512 emulation)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def resolve_precision(name: str, device: torch.device) -> tuple[str, str]:
    """Turn ``train.precision`` into fp32 / bf16 / fp16 for ``device``; also say why (for run.json).

    Raises UserError for a choice the device cannot run, rather than letting a kernel fail mid-epoch.
    """
    if name not in PRECISIONS:
        raise UserError(f"train.precision: expected one of {', '.join(PRECISIONS)}, got {name!r}")
    cuda = device.type == "cuda"
    if name == "auto":
        if cuda:
            if torch.cuda.is_bf16_supported():
                return "bf16", "auto: this GPU has bf16 tensor cores"
            return "fp16", "auto: this GPU lacks bf16; fp16 with gradient scaling"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16", "auto: this CPU has native bf16 (AMX / AVX512-BF16) for oneDNN"
        return "fp32", f"auto: no native bf16 on this {device.type} (bf16 would be emulated and slower)"
    if name == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise UserError("train.precision=bf16: this GPU does not support bfloat16; use fp16 or auto")
        if device.type == "cpu" and not cpu_bf16_usable() and os.environ.get(EMULATED_BF16) != "1":
            raise UserError(
                f"train.precision=bf16: this CPU has no bfloat16 support in oneDNN (it needs AVX512 or "
                f"AMX): every bf16 matmul would be emulated, ~80x slower than fp32; use fp32 or auto "
                f"(or set {EMULATED_BF16}=1 to run it anyway, e.g. to check bf16 numerics)"
            )
        if device.type not in ("cpu", "cuda"):
            raise UserError(f"train.precision=bf16: not supported on device {device}")
        return "bf16", "requested"
    if name == "fp16":
        if not cuda:
            raise UserError("train.precision=fp16 needs a CUDA device (on CPU use bf16 where supported, or fp32)")
        return "fp16", "requested"
    return "fp32", "requested"


class Precision:
    """One run's precision policy: the autocast context for forward passes and the (scaled) backward/step.

    The Trainer calls ``autocast()`` around ``task.train_step``, ``backward(loss)``, then ``step()``, which
    unscales fp16 gradients before clipping so ``optim.clip`` keeps its meaning, and skips steps whose gradients
    overflowed (GradScaler). In fp32 every call reduces to the plain ``loss.backward()`` / ``optimizer.step()``.
    """

    def __init__(self, name: str, device: torch.device, recurrence: select.Recurrence | None = None) -> None:
        self.name, self.reason = resolve_precision(name, device)
        # the run's implementation choices for the fast LSTM (the task attached it to the model); None: the
        # process default, for a Precision used without a task
        self.recurrence = recurrence if recurrence is not None else select.default()
        self.device_type = device.type
        self.dtype = DTYPES.get(self.name)
        self.scaler: torch.amp.GradScaler | None = torch.amp.GradScaler(device.type) if self.name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, params: Iterable[Tensor], clip: float) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        folded = False
        if clip > 0:
            if all(group.get("fused") for group in optimizer.param_groups):
                # a fused step divides the gradients by ``grad_scale`` as it applies them (GradScaler's hook):
                # clip_grad_norm_'s coefficient as that divisor saves its separate pass over every gradient
                grads = [p.grad for p in params if p.grad is not None]
                norm = torch.nn.utils.get_total_norm(grads, foreach=True)
                optimizer.grad_scale = ((norm + 1e-6) / clip).clamp(min=1.0).float()  # type: ignore[attr-defined]
                folded = True
            else:
                torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
        if self.scaler is not None:
            self.scaler.step(optimizer)  # skipped when unscale_ found inf/NaN gradients; takes our grad_scale
            self.scaler.update()
        else:
            optimizer.step()
        if folded and hasattr(optimizer, "grad_scale"):
            del optimizer.grad_scale  # type: ignore[attr-defined]

    def state_dict(self) -> dict[str, Any]:
        """The GradScaler's state (fp16), plus under ``"recurrence"`` the LSTM implementations chosen per shape
        (``rnnkit.cells.select``), so that a resumed run keeps them and resumes exactly."""
        state: dict[str, Any] = self.scaler.state_dict() if self.scaler is not None else {}
        chosen = self.recurrence.state_dict()
        if chosen:
            state["recurrence"] = chosen
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.recurrence.load_state_dict(state.pop("recurrence", {}))
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

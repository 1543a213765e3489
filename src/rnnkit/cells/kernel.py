"""The fast backend of the classic cells: PyTorch's recurrent kernels (cuDNN on CUDA, oneDNN on CPU) behind
rnnkit's interface - "the kernel" in rnnkit's vocabulary (``train.recurrence = "kernel"``).

The classes subclass ``nn.LSTM``/``nn.GRU``/``nn.RNN`` rather than wrap them, so parameter names are exactly
PyTorch's (``weight_ih_l0``...) and state dicts interchange with the scratch backend and with plain PyTorch code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import select
from rnnkit.cells.base import RecurrentSpec, State
from rnnkit.cells.projected import lstm_stack


def one_step_ok(module: nn.RNNBase, x: Tensor, lengths: Tensor | None) -> bool:
    """Whether this call is one LSTM inference step on the CPU that :func:`one_step` may run instead of the kernel.

    Why: oneDNN's LSTM primitive re-packs every layer's weights on each call, which a sequence amortises but one
    step does not - one decoding step of a 2x200 LSTM (batch 1-16) took 0.8-1.5 ms in the kernel against 0.2-0.9 ms
    as ``torch.lstm_cell`` per layer, 2x650 12-40 ms against 4-12 ms (``benchmarks/decode_step.py``, AVX2, 1
    thread). Generation, chat and translation decode one token at a time, so every served or CLI decode paid it.
    (PyTorch runs GRU and plain RNN on the CPU with these same cell ops already.) Training (grad on), autocast (the
    precision policy's own choice), packed or bidirectional input and projections keep the kernel.
    """
    return (
        module.mode == "LSTM"
        and lengths is None
        and isinstance(x, Tensor)
        and x.dim() == 3
        and x.size(0) == 1
        and x.device.type == "cpu"
        and not module.training
        and not torch.is_grad_enabled()
        and not module.bidirectional
        and not module.batch_first
        and not module.proj_size
        and not torch.is_autocast_enabled("cpu")
    )


def one_step(module: nn.LSTM, x: Tensor, state: tuple[Tensor, Tensor] | None) -> tuple[Tensor, State]:
    """One time step through every layer with ``torch.lstm_cell``, in the module's own layout: ``x`` (1, batch,
    input) -> output (1, batch, hidden), state (h, c) each (layers, batch, hidden). The same arithmetic as the
    kernel's step, up to float rounding (~1e-7)."""
    if state is None:
        zeros = x.new_zeros(module.num_layers, x.size(1), module.hidden_size)
        state = (zeros, zeros)
    inp = x[0]  # (batch, input)
    hs: list[Tensor] = []
    cs: list[Tensor] = []
    for k in range(module.num_layers):
        w = [getattr(module, f"{n}_l{k}", None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h, c = torch.lstm_cell(inp, (state[0][k], state[1][k]), *w)  # (batch, hidden) each
        hs.append(h)
        cs.append(c)
        inp = h
    return inp.unsqueeze(0), (torch.stack(hs), torch.stack(cs))


def master_state(module: nn.Module, state: State) -> State:
    """The state in the parameters' dtype (fp32 masters), whatever precision the kernel's matmuls ran in.

    Why: under reduced-precision autocast oneDNN's and cuDNN's LSTM (and the plain RNN) hand back ``h`` and ``c``
    in bf16/fp16, while the projected recurrence (``rnnkit.cells.projected``) keeps them fp32. Which of the two runs
    is a per-shape timing (``rnnkit.cells.select``) that differs between CPU kinds, so without this the state a
    language model carries across BPTT windows - and the cell state ``c``, a running sum that bf16's 8-bit mantissa
    erodes window after window - would change dtype and precision with the machine. The contract on every path and
    every CPU: output in the compute dtype, state in the parameters' dtype.
    """
    dtype = next(iter(module.parameters())).dtype
    if isinstance(state, tuple):
        if state[0].dtype == dtype and state[1].dtype == dtype:
            return state
        return state[0].to(dtype), state[1].to(dtype)
    return state if state.dtype == dtype else state.to(dtype)


class _LengthsMixin:
    """Adds ``lengths=`` to a fused module's forward: padded batches are packed, run, and padded again; and runs
    one LSTM inference step on the CPU with the cell ops (:func:`one_step_ok`)."""

    spec: RecurrentSpec

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        # x: (seq, batch, input); lengths: (batch,) valid steps per sequence, or None when all are full
        if one_step_ok(self, x, lengths):  # type: ignore[arg-type]
            return one_step(self, x, state)  # type: ignore[arg-type]
        if lengths is None:
            out, new_state = super().forward(x, state)  # type: ignore[misc]
            return out, master_state(self, new_state)  # type: ignore[arg-type]
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        out, new_state = super().forward(packed, state)  # type: ignore[misc]
        out, _ = pad_packed_sequence(out, total_length=x.size(0))  # (seq, batch, hidden * directions)
        return out, master_state(self, new_state)  # type: ignore[arg-type]


class KernelLSTM(_LengthsMixin, nn.LSTM):
    """``nn.LSTM``; under bf16/fp16 autocast it may run as the projected recurrence instead (same parameters),
    whichever ``rnnkit.cells.select`` measured faster for this shape on this machine. ``recurrence`` is the run's
    policy and choices (``select.attach``); None: the process default."""

    recurrence: select.Recurrence | None = None

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        if lengths is None and (self.recurrence or select.default()).choose(self, x) == "projected":
            return lstm_stack(self, x, state, select.compute_dtype(x))  # type: ignore[arg-type]
        return super().forward(x, state, lengths)


class KernelGRU(_LengthsMixin, nn.GRU):
    pass


class KernelRNN(_LengthsMixin, nn.RNN):
    pass


KERNEL_CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")  # what nn.LSTM / nn.GRU / nn.RNN compute exactly


def build_kernel(spec: RecurrentSpec) -> nn.RNNBase:
    if spec.cell not in KERNEL_CELLS:
        raise ValueError(f"cell {spec.cell!r} has no PyTorch kernel; use backend 'scratch'")
    if not spec.uniform:
        raise ValueError(
            f"one kernel module cannot hold layers of sizes {list(spec.sizes)}: build it with "
            f"make_recurrent (a stack of one-layer modules)"
        )
    kwargs = dict(
        input_size=spec.input_size,
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        bias=spec.bias,
        dropout=spec.dropout if spec.num_layers > 1 else 0.0,
        bidirectional=spec.bidirectional,
    )
    if spec.cell == "lstm":
        module: nn.RNNBase = KernelLSTM(**kwargs)
    elif spec.cell == "gru":
        module = KernelGRU(**kwargs)
    else:
        module = KernelRNN(nonlinearity=spec.cell.split("_")[1], **kwargs)
    module.spec = spec
    if spec.cell == "lstm" and spec.bias and spec.forget_bias:
        with torch.no_grad():
            h = spec.hidden_size
            for name, p in module.named_parameters():
                if name.startswith("bias_ih"):
                    p[h : 2 * h].add_(spec.forget_bias)  # PyTorch's gate order is i, f, g, o
    return module

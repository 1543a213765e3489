"""The fast path: PyTorch's fused recurrent modules (cuDNN on CUDA, oneDNN on CPU) behind rnnkit's interface.

The classes subclass ``nn.LSTM``/``nn.GRU``/``nn.RNN`` rather than wrap them, so parameter names are exactly
PyTorch's (``weight_ih_l0``...) and state dicts interchange with the scratch backend and with plain PyTorch code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import select
from rnnkit.cells.base import FUSED_CELLS, RecurrentSpec, State
from rnnkit.cells.projected import lstm_stack


class _LengthsMixin:
    """Adds ``lengths=`` to a fused module's forward: padded batches are packed, run, and padded again."""

    spec: RecurrentSpec

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        # x: (seq, batch, input); lengths: (batch,) valid steps per sequence, or None when all are full
        if lengths is None:
            return super().forward(x, state)  # type: ignore[misc]
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        out, new_state = super().forward(packed, state)  # type: ignore[misc]
        out, _ = pad_packed_sequence(out, total_length=x.size(0))  # (seq, batch, hidden * directions)
        return out, new_state


class FusedLSTM(_LengthsMixin, nn.LSTM):
    """``nn.LSTM``; under bf16/fp16 autocast it may run as the projected recurrence instead (same parameters),
    whichever ``rnnkit.cells.select`` measured faster for this shape on this machine."""

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        if lengths is None and select.eligible(self, x) and select.choose(self, x) == "projected":
            return lstm_stack(self, x, state, select.compute_dtype(x))  # type: ignore[arg-type]
        return super().forward(x, state, lengths)


class FusedGRU(_LengthsMixin, nn.GRU):
    pass


class FusedRNN(_LengthsMixin, nn.RNN):
    pass


def build_fused(spec: RecurrentSpec) -> nn.RNNBase:
    if spec.cell not in FUSED_CELLS:
        raise ValueError(f"cell {spec.cell!r} has no fused kernel; use backend 'scratch'")
    kwargs = dict(
        input_size=spec.input_size,
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        bias=spec.bias,
        dropout=spec.dropout if spec.num_layers > 1 else 0.0,
        bidirectional=spec.bidirectional,
    )
    if spec.cell == "lstm":
        module: nn.RNNBase = FusedLSTM(**kwargs)
    elif spec.cell == "gru":
        module = FusedGRU(**kwargs)
    else:
        module = FusedRNN(nonlinearity=spec.cell.split("_")[1], **kwargs)
    module.spec = spec
    if spec.cell == "lstm" and spec.bias and spec.forget_bias:
        with torch.no_grad():
            h = spec.hidden_size
            for name, p in module.named_parameters():
                if name.startswith("bias_ih"):
                    p[h : 2 * h].add_(spec.forget_bias)  # PyTorch's gate order is i, f, g, o
    return module

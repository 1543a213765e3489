"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates see only the input, with the forget
and input gates normalised to sum to one, so the recurrence is linear in ``h`` and trains as a scan.

    f_t = sigmoid(W_f x_t + b_f)    i_t = sigmoid(W_i x_t + b_i)    h~_t = g(W_h x_t + b_h)
    f'_t = f_t / (f_t + i_t)         i'_t = i_t / (f_t + i_t)
    h_t = f'_t * h_{t-1} + i'_t * h~_t      output: h_t (or W_o h_t when expand != 1)

``g`` as in :mod:`rnnkit.cells.mingru` (the package's choice in both of its modes). The reference package computes
the normalised gates in log space (``log f' = -softplus(softplus(-f~) - softplus(-i~))``), which is the same
function; rnnkit computes them directly. (The package's parallel mode, given a previous hidden state ``h``, starts
from ``g(h)`` rather than ``h`` - its step mode and the paper start from ``h``; rnnkit follows the paper, and the
reference test compares from a zero state, where both agree.)

Sizes, names and state as minGRU: ``proj`` = the package's ``to_hidden_and_f_i_gate`` (rows: candidate, forget,
input), ``out_proj`` = ``to_out``; state ``h`` (layers * directions, batch, expand * hidden). ``spec.forget_bias``
is added to the forget gate's bias at initialisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.mingru import g, inner_size
from rnnkit.cells.modern import Core, ModernRecurrent, States, compute_dtype, state_at, time_mask
from rnnkit.cells.scan import gated_scan, linear_scan

DOC = "minLSTM (Feng et al. 2024, 'Were RNNs All We Needed?'): an LSTM with input-only, normalised gates"
STATE_NAMES = ("h",)
OPTIONS = {"bidirectional": True, "per_layer_sizes": True, "dropout": True, "forget_bias": True}


class MinLSTMCore(Core):
    state_names = STATE_NAMES

    def __init__(self, spec: RecurrentSpec, input_size: int) -> None:
        super().__init__(spec, input_size)
        self.inner = inner_size(spec, self.hidden_size)
        self.proj = nn.Linear(input_size, 3 * self.inner, bias=spec.bias)  # rows: candidate, forget, input
        self.out_proj = (
            nn.Linear(self.inner, self.hidden_size, bias=spec.bias) if self.inner != self.hidden_size else None
        )
        if spec.bias and spec.forget_bias:
            with torch.no_grad():
                self.proj.bias[self.inner : 2 * self.inner].add_(spec.forget_bias)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.inner,),)

    def _out(self, h: Tensor) -> Tensor:
        return h if self.out_proj is None else self.out_proj(h)

    def step(self, x: Tensor, state: States) -> tuple[Tensor, States]:
        # x: (batch, input); h: (batch, inner)
        (h,) = state
        cand, f, i = self.proj(x).chunk(3, dim=-1)
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        total = f + i
        h = (f / total) * h + (i / total) * g(cand)
        return self._out(h), (h,)

    def sequence(self, x: Tensor, state: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        # x: (seq, batch, input); h0: (batch, inner)
        (h0,) = state
        P = self.proj(x)  # (seq, batch, 3 * inner): candidate, forget, input
        P = P.to(compute_dtype(P))
        H = gated_scan(P, h0.to(P.dtype), lengths)  # the compiled kernel, where it runs
        if H is not None:
            return self._out(H), (state_at(H, h0, lengths),)
        cand, f, i = P.chunk(3, dim=-1)  # (seq, batch, inner) each
        f, i = torch.sigmoid(f), torch.sigmoid(i)
        total = f + i
        a, b = f / total, (i / total) * g(cand)
        mask = time_mask(lengths, x.size(0))
        if mask is not None:  # past a sequence's end: h_t = 1 * h_{t-1} + 0
            a, b = a.masked_fill(~mask, 1.0), b.masked_fill(~mask, 0.0)
        H = linear_scan(a, b, h0.to(P.dtype))  # (seq, batch, inner)
        return self._out(H), (state_at(H, h0, lengths),)


def state_layout(spec: RecurrentSpec, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    rows = spec.num_layers * spec.directions
    return [("h", (rows, batch, inner_size(spec, spec.sizes[0])))]


def build(spec: RecurrentSpec, backend: str = "fast") -> nn.Module:
    return ModernRecurrent(spec, backend, MinLSTMCore)

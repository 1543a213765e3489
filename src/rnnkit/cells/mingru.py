"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gate and candidate see only the input, so the
recurrence is linear in ``h`` and trains as a scan.

    z_t = sigmoid(W_z x_t + b_z)            h~_t = g(W_h x_t + b_h)
    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t   output: h_t (or W_o h_t when expand != 1)

``g(x) = x + 0.5`` for ``x >= 0`` and ``sigmoid(x)`` below: the paper's activation for its log-space form
(appendix B.3), which keeps the states positive; the reference package (mingru-pytorch) uses it in both of its
modes, so rnnkit does too and equals it without any change of parameterisation. rnnkit's scan is not in log space
(a plain product-sum loop, :mod:`rnnkit.cells.scan`), so negative states would be fine; ``g`` is kept for
equality with the published model.

Sizes: a layer maps ``input_size`` -> ``hidden_size``; the recurrence runs at ``expand * hidden_size`` features
(``spec.expand``, default 1) with an output projection back to ``hidden_size`` when ``expand != 1`` (the
package's ``proj_out``). No residual or norm inside the layer (the package's ``minGRU`` module; its ``minLM`` adds
them around it). Parameters: ``proj`` = the package's ``to_hidden_and_gate`` (rows: candidate, then gate),
``out_proj`` = its ``to_out``. State: ``h`` (layers * directions, batch, expand * hidden).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.modern import Core, ModernRecurrent, States, compute_dtype, state_at, time_mask
from rnnkit.cells.scan import gated_scan, linear_scan

DOC = "minGRU (Feng et al. 2024, 'Were RNNs All We Needed?'): a GRU with input-only gates, a linear recurrence"
STATE_NAMES = ("h",)
OPTIONS = {"bidirectional": True, "per_layer_sizes": True, "dropout": True, "forget_bias": False}


def g(x: Tensor) -> Tensor:
    """The positive candidate activation of the log-space minGRU / minLSTM: ``x + 0.5`` for ``x >= 0``, else
    ``sigmoid(x)`` (continuous at 0, derivative 1 above and ``sigmoid'`` below)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def inner_size(spec: RecurrentSpec, hidden: int) -> int:
    return max(1, round((1.0 if spec.expand is None else spec.expand) * hidden))


class MinGRUCore(Core):
    state_names = STATE_NAMES

    def __init__(self, spec: RecurrentSpec, input_size: int) -> None:
        super().__init__(spec, input_size)
        self.inner = inner_size(spec, self.hidden_size)
        self.proj = nn.Linear(input_size, 2 * self.inner, bias=spec.bias)  # rows: candidate, gate
        self.out_proj = (
            nn.Linear(self.inner, self.hidden_size, bias=spec.bias) if self.inner != self.hidden_size else None
        )

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.inner,),)

    def _out(self, h: Tensor) -> Tensor:
        return h if self.out_proj is None else self.out_proj(h)

    def step(self, x: Tensor, state: States) -> tuple[Tensor, States]:
        # x: (batch, input); h: (batch, inner)
        (h,) = state
        cand, gate = self.proj(x).chunk(2, dim=-1)
        z = torch.sigmoid(gate)
        h = (1 - z) * h + z * g(cand)
        return self._out(h), (h,)

    def sequence(self, x: Tensor, state: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        # x: (seq, batch, input); h0: (batch, inner)
        (h0,) = state
        P = self.proj(x)  # (seq, batch, 2 * inner): candidate, gate
        P = P.to(compute_dtype(P))
        H = gated_scan(P, h0.to(P.dtype), lengths)  # the compiled kernel, where it runs
        if H is not None:
            return self._out(H), (state_at(H, h0, lengths),)
        cand, gate = P.chunk(2, dim=-1)  # (seq, batch, inner) each
        z = torch.sigmoid(gate)
        a, b = 1 - z, z * g(cand)
        mask = time_mask(lengths, x.size(0))
        if mask is not None:  # past a sequence's end: h_t = 1 * h_{t-1} + 0
            a, b = a.masked_fill(~mask, 1.0), b.masked_fill(~mask, 0.0)
        H = linear_scan(a, b, h0.to(P.dtype))  # (seq, batch, inner)
        return self._out(H), (state_at(H, h0, lengths),)


def state_layout(spec: RecurrentSpec, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    rows = spec.num_layers * spec.directions
    return [("h", (rows, batch, inner_size(spec, spec.sizes[0])))]


def build(spec: RecurrentSpec, backend: str = "fast") -> nn.Module:
    return ModernRecurrent(spec, backend, MinGRUCore)

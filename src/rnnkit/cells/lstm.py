"""The LSTM cell, with optional peephole connections and a forget-gate bias at init."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.cell import ScratchCell, Weights


class LSTMCell(ScratchCell):
    r"""Long short-term memory cell in PyTorch's layout: gates ``i, f, g, o`` stacked in ``weight_ih``
    ``(4H, I)`` and ``weight_hh`` ``(4H, H)``, so weights copy both ways with ``nn.LSTM``.

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + w_{ci} \odot c_{t-1}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + w_{cf} \odot c_{t-1}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + w_{co} \odot c_t) \\
        h_t &= o_t \odot \tanh(c_t)

    The peephole terms (``w_c*``, diagonal, as in Gers & Schmidhuber 2000) exist only with ``peephole=True``;
    they let the gates see the cell state itself rather than its squashed, output-gated copy ``h``. Note
    ``o_t`` peeks at the *new* ``c_t``. With the peepholes at zero this is exactly ``nn.LSTM``.

    ``forget_bias`` is added to the ``f`` chunk of ``b_ih`` after the uniform init: starting with ``f`` near
    1 lets the cell state (and its gradient, ``dc_{t-1} = f_t dc_t``) carry over many steps from the start
    (Gers et al. 2000; Jozefowicz et al. 2015).
    """

    gates = 4
    has_cell_state = True
    additive_recurrence = True  # gates = addmm(gx, h, W_hh^T)

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, peephole: bool = False, forget_bias: float = 0.0
    ) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.peephole = peephole
        self.forget_bias = forget_bias

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().parameter_shapes()
        if self.peephole:
            for name in ("weight_ci", "weight_cf", "weight_co"):
                shapes[name] = (self.hidden_size,)
        return shapes

    @torch.no_grad()
    def reset_parameters(self, weights: Weights) -> None:
        super().reset_parameters(weights)
        if self.bias and self.forget_bias:
            h = self.hidden_size
            weights["bias_ih"][h : 2 * h].add_(self.forget_bias)  # gate order i, f, g, o

    def forward(self, gx: Tensor, state: tuple[Tensor, Tensor], weights: Weights) -> tuple[Tensor, Tensor]:
        # gx: (batch, 4 * hidden) = W_ih x_t + b_ih + b_hh; state: h_{t-1}, c_{t-1}, each (batch, hidden)
        h, c = state
        gates = torch.addmm(gx, h, weights["weight_hh"].t())  # (batch, 4 * hidden)
        i, f, g, o = gates.chunk(4, dim=1)  # each (batch, hidden)
        if self.peephole:
            i = i + weights["weight_ci"] * c
            f = f + weights["weight_cf"] * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (batch, hidden)
        if self.peephole:
            o = o + weights["weight_co"] * c
        h = torch.sigmoid(o) * torch.tanh(c)  # (batch, hidden)
        return h, c

    def extra_repr(self) -> str:
        extra = ", peephole=True" if self.peephole else ""
        if self.forget_bias:
            extra += f", forget_bias={self.forget_bias}"
        return super().extra_repr() + extra

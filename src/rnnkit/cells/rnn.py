"""The simple (Elman) recurrent cell, the baseline every gated cell is measured against."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.cell import ScratchCell, Weights


class RNNCell(ScratchCell):
    r"""Elman cell with a tanh or ReLU activation, exactly ``nn.RNN``'s step:

    .. math::
        h_t = \mathrm{act}(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Its gradient through time is a product of ``diag(act') W_hh`` per step, which is why it vanishes (tanh,
    small ``W_hh``) or explodes (ReLU, large ``W_hh``) over long spans - see ``rnnkit.diagnose.gradients``.
    """

    gates = 1
    additive_recurrence = True  # act(addmm(gx, h, W_hh^T))
    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._act = torch.tanh if nonlinearity == "tanh" else torch.relu

    def forward(self, gx: Tensor, state: Tensor, weights: Weights) -> Tensor:
        # gx: (batch, hidden) = W_ih x_t + b_ih + b_hh; state: h_{t-1} (batch, hidden)
        return self._act(torch.addmm(gx, state, weights["weight_hh"].t()))  # (batch, hidden)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"

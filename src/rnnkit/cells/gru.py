"""The gated recurrent unit, in PyTorch's exact formulation so weights copy both ways with ``nn.GRU``."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.cells.cell import ScratchCell, Weights


class GRUCell(ScratchCell):
    r"""GRU cell with ``nn.GRU``'s layout (chunks ``r, z, n`` stacked in ``weight_ih`` ``(3H, I)``) and equations:

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    This differs from Cho et al. (2014), who apply the reset gate *before* the matmul (``W_hn (r * h)``);
    PyTorch's (and cuDNN's) variant lets ``W_hn h`` be computed with the other gates in one matmul. Because
    ``b_hn`` sits inside ``r_t * (...)``, ``b_hh`` cannot be folded into the input projection here.
    """

    gates = 3
    has_cell_state = False
    folds_hidden_bias = False

    def forward(self, gx: Tensor, state: Tensor, weights: Weights) -> Tensor:
        # gx: (batch, 3 * hidden) = W_ih x_t + b_ih; state: h_{t-1} (batch, hidden)
        h = state
        gh = torch.nn.functional.linear(h, weights["weight_hh"], weights.get("bias_hh"))  # (batch, 3 * hidden)
        x_r, x_z, x_n = gx.chunk(3, dim=1)  # each (batch, hidden)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return n + z * (h - n)  # = (1 - z) * n + z * h, one op fewer

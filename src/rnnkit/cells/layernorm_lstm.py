"""The layer-normalised LSTM of Ba, Kiros & Hinton (2016), which PyTorch has no fused kernel for."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.cell import Weights
from rnnkit.cells.lstm import LSTMCell


class LayerNormLSTMCell(LSTMCell):
    r"""LSTM with layer normalisation of both gate pre-activations and of the cell state (Ba et al. 2016, eq. 20-22):

    .. math::
        (i_t, f_t, g_t, o_t) &= \mathrm{LN}(W_{ih} x_t; \gamma_{ih}, \beta_{ih})
                               + \mathrm{LN}(W_{hh} h_{t-1}; \gamma_{hh}, \beta_{hh}) + b_{ih} + b_{hh} \\
        c_t &= \sigma(f_t) \odot c_{t-1} + \sigma(i_t) \odot \tanh(g_t) \\
        h_t &= \sigma(o_t) \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))

    Each LN normalises over the whole ``4H`` gate vector (or ``H`` for ``c_t``) of one example at one step, so
    the gate inputs keep the same scale whatever the size of ``W_hh h`` - which steadies training across steps
    and makes the cell invariant to rescaling ``W_ih`` or ``W_hh``. The input and recurrent halves are normalised
    separately so neither can drown the other. The carried state is the un-normalised ``c_t``; LN is applied
    only on its way to ``h_t``.

    ``b_ih``/``b_hh`` are kept (added after the LNs) although ``beta_ih``/``beta_hh`` could absorb them: that
    keeps ``nn.LSTM``'s parameter names and gives ``forget_bias`` its usual home in ``b_ih``. Init: weights and
    biases ``uniform(-1/sqrt(H), 1/sqrt(H))``, then the forget bias, LN gains 1 and LN shifts 0. Peepholes are
    not offered here.
    """

    eps = 1e-5
    additive_recurrence = False  # W_hh h_{t-1} is normalised before it meets gx

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, forget_bias: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, bias=bias, peephole=False, forget_bias=forget_bias)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = super().parameter_shapes()
        gh, h = self.gates * self.hidden_size, self.hidden_size
        for which, size in (("ih", gh), ("hh", gh), ("c", h)):
            shapes[f"ln_{which}_weight"] = (size,)
            if self.bias:
                shapes[f"ln_{which}_bias"] = (size,)
        return shapes

    @torch.no_grad()
    def reset_parameters(self, weights: Weights) -> None:
        super().reset_parameters(weights)
        for name, w in weights.items():
            if name.startswith("ln_"):
                w.fill_(1.0 if name.endswith("_weight") else 0.0)

    def project_input(self, x: Tensor, weights: Weights) -> Tensor:
        # x: (seq, batch, input). LN works row by row, so the input half is normalised for all steps at once.
        gx = F.linear(x, weights["weight_ih"])  # (seq, batch, 4 * hidden)
        gx = F.layer_norm(gx, gx.shape[-1:], weights["ln_ih_weight"], weights.get("ln_ih_bias"), self.eps)
        if self.bias:
            gx = gx + (weights["bias_ih"] + weights["bias_hh"])
        return gx

    def forward(self, gx: Tensor, state: tuple[Tensor, Tensor], weights: Weights) -> tuple[Tensor, Tensor]:
        # gx: (batch, 4 * hidden) = LN(W_ih x_t) + b_ih + b_hh; state: h_{t-1}, c_{t-1}, each (batch, hidden)
        h, c = state
        gh = F.linear(h, weights["weight_hh"])  # (batch, 4 * hidden)
        gh = F.layer_norm(gh, gh.shape[-1:], weights["ln_hh_weight"], weights.get("ln_hh_bias"), self.eps)
        i, f, g, o = (gx + gh).chunk(4, dim=1)  # each (batch, hidden)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # (batch, hidden)
        c_norm = F.layer_norm(c, c.shape[-1:], weights["ln_c_weight"], weights.get("ln_c_bias"), self.eps)
        h = torch.sigmoid(o) * torch.tanh(c_norm)  # (batch, hidden)
        return h, c

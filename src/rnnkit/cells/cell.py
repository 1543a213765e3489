"""What every scratch cell shares: how it declares, initialises and receives its weights.

A scratch cell owns no parameters. ``ScratchRecurrent`` registers them on itself under ``nn.LSTM``'s names
(``weight_ih_l0``, ``bias_hh_l1_reverse``...) so state dicts interchange with the fused backend, and hands each
cell a plain ``{"weight_ih": ..., "bias_hh": ...}`` dict of the tensors for its layer and direction. The cell
describes which tensors it needs (:meth:`ScratchCell.parameter_shapes`) and how to initialise them
(:meth:`ScratchCell.reset_parameters`).

A step is split in two because the input half of every gate does not depend on the recurrence:
:meth:`ScratchCell.project_input` computes ``x_t W_ih^T + b`` for all time steps in one matmul, and
``forward`` does only the ``h W_hh^T`` part, one step at a time.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State

# Tensors for one layer and direction, keyed by their name without the ``_l{k}[_reverse]`` suffix.
Weights = dict[str, Tensor]


class ScratchCell(nn.Module):
    """Base class: a recurrent cell written from its equations, one time step per call.

    Subclasses set ``gates`` (gate chunks stacked in ``weight_ih``, PyTorch's order) and ``has_cell_state``,
    and implement :meth:`forward`; most also extend :meth:`parameter_shapes` and :meth:`project_input`.
    """

    gates: int = 1
    has_cell_state: bool = False
    # Whether b_hh can be added once up front (true unless it sits inside a nonlinearity, as in the GRU's n gate).
    folds_hidden_bias: bool = True
    # Whether ``h W_hh^T`` is only ever added to ``gx`` (``addmm(gx, h, W_hh^T)``), so the gradient of ``gx`` is
    # that of the projection and the layer can compute W_hh's gradient for all steps in one matmul.
    additive_recurrence: bool = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the tensors this cell needs; the first four are ``nn.LSTM``'s."""
        gh = self.gates * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (gh, self.input_size),
            "weight_hh": (gh, self.hidden_size),
        }
        if self.bias:
            shapes["bias_ih"] = (gh,)
            shapes["bias_hh"] = (gh,)
        return shapes

    @torch.no_grad()
    def reset_parameters(self, weights: Weights) -> None:
        """PyTorch's RNN init: every tensor ``uniform(-1/sqrt(H), 1/sqrt(H))``; subclasses adjust afterwards."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for w in weights.values():
            w.uniform_(-bound, bound)

    def project_input(self, x: Tensor, weights: Weights) -> Tensor:
        """The input half of every gate for all steps at once: ``x W_ih^T + b_ih`` (and ``+ b_hh`` where a cell
        can fold it in), so the per-step loop is left with ``h W_hh^T`` only."""
        # x: (seq, batch, input) -> (seq, batch, gates * hidden)
        bias = weights.get("bias_ih")
        if bias is not None and self.folds_hidden_bias:
            bias = bias + weights["bias_hh"]
        return torch.nn.functional.linear(x, weights["weight_ih"], bias)

    def forward(self, gx: Tensor, state: State, weights: Weights) -> State:  # pragma: no cover - abstract
        """One step. ``gx``: this step's slice of :meth:`project_input`, ``(batch, gates * hidden)``;
        ``state``: ``h`` or ``(h, c)``, each ``(batch, hidden)``. Returns the new state, same structure."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

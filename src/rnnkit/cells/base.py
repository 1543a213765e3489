"""The shared description of a recurrent stack, and the state type both backends return."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

# An LSTM's state is (h, c); the other cells carry h alone. Each tensor is (layers * directions, batch, hidden).
State = Tensor | tuple[Tensor, Tensor]

# cell name -> (gates per step, carries a cell state c)
CELL_TYPES: dict[str, tuple[int, bool]] = {
    "rnn_tanh": (1, False),
    "rnn_relu": (1, False),
    "lstm": (4, True),
    "peephole_lstm": (4, True),
    "layernorm_lstm": (4, True),
    "gru": (3, False),
}

# Cells that nn.LSTM / nn.GRU / nn.RNN implement exactly, so the fused backend can run them.
FUSED_CELLS = {"rnn_tanh", "rnn_relu", "lstm", "gru"}


@dataclass(frozen=True)
class RecurrentSpec:
    """Everything needed to build a recurrent stack, independent of backend."""

    cell: str  # one of CELL_TYPES
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between layers, as in nn.LSTM
    bias: bool = True
    forget_bias: float = 0.0  # added to the forget-gate bias at init (LSTM family); 1.0 is the usual advice

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def has_cell_state(self) -> bool:
        return CELL_TYPES[self.cell][1]

    @property
    def gates(self) -> int:
        return CELL_TYPES[self.cell][0]

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.directions

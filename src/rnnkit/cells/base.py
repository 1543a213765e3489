"""The shared description of a recurrent stack, and the state type every backend returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from torch import Tensor

# A cell's state is one tensor (the GRU's h) or a tuple of them in the order its registry entry declares (the
# LSTM's (h, c); rnnkit.cells.registry), each (layers * directions, batch, ...). A stack whose layers differ in size
# (``rnnkit.cells.stack.LayerStack``) returns one such state per layer instead, a tuple of ``num_layers`` states
# each (directions, batch, ...) for the size of that layer: the sizes cannot be stacked.
State = Tensor | tuple[Tensor, ...]


@dataclass(frozen=True)
class RecurrentSpec:
    """Everything needed to build a recurrent stack, independent of backend.

    ``hidden_size`` is one size for every layer, or a sequence with one size per layer (``(256, 128)``). A sequence
    of equal sizes is stored as the int, so ``(200, 200)`` and ``200`` are the same spec and build the same module
    (one fused ``nn.LSTM``, the same checkpoints); only sizes that really differ make a per-layer stack.
    """

    cell: str  # a name in rnnkit.cells.registry
    input_size: int
    hidden_size: int | tuple[int, ...]  # per direction; a tuple: one per layer, never all equal (see above)
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between layers, as in nn.LSTM
    bias: bool = True
    forget_bias: float = 0.0  # added to the forget-gate bias at init (LSTM family); 1.0 is the usual advice
    # -- the modern cells' own hyperparameters (docs/recurrences.md); other cells ignore them ----------------------
    heads: int = 4  # sLSTM / mLSTM: heads (divide the hidden size / the inner width)
    expand: float | None = None  # inner width / hidden_size: minGRU, minLSTM 1; mLSTM 2; Mamba 2 (None: the default)
    state_size: int = 16  # Mamba: N, the SSM state per channel
    conv_size: int = 4  # Mamba, mLSTM, sLSTM: width of the causal depthwise convolution (0: none; Mamba needs >= 1)
    dt_rank: int | None = None  # Mamba: rank of the step-size projection (None: ceil(hidden_size / 16))

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        h = self.hidden_size
        if isinstance(h, Sequence) and not isinstance(h, str):
            sizes = tuple(int(v) for v in h)
            if len(sizes) != self.num_layers:
                raise ValueError(
                    f"hidden sizes {list(sizes)} give {len(sizes)} layers, but num_layers is "
                    f"{self.num_layers}: give one size per layer"
                )
            h = sizes[0] if len(set(sizes)) == 1 else sizes
        if min(h if isinstance(h, tuple) else (h,)) < 1:
            raise ValueError(f"hidden sizes must be >= 1, got {h}")
        object.__setattr__(self, "hidden_size", h)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The hidden size of each layer (per direction)."""
        h = self.hidden_size
        return h if isinstance(h, tuple) else (h,) * self.num_layers

    @property
    def uniform(self) -> bool:
        """Whether every layer has the same size, so the stack is one module with stacked states."""
        return not isinstance(self.hidden_size, tuple)

    def layer(self, k: int) -> RecurrentSpec:
        """The one-layer spec of layer ``k``: its own size, fed the previous layer's output (both directions)."""
        input_size = self.input_size if k == 0 else self.sizes[k - 1] * self.directions
        return replace(self, input_size=input_size, hidden_size=self.sizes[k], num_layers=1, dropout=0.0)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of the stack's output: the last layer's size times the directions."""
        return self.sizes[-1] * self.directions


def reverse_time(seq: Tensor, rev_index: Tensor | None) -> Tensor:
    """Reverse time; with ``rev_index`` each sequence only within its own length (padding stays put): the backward
    direction of every bidirectional stack, classic or modern."""
    # seq: (seq, batch, features); rev_index: (seq, batch) or None
    if rev_index is None:
        return seq.flip(0)
    return seq.gather(0, rev_index.unsqueeze(-1).expand_as(seq))

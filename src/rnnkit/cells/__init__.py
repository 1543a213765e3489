"""Recurrent cells written from their equations, and the layers that unroll them.

Two backends share one interface so that model code never cares which one runs:

* ``fused``: PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (cuDNN on CUDA, oneDNN on CPU) - the fast path.
* ``scratch``: the cells in this package, one time step at a time - readable, and the only home of cells
  PyTorch lacks (peephole LSTM, layer-normalised LSTM).

Both backends name their parameters like ``nn.LSTM`` (``weight_ih_l0``, ``bias_hh_l1_reverse``...), so a
state dict saved from one loads into the other. Layers of different sizes (``hidden = [256, 128]``) are a
:class:`~rnnkit.cells.stack.LayerStack` of one-layer modules of either backend (``1.weight_ih_l0``...).
"""

from rnnkit.cells.base import CELL_TYPES, RecurrentSpec, State
from rnnkit.cells.factory import make_recurrent
from rnnkit.cells.stack import LayerStack

__all__ = ["CELL_TYPES", "LayerStack", "RecurrentSpec", "State", "make_recurrent"]

"""Recurrent cells written from their equations, their fast implementations, and the layers that unroll them.

Every cell is declared once in ``rnnkit.cells.registry`` (its equations' reference implementation, its fast
implementation, its state layout, the options it supports, its paper); :func:`make_recurrent` builds any of them
with either backend, and one interface serves both, so model code never cares which one runs:

* ``fast``: the cell's fastest implementation - for the classic cells PyTorch's ``nn.LSTM``/``nn.GRU``/``nn.RNN``
  kernels (cuDNN on CUDA, oneDNN on CPU; ``rnnkit.cells.kernel``), and for the LSTM under bf16 also rnnkit's
  projected recurrence (``rnnkit.cells.projected``, chosen per shape: ``rnnkit.cells.select``).
* ``scratch``: the cell's equations, one time step at a time - readable, the reference the fast implementation
  is tested against, and the only home of cells PyTorch lacks (peephole LSTM, layer-normalised LSTM).

The classic cells' parameters are named like ``nn.LSTM``'s (``weight_ih_l0``, ``bias_hh_l1_reverse``...) in both
backends, so a state dict saved from one loads into the other. Layers of different sizes (``hidden = [256, 128]``)
are a :class:`~rnnkit.cells.stack.LayerStack` of one-layer modules of either backend (``1.weight_ih_l0``...).
"""

from rnnkit.cells import registry
from rnnkit.cells.base import RecurrentSpec, State
from rnnkit.cells.factory import make_recurrent
from rnnkit.cells.stack import LayerStack

__all__ = ["LayerStack", "RecurrentSpec", "State", "make_recurrent", "registry"]

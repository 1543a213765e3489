"""One constructor for both backends."""

from __future__ import annotations

from torch import nn

from rnnkit.cells.base import CELL_TYPES, FUSED_CELLS, RecurrentSpec

BACKENDS = ("fused", "scratch")


def make_recurrent(spec: RecurrentSpec, backend: str = "fused") -> nn.Module:
    """Build a recurrent stack: ``module(x, state=None, lengths=None) -> (output, state)``.

    ``x`` is ``(seq, batch, input)``; ``output`` is ``(seq, batch, hidden * directions)`` with zeros past each
    sequence's length; ``state`` is ``(layers * directions, batch, hidden)`` (a pair ``(h, c)`` for LSTMs),
    taken at each sequence's last valid step.

    Layers of different sizes (``spec.hidden_size`` a tuple) make a :class:`~rnnkit.cells.stack.LayerStack` of
    one-layer modules of ``backend`` instead, whose state is a tuple of one such state per layer.
    """
    if spec.cell not in CELL_TYPES:
        raise ValueError(f"unknown cell {spec.cell!r}; choose one of {', '.join(CELL_TYPES)}")
    if backend in BACKENDS and not spec.uniform:
        from rnnkit.cells.stack import LayerStack

        return LayerStack(spec, backend)
    if backend == "fused":
        from rnnkit.cells.fused import build_fused

        return build_fused(spec)
    if backend == "scratch":
        from rnnkit.cells.layer import ScratchRecurrent

        return ScratchRecurrent(spec)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def fused_supported(cell: str) -> bool:
    return cell in FUSED_CELLS

"""One constructor for every cell and backend, driven by the registry (``rnnkit.cells.registry``)."""

from __future__ import annotations

from torch import nn

from rnnkit.cells import registry
from rnnkit.cells.base import RecurrentSpec

BACKENDS = tuple(registry.BACKENDS)


def make_recurrent(spec: RecurrentSpec, backend: str = "fast") -> nn.Module:
    """Build a recurrent stack: ``module(x, state=None, lengths=None) -> (output, state)``.

    ``x`` is ``(seq, batch, input)``; ``output`` is ``(seq, batch, hidden * directions)`` with zeros past each
    sequence's length; ``state`` is the cell's state (its registry entry names the tensors: ``(h, c)`` for an
    LSTM, ``h`` for a GRU), each tensor ``(layers * directions, batch, ...)``, taken at each sequence's last valid
    step and accepted back to continue.

    ``backend``: ``"fast"`` (the cell's fastest implementation) or ``"scratch"`` (its equations, one step at a
    time); ``"fused"``, the old name of ``"fast"``, still works for one release. Layers of different sizes
    (``spec.hidden_size`` a tuple) make a :class:`~rnnkit.cells.stack.LayerStack` of one-layer modules of
    ``backend`` instead, whose state is a tuple of one state per layer.
    """
    cell = registry.get(spec.cell)
    backend = registry.canonical_backend(backend)
    build = cell.builder(backend)  # refuses an unknown backend, or one the cell lacks
    check_options(spec)
    if not spec.uniform:
        from rnnkit.cells.stack import LayerStack

        return LayerStack(spec, backend)
    return build(spec)


def check_options(spec: RecurrentSpec) -> None:
    """ValueError naming the option when ``spec`` asks ``spec.cell`` for one it does not support.

    A forget-gate bias is not checked here: models pass their task's default (1.0 for forecasting) to every cell,
    and a cell without a forget gate has nothing to add it to; a configuration that *sets* one for such a cell is
    refused when it loads (``rnnkit.tasks.fields.check_recurrent``)."""
    cell = registry.get(spec.cell)
    asked = {"bidirectional": spec.bidirectional, "layer_sizes": not spec.uniform}
    for option, wanted in asked.items():
        if wanted and not cell.supports(option):
            key, what = registry.options()[option]
            others = ", ".join(registry.supporting(option)) or "none"
            raise ValueError(f"cell {cell.name!r} does not support {what} ({key}); cells that do: {others}")

"""Recurrent layers of different sizes (``hidden = [256, 128]``): one single-layer module per layer.

PyTorch's fused modules (``nn.LSTM``...) hold one size for every layer, so a stack whose sizes differ is a list of
one-layer modules of either backend - fused (cuDNN / oneDNN, and the projected bf16 recurrence chosen per layer
shape by ``rnnkit.cells.select``) or scratch (``rnnkit.cells.layer.ScratchRecurrent``). Stacks of equal sizes stay
one module (``make_recurrent`` decides), so their checkpoints, speed and exports do not change.

Names: :class:`LayerStack` is an ``nn.ModuleList``, so layer ``k``'s tensors are those of a one-layer ``nn.LSTM``
under the prefix ``k.``: ``rnn.1.weight_ih_l0`` is what a single module of equal sizes calls
``rnn.weight_ih_l1`` (``rnn.1.bias_hh_l0_reverse`` <-> ``rnn.bias_hh_l1_reverse``). Both backends use these
names, so a stack's state dict moves between fused and scratch unchanged; :func:`stacked_name` is the mapping.
AWD-LSTM's layer list (``rnns.0.weight_ih_l0``...) is a LayerStack too.

State: a tuple with one state per layer, each ``(directions, batch, size of that layer)`` (a pair ``(h, c)`` for
LSTMs) - sizes cannot be stacked into one tensor. The helpers below treat both layouts alike, so model code asks
for "the last layer's h" or "layer k's state" without knowing which one it holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentSpec, State
from rnnkit.cells.dropout import dropout

_FLAT = re.compile(r"(?P<name>\w+?)_l(?P<layer>\d+)(?P<rev>_reverse)?")


class LayerStack(nn.ModuleList):
    """``num_layers`` one-layer recurrent modules run in turn: ``forward(x, state, lengths) -> (output, state)``.

    ``x``: (seq, batch, input); ``state``: None or a tuple of one state per layer (see the module docstring);
    ``lengths``: (batch,) or None, handed to every layer. Dropout (``spec.dropout``) is applied between layers in
    training, never after the last, as in ``nn.LSTM``. Output: (seq, batch, last size * directions).
    """

    def __init__(self, spec: RecurrentSpec, backend: str = "fused") -> None:
        from rnnkit.cells.factory import make_recurrent

        if not 0.0 <= spec.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {spec.dropout}")
        super().__init__(make_recurrent(spec.layer(k), backend) for k in range(spec.num_layers))
        self.spec = spec
        self.dropout = spec.dropout
        self.input_size = spec.input_size
        self.num_layers = spec.num_layers
        self.bidirectional = spec.bidirectional

    def forward(
        self, x: Tensor, state: Sequence[State] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, tuple[State, ...]]:
        # x: (seq, batch, input); state[k]: (directions, batch, sizes[k]) or a pair of them
        if state is not None and not self._per_layer(state):
            raise ValueError(
                f"a stack of {len(self)} layers of sizes {list(self.spec.sizes)} takes a tuple of one "
                f"state per layer, got {_describe(state)}"
            )
        new: list[State] = []
        for k, layer in enumerate(self):
            if k > 0 and self.dropout > 0.0 and self.training:
                x = dropout(x, self.dropout)
            x, s = layer(x, None if state is None else state[k], lengths)  # x: (seq, batch, sizes[k] * dirs)
            new.append(s)
        return x, tuple(new)

    def _per_layer(self, state: Any) -> bool:
        if not isinstance(state, (tuple, list)) or len(state) != len(self):
            return False
        if self.spec.has_cell_state:
            return all(isinstance(s, tuple) and len(s) == 2 for s in state)
        return all(isinstance(s, Tensor) for s in state)

    def flatten_parameters(self) -> None:
        for layer in self:
            if hasattr(layer, "flatten_parameters"):
                layer.flatten_parameters()

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"{s.cell}, {s.input_size}, sizes={list(s.sizes)}"
            + (", bidirectional=True" if s.bidirectional else "")
            + (f", dropout={s.dropout}" if s.dropout else "")
        )


def _describe(state: Any) -> str:
    if isinstance(state, Tensor):
        return f"a tensor of shape {tuple(state.shape)}"
    if isinstance(state, (tuple, list)):
        return f"a {type(state).__name__} of {len(state)}"
    return type(state).__name__


def stacked_name(flat: str) -> str:
    """A parameter name of a single multi-layer module -> the same tensor's name in a :class:`LayerStack`:
    ``weight_ih_l1`` -> ``1.weight_ih_l0``, ``bias_hh_l2_reverse`` -> ``2.bias_hh_l0_reverse`` (a prefix such as
    ``rnn.`` is kept). Peephole and layer-norm tensors follow the same scheme."""
    prefix, _, leaf = flat.rpartition(".")
    m = _FLAT.fullmatch(leaf)
    if m is None:
        raise ValueError(f"{flat!r} is not a per-layer recurrent parameter name (like weight_ih_l0)")
    return f"{prefix + '.' if prefix else ''}{m['layer']}.{m['name']}_l0{m['rev'] or ''}"


# -- states of either layout ---------------------------------------------------------------------------------------
def map_state(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """``fn`` applied to every tensor of a state (a tensor, a pair, or per-layer states), the structure kept."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    return tuple(map_state(fn, s) for s in state)


def join_states(fn: Callable[[list[Tensor]], Tensor], states: Sequence[Any]) -> Any:
    """States of one structure combined tensor by tensor (``fn`` gets the matching tensors): e.g. ``torch.cat``
    along the batch to decode several requests together."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(list(states))
    return tuple(join_states(fn, [s[i] for s in states]) for i in range(len(first)))


def per_layer(rnn: nn.Module) -> bool:
    """Whether ``rnn`` (a module from ``make_recurrent``, or a LayerStack) keeps one state per layer."""
    return isinstance(rnn, LayerStack)


def layer_states(rnn: nn.Module, state: Any) -> list[State]:
    """The state of each layer of ``rnn``, ``(directions, batch, size)`` (pairs for LSTMs), from either layout."""
    if per_layer(rnn):
        return list(state)
    d, layers = rnn.spec.directions, rnn.spec.num_layers
    if isinstance(state, tuple):
        h, c = state
        return [(h[k * d : (k + 1) * d], c[k * d : (k + 1) * d]) for k in range(layers)]
    return [state[k * d : (k + 1) * d] for k in range(layers)]


def from_layer_states(rnn: nn.Module, states: Sequence[State]) -> Any:
    """The inverse of :func:`layer_states`: per-layer states in the layout ``rnn`` takes."""
    if per_layer(rnn):
        return tuple(states)
    if isinstance(states[0], tuple):
        return torch.cat([s[0] for s in states]), torch.cat([s[1] for s in states])  # type: ignore[index]
    return torch.cat(list(states))  # type: ignore[arg-type]


def last_hidden(rnn: nn.Module, state: Any) -> Tensor:
    """The last layer's final ``h``: (directions, batch, last size)."""
    top = layer_states(rnn, state)[-1]
    return top[0] if isinstance(top, tuple) else top


def flat_state(state: Any) -> tuple[Tensor, ...]:
    """Every tensor of a state in order (``h``, ``c`` of each layer in turn): for graphs that take plain tensors."""
    if isinstance(state, Tensor):
        return (state,)
    return tuple(t for s in state for t in flat_state(s))


def state_shapes(rnn: nn.Module, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    """Name and shape of each tensor of ``rnn``'s state in :func:`flat_state`'s order: ``h`` and ``c``
    ``(layers * directions, batch, hidden)`` for one module, ``h_l0, c_l0, h_l1, ...`` (each
    ``(directions, batch, size)``) for a LayerStack - the inputs and outputs of an exported graph."""
    spec: RecurrentSpec = rnn.spec
    parts = ("h", "c") if spec.has_cell_state else ("h",)
    if not per_layer(rnn):
        return [(p, (spec.num_layers * spec.directions, batch, spec.sizes[0])) for p in parts]
    return [(f"{p}_l{k}", (spec.directions, batch, size)) for k, size in enumerate(spec.sizes) for p in parts]


def unflatten_state(rnn: nn.Module, tensors: Sequence[Tensor]) -> Any:
    """The inverse of :func:`flat_state` for ``rnn``'s layout."""
    n = 2 if rnn.spec.has_cell_state else 1

    def one(ts: Sequence[Tensor]) -> State:
        return (ts[0], ts[1]) if n == 2 else ts[0]

    if not per_layer(rnn):
        return one(tensors)
    return tuple(one(tensors[i : i + n]) for i in range(0, len(tensors), n))

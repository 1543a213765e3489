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
        if state is not None and (not isinstance(state, (tuple, list)) or len(state) != len(self)):
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


def layer_states(spec: RecurrentSpec, state: Any) -> list[State]:
    """The state of each layer, ``(directions, batch, size)`` (pairs for LSTMs), from either layout."""
    if not spec.uniform:
        return list(state)
    d = spec.directions
    if isinstance(state, tuple):
        h, c = state
        return [(h[k * d : (k + 1) * d], c[k * d : (k + 1) * d]) for k in range(spec.num_layers)]
    return [state[k * d : (k + 1) * d] for k in range(spec.num_layers)]


def from_layer_states(spec: RecurrentSpec, states: Sequence[State]) -> Any:
    """The inverse of :func:`layer_states`: per-layer states in the layout ``spec``'s module takes."""
    if not spec.uniform:
        return tuple(states)
    if isinstance(states[0], tuple):
        return torch.cat([s[0] for s in states]), torch.cat([s[1] for s in states])  # type: ignore[index]
    return torch.cat(list(states))  # type: ignore[arg-type]


def last_hidden(spec: RecurrentSpec, state: Any) -> Tensor:
    """The last layer's final ``h``: (directions, batch, last size)."""
    top = layer_states(spec, state)[-1]
    return top[0] if isinstance(top, tuple) else top


def zero_state(spec: RecurrentSpec, batch: int, **like: Any) -> Any:
    """An all-zero state for ``batch`` sequences in the layout ``spec``'s module takes (``like``: dtype, device)."""
    parts = 2 if spec.has_cell_state else 1

    def one(size: int, layers: int) -> State:
        t = [torch.zeros(layers * spec.directions, batch, size, **like) for _ in range(parts)]
        return (t[0], t[1]) if parts == 2 else t[0]

    if spec.uniform:
        return one(spec.sizes[0], spec.num_layers)
    return tuple(one(size, 1) for size in spec.sizes)

"""Recurrent layers of different sizes (``hidden = [256, 128]``): one single-layer module per layer.

PyTorch's recurrent modules (``nn.LSTM``...) hold one size for every layer, so a stack whose sizes differ is a list
of one-layer modules of either backend - fast (for the LSTM: the kernel of cuDNN / oneDNN, or the projected bf16
recurrence chosen per layer shape by ``rnnkit.cells.select``) or scratch (the cell's equations). Stacks of equal
sizes stay one module (``make_recurrent`` decides), so their checkpoints, speed and exports do not change.

Names: :class:`LayerStack` is an ``nn.ModuleList``, so layer ``k``'s tensors are those of a one-layer ``nn.LSTM``
under the prefix ``k.``: ``rnn.1.weight_ih_l0`` is what a single module of equal sizes calls
``rnn.weight_ih_l1`` (``rnn.1.bias_hh_l0_reverse`` <-> ``rnn.bias_hh_l1_reverse``). Both backends use these
names, so a stack's state dict moves between fast and scratch unchanged; :func:`stacked_name` is the mapping.
AWD-LSTM's layer list (``rnns.0.weight_ih_l0``...) is a LayerStack too.

State: a tuple with one state per layer, each the cell's own state for one layer (``(h, c)`` for LSTMs, each
``(directions, batch, size of that layer)``) - sizes cannot be stacked into one tensor. The helpers below treat
both layouts alike and know every cell's state from its registry entry (``rnnkit.cells.registry``: the names and
shapes of its tensors), so model, decoding and export code asks for "layer k's state", "the last layer's output"
or "the state as a flat list of named tensors" without knowing which cell or layout it holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells import registry
from rnnkit.cells.base import RecurrentSpec, State
from rnnkit.cells.dropout import dropout

_FLAT = re.compile(r"(?P<name>\w+?)_l(?P<layer>\d+)(?P<rev>_reverse)?")


class LayerStack(nn.ModuleList):
    """``num_layers`` one-layer recurrent modules run in turn: ``forward(x, state, lengths) -> (output, state)``.

    ``x``: (seq, batch, input); ``state``: None or a tuple of one state per layer (see the module docstring);
    ``lengths``: (batch,) or None, handed to every layer. Dropout (``spec.dropout``) is applied between layers in
    training, never after the last, as in ``nn.LSTM``. Output: (seq, batch, last size * directions).
    """

    def __init__(self, spec: RecurrentSpec, backend: str = "fast") -> None:
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
        n = len(registry.get(self.spec.cell).layout(self.spec))
        if n > 1:
            return all(isinstance(s, (tuple, list)) and len(s) == n for s in state)
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


def _arity(rnn: nn.Module) -> int:
    """How many tensors one layer's state of ``rnn`` holds (1: a bare tensor)."""
    return len(registry.get(rnn.spec.cell).layout(rnn.spec))


def layer_states(rnn: nn.Module, state: Any) -> list[State]:
    """The state of each layer of ``rnn`` in the cell's own structure (a tensor, or a tuple of its tensors), each
    tensor ``(directions, batch, ...)``, from either layout."""
    if per_layer(rnn):
        return list(state)
    d, layers = rnn.spec.directions, rnn.spec.num_layers
    if _arity(rnn) > 1:
        return [tuple(t[k * d : (k + 1) * d] for t in state) for k in range(layers)]
    return [state[k * d : (k + 1) * d] for k in range(layers)]


def from_layer_states(rnn: nn.Module, states: Sequence[State]) -> Any:
    """The inverse of :func:`layer_states`: per-layer states in the layout ``rnn`` takes."""
    if per_layer(rnn):
        return tuple(states)
    if _arity(rnn) > 1:
        return tuple(torch.cat([s[i] for s in states]) for i in range(_arity(rnn)))  # type: ignore[index]
    return torch.cat(list(states))  # type: ignore[arg-type]


def state_tensor(rnn: nn.Module, state: State, name: str) -> Tensor:
    """The tensor called ``name`` (see the cell's registry entry) of one layer's or one module's state."""
    names = registry.get(rnn.spec.cell).state_names(rnn.spec)
    if name not in names:
        raise ValueError(f"cell {rnn.spec.cell!r} has no state tensor {name!r} (it has {', '.join(names)})")
    return state if isinstance(state, Tensor) else state[names.index(name)]


def last_hidden(rnn: nn.Module, state: Any) -> Tensor:
    """The last layer's final output ``h`` read from the state: (directions, batch, last size). Only for cells whose
    state holds it (``Cell.output_state``); :func:`final_output` works for every cell."""
    name = registry.get(rnn.spec.cell).output_in_state(rnn.spec)
    if name is None:
        raise ValueError(f"the state of cell {rnn.spec.cell!r} does not hold its output; use final_output")
    return state_tensor(rnn, layer_states(rnn, state)[-1], name)


def final_output(rnn: nn.Module, out: Tensor, state: Any, lengths: Tensor | None = None) -> Tensor:
    """Each direction's output at the end of its reading of each sequence, (directions, batch, last size): the
    forward direction's at the sequence's last valid step, the backward direction's at step 0.

    Read from the state where the cell's state holds its output (exactly what the LSTM's and GRU's ``h_n`` are),
    else from ``out`` (seq, batch, last size * directions), which is zero past each sequence's length."""
    if registry.get(rnn.spec.cell).output_in_state(rnn.spec) is not None:
        return last_hidden(rnn, state)
    size = rnn.spec.sizes[-1]
    if lengths is None:
        last = out[-1, :, :size]  # (batch, size)
    else:
        idx = (lengths.to(out.device).long() - 1).view(1, -1, 1).expand(1, out.size(1), size)
        last = out[:, :, :size].gather(0, idx)[0]
    if rnn.spec.directions == 1:
        return last.unsqueeze(0)
    return torch.stack([last, out[0, :, size:]])


def flat_state(state: Any) -> tuple[Tensor, ...]:
    """Every tensor of a state in order (each layer's tensors in turn): for graphs that take plain tensors."""
    if isinstance(state, Tensor):
        return (state,)
    return tuple(t for s in state for t in flat_state(s))


def state_shapes(rnn: nn.Module, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    """Name and shape of each tensor of ``rnn``'s state in :func:`flat_state`'s order, from the cell's registry
    entry: for an LSTM ``h`` and ``c`` ``(layers * directions, batch, hidden)`` for one module, ``h_l0, c_l0, h_l1,
    ...`` (each ``(directions, batch, size)``) for a LayerStack - the inputs and outputs of an exported graph."""
    spec: RecurrentSpec = rnn.spec
    cell = registry.get(spec.cell)
    if not per_layer(rnn):
        rows = spec.num_layers * spec.directions
        return [(n, (rows, batch, *dims)) for n, dims in cell.state_dims(spec, spec.sizes[0])]
    return [
        (f"{n}_l{k}", (spec.directions, batch, *dims))
        for k, size in enumerate(spec.sizes)
        for n, dims in cell.state_dims(spec.layer(k), size)
    ]


def handover(decoder: nn.Module, state: Any) -> Any:
    """An encoder's final state as its decoder's first (one cell, the same sizes; a bidirectional encoder's state
    merged to one direction first): the tensors the cell's registry entry marks ``bridge = "zeros"`` - a
    convolution's buffer of the encoder's own inputs, which the decoder never read - start at zero, in the
    decoder's shape. Every other tensor passes as it is."""
    bridges = {p.name: p.bridge for p in registry.get(decoder.spec.cell).layout(decoder.spec)}
    if "zeros" not in bridges.values():
        return state
    flat = list(flat_state(state))
    for i, (name, shape) in enumerate(state_shapes(decoder, flat[0].size(1))):
        base = name.rsplit("_l", 1)[0] if per_layer(decoder) else name
        if bridges.get(base) == "zeros":
            flat[i] = flat[i].new_zeros(shape)
    return unflatten_state(decoder, flat)


def zeros_state(rnn: nn.Module, batch: int, like: Tensor) -> Any:
    """A state of zeros for ``rnn`` and ``batch`` rows, on ``like``'s device in the parameters' dtype."""
    dtype = next(iter(rnn.parameters())).dtype
    return unflatten_state(rnn, [like.new_zeros(shape, dtype=dtype) for _, shape in state_shapes(rnn, batch)])


def unflatten_state(rnn: nn.Module, tensors: Sequence[Tensor]) -> Any:
    """The inverse of :func:`flat_state` for ``rnn``'s layout."""
    n = _arity(rnn)

    def one(ts: Sequence[Tensor]) -> State:
        return tuple(ts[:n]) if n > 1 else ts[0]

    if not per_layer(rnn):
        return one(tensors)
    return tuple(one(tensors[i : i + n]) for i in range(0, len(tensors), n))

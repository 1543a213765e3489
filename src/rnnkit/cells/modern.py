"""The stack the modern recurrent layers share (minGRU, minLSTM, sLSTM, mLSTM, Mamba): layers, directions, padding,
state layout, dropout and precision, written once so each cell only says what one layer computes.

A cell is a :class:`Core`: the parameters of one direction of one layer, the paper's equations for one time step
(:meth:`Core.step`, the readable reference and the decode path) and, where the cell has one, a fast form over a
whole sequence (:meth:`Core.sequence`: a chunked or hand-differentiated scan). :class:`ModernRecurrent` stacks
cores like ``nn.LSTM`` stacks its layers and gives every cell the one contract of ``rnnkit.cells.make_recurrent``:

* ``module(x, state=None, lengths=None) -> (output, state)``, ``x`` (seq, batch, input), ``output`` (seq, batch,
  hidden * directions) with zeros past each sequence's length;
* the state is taken at each sequence's length (frozen past it) and is accepted back to continue; it is a tuple of
  the cell's state tensors (a single tensor when the cell has one), each laid out (layers * directions, batch, ...)
  so beam search and batched serving index dim 1 for every cell alike;
* the reverse direction reads each sequence backwards within its own length, as packed sequences do;
* dropout between layers in training, never after the last (``nn.LSTM``'s rule);
* under autocast the output is in the compute dtype and the state in the parameters' dtype (fp32 masters), as
  the fused LSTM does; the scans themselves run in fp32.

Parameter names are ``layers.{k}.{d}.<name>`` (layer ``k``, direction ``d``: 0 forward, 1 reverse), the same for
every backend of a cell, so state dicts interchange between ``scratch`` and the fast form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentSpec, reverse_time
from rnnkit.cells.dropout import dropout

States = tuple[Tensor, ...]

# The backends every modern cell has: the paper's equations one step at a time, and the cell's fast form.
BACKENDS = ("scratch", "fast")


class Core(nn.Module):
    """One direction of one layer: ``input_size`` features in, ``spec``'s hidden size out.

    Subclasses set :attr:`state_names`, implement :meth:`state_shapes` and :meth:`step`, and may override
    :meth:`sequence` with a fast form that must equal running :meth:`step` over the sequence.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, spec: RecurrentSpec, input_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = spec.sizes[0]

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of each state tensor for one sequence (the batch dimension left out)."""
        raise NotImplementedError

    def step(self, x: Tensor, state: States) -> tuple[Tensor, States]:
        """One time step: ``x`` (batch, input), each state (batch, ...) -> output (batch, hidden), new state."""
        raise NotImplementedError

    def sequence(self, x: Tensor, state: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        """The whole sequence: ``x`` (seq, batch, input) -> output (seq, batch, hidden) and the state at each
        sequence's length. ``lengths`` (batch,) or None (every sequence fills ``x``); the output past a length is
        arbitrary (the stack zeroes it). By default: :meth:`step` in a loop."""
        return unroll(self.step, x, state, lengths)


def unroll(
    step: Callable[[Tensor, States], tuple[Tensor, States]], x: Tensor, state: States, lengths: Tensor | None
) -> tuple[Tensor, States]:
    """``step`` over the time axis of ``x``; past each sequence's length its state is frozen."""
    # x: (seq, batch, input); state: tensors (batch, ...); lengths: (batch,) or None
    first_masked = x.size(0) if lengths is None else int(lengths.min())
    outs = []
    for t, x_t in enumerate(x.unbind(0)):
        y, new = step(x_t, state)
        if t >= first_masked:
            keep = t < lengths  # (batch,)  # type: ignore[operator]
            new = tuple(torch.where(keep.view(-1, *(1,) * (n.dim() - 1)), n, s) for n, s in zip(new, state))
        state = new
        outs.append(y)
    return torch.stack(outs), state


def time_mask(lengths: Tensor | None, seq: int) -> Tensor | None:
    """(seq, batch, 1) True at the valid steps, or None when every sequence is full."""
    if lengths is None:
        return None
    steps = torch.arange(seq, device=lengths.device).unsqueeze(1)  # (seq, 1)
    return (steps < lengths.unsqueeze(0)).unsqueeze(-1)


def state_at(seq_states: Tensor, initial: Tensor, lengths: Tensor | None) -> Tensor:
    """The state after ``lengths[b]`` steps from per-step states ``seq_states`` (seq, batch, ...): the last step when
    ``lengths`` is None; ``initial`` (batch, ...) is the state after 0 steps (lengths are >= 1, so never used)."""
    if lengths is None:
        return seq_states[-1]
    index = (lengths - 1).view(1, -1, *(1,) * (seq_states.dim() - 2)).expand(1, *seq_states.shape[1:])
    return seq_states.gather(0, index).squeeze(0)


# inference calls run over slices of the batch that hold about this much in temporaries (ModernRecurrent.forward)
INFERENCE_BYTES = 1 << 30
INFERENCE_COPIES = 16  # (seq, widest) tensors per batch row alive at once, counted generously


class ModernRecurrent(nn.Module):
    """A stack of :class:`Core` layers behind ``make_recurrent``'s interface (see the module docstring).

    ``backend``: ``"scratch"`` runs :meth:`Core.step` one time step at a time (the paper's equations);
    ``"fast"`` runs :meth:`Core.sequence`.
    """

    def __init__(self, spec: RecurrentSpec, backend: str, core: type[Core]) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} for cell {spec.cell!r}; choose one of {', '.join(BACKENDS)}")
        if not 0.0 <= spec.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {spec.dropout}")
        if not spec.uniform:
            raise ValueError(
                f"layers of sizes {list(spec.sizes)} have per-layer states: build them with make_recurrent "
                f"(a stack of one-layer modules)"
            )
        self.spec = spec
        self.backend = backend
        self.input_size = spec.input_size
        self.hidden_size = spec.sizes[0]
        self.num_layers = spec.num_layers
        self.bidirectional = spec.bidirectional
        self.dropout = spec.dropout
        self.layers = nn.ModuleList(
            nn.ModuleList(core(spec, spec.input_size if k == 0 else spec.output_size) for _ in range(spec.directions))
            for k in range(spec.num_layers)
        )
        self.state_names: tuple[str, ...] = self.layers[0][0].state_names
        # the widest (seq, batch, width) temporary a layer makes: its inner width, or an mLSTM's chunk x heads
        # gate matrices per step (sizes the slices of an inference call, _inference_rows)
        self.widest = max(
            max(getattr(c, "inner", c.hidden_size), getattr(c, "chunk_size", 0) * getattr(c, "heads", 1))
            for layer in self.layers
            for c in layer
        )

    def state_shapes(self, batch: int) -> list[tuple[str, tuple[int, ...]]]:
        """Name and shape of each state tensor: (layers * directions, batch, ...)."""
        rows = self.num_layers * self.spec.directions
        first: Core = self.layers[0][0]
        return [(n, (rows, batch, *s)) for n, s in zip(self.state_names, first.state_shapes())]

    def flatten_parameters(self) -> None:
        """No-op, for interface parity with ``nn.LSTM``."""

    def forward(
        self, x: Tensor, state: Tensor | Sequence[Tensor] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | States]:
        # x: (seq, batch, input); state: see state_shapes; lengths: (batch,) valid steps, or None when all are full
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"expected x of shape (seq, batch, {self.input_size}), got {tuple(x.shape)}")
        seq, batch, _ = x.shape
        param = next(self.parameters())
        states = self._initial_state(state, batch, param)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).long()
            if lengths.shape != (batch,) or int(lengths.min()) < 1 or int(lengths.max()) > seq:
                raise ValueError(f"lengths must be (batch,) = ({batch},) with values in [1, {seq}]")
        rows = self._inference_rows(seq, x.element_size()) if not torch.is_grad_enabled() else batch
        if rows >= batch:
            out, final = self._forward(x, states, lengths)
        else:
            # inference on a large batch (an evaluation batch of 1,000 pixel-MNIST series: 11 GB for an mLSTM of
            # width 128 at once): the rows are independent, so slices of them keep the temporaries bounded
            parts = []
            for r in range(0, batch, rows):
                part = None if lengths is None else lengths[r : r + rows]
                parts.append(self._forward(x[:, r : r + rows], tuple(s[:, r : r + rows] for s in states), part))
            out = torch.cat([o for o, _ in parts], dim=1)
            final = tuple(torch.cat(column, dim=1) for column in zip(*(f for _, f in parts)))
        return out, final[0] if len(final) == 1 else final

    def _inference_rows(self, seq: int, element: int) -> int:
        """Batch rows per slice of an inference call: about ``INFERENCE_BYTES`` of temporaries each, counted as
        ``INFERENCE_COPIES`` tensors of (seq, widest) per row."""
        return max(1, INFERENCE_BYTES // (INFERENCE_COPIES * seq * self.widest * element))

    def _forward(self, x: Tensor, states: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        seq = x.size(0)
        param = next(self.parameters())
        rev_index = None
        if lengths is not None:
            if int(lengths.min()) == seq:
                lengths = None
            else:
                steps = torch.arange(seq, device=x.device).unsqueeze(1)  # (seq, 1)
                valid = steps < lengths.unsqueeze(0)  # (seq, batch)
                # t -> len - 1 - t inside each sequence, padding left in place; its own inverse
                rev_index = torch.where(valid, lengths.unsqueeze(0) - 1 - steps, steps)
        directions = self.spec.directions
        new: list[list[Tensor]] = [[] for _ in self.state_names]
        layer_input = x  # (seq, batch, input or hidden * directions)
        for k, layer in enumerate(self.layers):
            if k > 0 and self.dropout > 0.0 and self.training:
                layer_input = dropout(layer_input, self.dropout)
            outputs = []
            for d, core in enumerate(layer):
                inp = reverse_time(layer_input, rev_index) if d == 1 else layer_input
                s0 = tuple(s[k * directions + d] for s in states)
                if self.backend == "scratch":
                    out, s_n = unroll(core.step, inp, s0, lengths)
                else:
                    out, s_n = core.sequence(inp, s0, lengths)
                outputs.append(reverse_time(out, rev_index) if d == 1 else out)
                for i, s in enumerate(s_n):
                    new[i].append(s.to(param.dtype))
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
        out = layer_input  # (seq, batch, hidden * directions)
        mask = time_mask(lengths, seq)
        if mask is not None:
            out = out.masked_fill(~mask, 0.0)
        if torch.is_autocast_enabled(x.device.type):
            out = out.to(torch.get_autocast_dtype(x.device.type))
        return out, tuple(torch.stack(s) for s in new)

    def _initial_state(self, state: Tensor | Sequence[Tensor] | None, batch: int, param: Tensor) -> States:
        shapes = self.state_shapes(batch)
        if state is None:
            return tuple(param.new_zeros(shape) for _, shape in shapes)
        parts = (state,) if isinstance(state, Tensor) else tuple(state)
        names = ", ".join(n for n, _ in shapes)
        if len(parts) != len(shapes) or not all(isinstance(p, Tensor) for p in parts):
            kind = "a single tensor" if len(shapes) == 1 else f"a tuple of {len(shapes)} tensors ({names})"
            raise ValueError(f"a {self.spec.cell} state is {kind}")
        for p, (name, shape) in zip(parts, shapes):
            if tuple(p.shape) != shape:
                raise ValueError(f"expected state {name} of shape {shape}, got {tuple(p.shape)}")
        return tuple(p.to(param.dtype) for p in parts)

    def extra_repr(self) -> str:
        s = self.spec
        text = f"{s.cell}, {s.input_size}, {s.hidden_size}, num_layers={s.num_layers}, backend={self.backend}"
        if s.bidirectional:
            text += ", bidirectional=True"
        if s.dropout:
            text += f", dropout={s.dropout}"
        return text


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the scans run in: fp32 for half-precision inputs (autocast), else the input's own."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def linear_halves(linear: nn.Linear, x: Tensor) -> tuple[Tensor, Tensor]:
    """``linear(x).chunk(2, dim=-1)`` as two products with the halves of its weight. Each half comes out
    contiguous, and the backward adds two input gradients of ``x``'s width where ``chunk``'s concatenates the
    output gradient at twice the layer's width and copies it again (7% of Mamba's training step at issue 21's
    shape, whose up-projection is 4x wider than its input)."""
    if x.dim() <= 2 and not (torch.is_grad_enabled() and (x.requires_grad or linear.weight.requires_grad)):
        a, b = linear(x).chunk(2, dim=-1)  # a decode step, no backward to spare: one product, not two
        return a, b
    w, b = linear.weight, linear.bias
    n = w.size(0) // 2
    return F.linear(x, w[:n], None if b is None else b[:n]), F.linear(x, w[n:], None if b is None else b[n:])

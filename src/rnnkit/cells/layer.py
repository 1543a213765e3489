"""The scratch backend: a stack of scratch cells unrolled over time, with ``nn.LSTM``'s interface and names."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells import registry
from rnnkit.cells.base import RecurrentSpec, State, reverse_time
from rnnkit.cells.cell import ScratchCell, Weights
from rnnkit.cells.dropout import dropout


def make_cell(spec: RecurrentSpec, input_size: int) -> ScratchCell:
    """The one-step cell for one layer of ``spec`` (``input_size`` differs between the first layer and the others),
    as the cell's registry entry builds it."""
    cell = registry.get(spec.cell)
    if cell.step is None:
        raise ValueError(f"cell {spec.cell!r} is not a one-step ScratchCell; build it with make_recurrent")
    return cell.step(spec, input_size)


class ScratchRecurrent(nn.Module):
    """A multi-layer, optionally bidirectional recurrent stack built from a :class:`RecurrentSpec`.

    Drop-in for the fused backend (``nn.LSTM``/``nn.GRU``/``nn.RNN``): same ``forward(x, state, lengths)``, same
    output and state shapes, and the same parameter names registered directly on this module
    (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, ``..._reverse``), so
    ``load_state_dict`` works across backends. Peephole and layer-norm cells add their own tensors under the
    same suffix scheme (``weight_ci_l0``, ``ln_ih_weight_l1_reverse``...).

    Why it exists: it is the readable reference the fused kernels are tested against, it runs cells PyTorch
    lacks, and its time loop is open for inspection (``rnnkit.diagnose`` steps through it).

    Variable-length batches are masked rather than packed: past a sequence's length its state is frozen and its
    output is zero, so the final state is the one at its last valid step - what packed sequences give. The
    reverse direction reverses each sequence within its own length, so it starts at that sequence's last valid
    step, again like packing.

    The step runs eagerly. Measured on the 2-core CPU this was written on: ``torch.jit.script`` of the cell
    step gave no gain and ``torch.compile`` cost ~37 s on the first call, so neither is used; the loop is kept
    lean instead (one matmul for the input half of all steps, one ``addmm`` per step).
    """

    def __init__(self, spec: RecurrentSpec) -> None:
        super().__init__()
        if not 0.0 <= spec.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {spec.dropout}")
        if not spec.uniform:
            raise ValueError(
                f"layers of sizes {list(spec.sizes)} have per-layer states: build them with "
                f"make_recurrent (a stack of one-layer modules)"
            )
        self.spec = spec
        self.input_size = spec.input_size
        self.hidden_size = spec.hidden_size
        self.num_layers = spec.num_layers
        self.bidirectional = spec.bidirectional
        self.dropout = spec.dropout
        self.cells = nn.ModuleList(
            make_cell(spec, spec.input_size if k == 0 else spec.output_size) for k in range(spec.num_layers)
        )
        # Register in nn.LSTM's order (per layer, per direction: w_ih, w_hh, b_ih, b_hh), extras after.
        self._names: list[list[dict[str, str]]] = []  # [layer][direction] -> {short name: attribute name}
        for k, cell in enumerate(self.cells):
            per_direction = []
            for d in range(spec.directions):
                suffix = f"_l{k}" + ("_reverse" if d else "")
                names = {}
                for short, shape in cell.parameter_shapes().items():
                    self.register_parameter(short + suffix, nn.Parameter(torch.empty(shape)))
                    names[short] = short + suffix
                per_direction.append(names)
            self._names.append(per_direction)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for k, cell in enumerate(self.cells):
            for d in range(self.spec.directions):
                cell.reset_parameters(self.weights(k, d))

    def weights(self, layer: int, direction: int = 0) -> Weights:
        """This module's tensors for one layer and direction, keyed by the cell's short names."""
        return {short: getattr(self, name) for short, name in self._names[layer][direction].items()}

    def flatten_parameters(self) -> None:
        """No-op, for interface parity with ``nn.LSTM`` (there is no flat cuDNN buffer to compact)."""

    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        # x: (seq, batch, input); state: (layers * dirs, batch, hidden), a pair (h, c) for LSTMs;
        # lengths: (batch,) valid steps per sequence, or None when every sequence fills x
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"expected x of shape (seq, batch, {self.input_size}), got {tuple(x.shape)}")
        seq, batch, _ = x.shape
        spec = self.spec
        has_c = self.cells[0].has_cell_state
        h0, c0 = self._initial_state(x, state, has_c)

        mask = rev_index = None
        # steps before the shortest length need no masking
        first_masked = seq
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).long()
            if lengths.shape != (batch,) or int(lengths.min()) < 1 or int(lengths.max()) > seq:
                raise ValueError(f"lengths must be (batch,) = ({batch},) with values in [1, {seq}]")
            steps = torch.arange(seq, device=x.device).unsqueeze(1)  # (seq, 1)
            valid = steps < lengths.unsqueeze(0)  # (seq, batch)
            if not bool(valid.all()):
                mask = valid.unsqueeze(-1)  # (seq, batch, 1)
                first_masked = int(lengths.min())
                # t -> len - 1 - t inside each sequence, padding left in place; its own inverse
                rev_index = torch.where(valid, lengths.unsqueeze(0) - 1 - steps, steps)  # (seq, batch)

        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        layer_input = x  # (seq, batch, input or hidden * dirs)
        for k, cell in enumerate(self.cells):
            if k > 0 and self.dropout > 0.0 and self.training:
                layer_input = dropout(layer_input, self.dropout)
            outputs = []
            for d in range(spec.directions):
                w = self.weights(k, d)
                gx = cell.project_input(layer_input, w)  # (seq, batch, gates * hidden)
                if d == 1:
                    gx = reverse_time(gx, rev_index)
                i = k * spec.directions + d
                s0: State = (h0[i], c0[i]) if has_c else h0[i]
                out, s_n = _unroll(cell, gx, s0, w, mask, first_masked)  # out: (seq, batch, hidden)
                if d == 1:
                    out = reverse_time(out, rev_index)
                outputs.append(out)
                if has_c:
                    h_n.append(s_n[0])
                    c_n.append(s_n[1])
                else:
                    h_n.append(s_n)  # type: ignore[arg-type]
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)

        h = torch.stack(h_n)  # (layers * dirs, batch, hidden)
        new_state: State = (h, torch.stack(c_n)) if has_c else h
        return layer_input, new_state  # output: (seq, batch, hidden * dirs)

    def _initial_state(self, x: Tensor, state: State | None, has_c: bool) -> tuple[Tensor, Tensor | None]:
        shape = (self.num_layers * self.spec.directions, x.size(1), self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            return zeros, (zeros if has_c else None)
        if has_c:
            if not isinstance(state, tuple) or len(state) != 2:
                raise ValueError("an LSTM's state is a pair (h, c)")
            h0, c0 = state
        else:
            if isinstance(state, tuple):
                raise ValueError(f"a {self.spec.cell} state is a single tensor h, not a tuple")
            h0, c0 = state, None
        for t in (h0, c0):
            if t is not None and tuple(t.shape) != shape:
                raise ValueError(f"expected state of shape {shape}, got {tuple(t.shape)}")
        return h0, c0

    def extra_repr(self) -> str:
        s = self.spec
        text = f"{s.cell}, {s.input_size}, {s.hidden_size}, num_layers={s.num_layers}"
        if s.bidirectional:
            text += ", bidirectional=True"
        if s.dropout:
            text += f", dropout={s.dropout}"
        return text


class _RecurrentWeightGrad(torch.autograd.Function):
    """Identity on ``gx`` whose backward also returns ``W_hh``'s gradient, as one matmul over every step.

    For a cell whose recurrent projection ``h_{t-1} W_hh^T`` is only ever added to ``gx_t`` (LSTM, peephole LSTM,
    simple RNN), the gradient reaching ``gx_t`` is the gradient of that projection, so
    ``dW_hh = sum_t dgx_t^T h_{t-1}``: a ``(gates * hidden, seq * batch) x (seq * batch, hidden)`` product. The
    loop then uses ``W_hh`` detached, and autograd no longer sums ``seq`` separate rank-``batch`` weight
    gradients, each a full ``(gates * hidden, hidden)`` tensor (memory-bound, the scratch backend's largest
    overhead at Zaremba-medium size). ``prev`` is filled with the stacked ``h_{t-1}`` once the loop has run.
    """

    @staticmethod
    def forward(ctx: Any, gx: Tensor, weight_hh: Tensor, prev: list[Tensor]) -> Tensor:
        ctx.prev = prev
        ctx.weight_dtype = weight_hh.dtype
        return gx.view_as(gx)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, None]:
        # grad: (seq, batch, gates * hidden); prev[0]: (seq, batch, hidden)
        grad_w = None
        if ctx.needs_input_grad[1]:
            # under autocast the per-step matmuls ran in grad's (half) dtype: so does this one
            h_prev = ctx.prev[0].to(grad.dtype)
            # (hidden, gates * hidden) then transposed: BLAS runs this shape faster than grad^T @ h_prev
            grad_w = torch.mm(h_prev.reshape(-1, h_prev.size(-1)).t(), grad.reshape(-1, grad.size(-1))).t()
            grad_w = grad_w.to(ctx.weight_dtype)
        return grad, grad_w, None


def _unroll(
    cell: ScratchCell, gx: Tensor, state: State, weights: Weights, mask: Tensor | None, first_masked: int
) -> tuple[Tensor, State]:
    """Run ``cell`` over the time axis of ``gx``; past each sequence's length freeze its state, zero its output."""
    # gx: (seq, batch, gates * hidden); state: h or (h, c), each (batch, hidden); mask: (seq, batch, 1) or None
    w_hh = weights["weight_hh"]
    batched = cell.additive_recurrence and torch.is_grad_enabled() and w_hh.requires_grad
    prev: list[Tensor] = []
    if batched:
        gx = _RecurrentWeightGrad.apply(gx, w_hh, prev)
        weights = {**weights, "weight_hh": w_hh.detach()}
    h0 = state[0] if isinstance(state, tuple) else state  # (batch, hidden)
    hs: list[Tensor] = []
    # unbind: one backward node that stacks every step's gradient, where gx[t] would add a zero-filled
    # full-size gradient per step
    for t, gx_t in enumerate(gx.unbind(0)):
        new = cell(gx_t, state, weights)
        if mask is not None and t >= first_masked:
            m = mask[t]  # (batch, 1)
            if isinstance(new, tuple):
                new = (torch.where(m, new[0], state[0]), torch.where(m, new[1], state[1]))
            else:
                new = torch.where(m, new, state)
        state = new
        hs.append(state[0] if isinstance(state, tuple) else state)
    if batched:  # h_{t-1} for every step: the initial h, then the outputs but the last
        prev.append(torch.stack([h0, *hs[:-1]]).detach())  # (seq, batch, hidden)
    out = torch.stack(hs)  # (seq, batch, hidden)
    if mask is not None:
        out = out.masked_fill(~mask, 0.0)
    return out, state

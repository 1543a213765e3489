"""A test-only recurrent cell whose state is unlike the LSTM's, registered from tests to check that every task and
service handles any state layout the registry can declare.

``toy``: three state tensors, none of them the output - ``c`` (a vector, bridged linearly), ``m`` (a 2 x H
shift register: not a vector, so a bidirectional seq2seq bridge takes the forward direction's) and ``n`` (a
per-sequence step counter, (1,)). The output ``h = o * tanh(c + m[1] / 2)`` reads the state, but is not in it, as
with mLSTM and Mamba. One step, per layer and direction:

    z = W x + U c + b;  f, g, o = sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c' = f c + (1 - f) g;  m' = [c', m[0]];  n' = n + 1;  h = o tanh(c' + m[1] / 2)

Both backends are this one module (it has no faster form); it follows the contract of every cell: (seq, batch,
feature), zeros past each length, the state taken at each sequence's length, state tensors (layers * directions,
batch, ...), the state in the parameters' dtype and the output in the compute dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from rnnkit.cells import registry
from rnnkit.cells.base import RecurrentSpec, reverse_time
from rnnkit.cells.dropout import dropout

NAME = "toy"


class ToyRecurrent(nn.Module):
    def __init__(self, spec: RecurrentSpec) -> None:
        super().__init__()
        self.spec = spec
        self.input_size, self.hidden_size, self.num_layers = spec.input_size, spec.hidden_size, spec.num_layers
        self.bidirectional, self.dropout = spec.bidirectional, spec.dropout
        h = spec.hidden_size
        for k in range(spec.num_layers):
            fan_in = spec.input_size if k == 0 else h * spec.directions
            for d in range(spec.directions):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                self.register_parameter("weight_ih" + sfx, nn.Parameter(torch.empty(3 * h, fan_in)))
                self.register_parameter("weight_hh" + sfx, nn.Parameter(torch.empty(3 * h, h)))
                self.register_parameter("bias" + sfx, nn.Parameter(torch.empty(3 * h)))
        bound = 1 / math.sqrt(h)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _run(self, x: Tensor, c: Tensor, m: Tensor, n: Tensor, w: list[Tensor], valid: Tensor | None):
        # x: (seq, batch, in); c: (batch, H); m: (batch, 2, H); n: (batch, 1); valid: (seq, batch, 1) or None
        gx = nn.functional.linear(x, w[0], w[2])  # (seq, batch, 3H)
        outs = []
        for t in range(x.size(0)):
            z = gx[t] + nn.functional.linear(c.to(gx.dtype), w[1])
            f, g, o = torch.sigmoid(z[:, : self.hidden_size]), *z[:, self.hidden_size :].chunk(2, 1)
            g, o = torch.tanh(g), torch.sigmoid(o)
            c2 = (f * c + (1 - f) * g).to(c.dtype)
            m2 = torch.stack([c2, m[:, 0]], 1)
            h = (o * torch.tanh(c2 + m[:, 1] / 2)).to(gx.dtype)
            if valid is not None:
                keep = valid[t]
                c2, m2, n2 = torch.where(keep, c2, c), torch.where(keep.unsqueeze(-1), m2, m), n + keep.to(n.dtype)
                h = h * keep
            else:
                n2 = n + 1
            c, m, n = c2, m2, n2
            outs.append(h)
        return torch.stack(outs), c, m, n

    def forward(self, x: Tensor, state=None, lengths: Tensor | None = None):
        seq, batch, _ = x.shape
        spec, H, dt = self.spec, self.hidden_size, self.weight_hh_l0.dtype
        rows = spec.num_layers * spec.directions
        if state is None:
            z = x.new_zeros((), dtype=dt)
            state = (z.expand(rows, batch, H), z.expand(rows, batch, 2, H), z.expand(rows, batch, 1))
        c0, m0, n0 = state
        valid = rev = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device).long()
            steps = torch.arange(seq, device=x.device).unsqueeze(1)
            mask = steps < lengths.unsqueeze(0)  # (seq, batch)
            if not bool(mask.all()):
                valid = mask.unsqueeze(-1)
                rev = torch.where(mask, lengths.unsqueeze(0) - 1 - steps, steps)
        cs, ms, ns = [], [], []
        inp = x
        for k in range(spec.num_layers):
            if k and self.dropout and self.training:
                inp = dropout(inp, self.dropout)
            outs = []
            for d in range(spec.directions):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                w = [getattr(self, n + sfx) for n in ("weight_ih", "weight_hh", "bias")]
                i = k * spec.directions + d
                xin = reverse_time(inp, rev) if d else inp
                out, c, m, n = self._run(xin, c0[i], m0[i], n0[i], w, valid)
                outs.append(reverse_time(out, rev) if d else out)
                cs.append(c)
                ms.append(m)
                ns.append(n)
            inp = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
        return inp, (torch.stack(cs), torch.stack(ms), torch.stack(ns))


TOY = registry.Cell(
    NAME,
    "test-only cell with a three-tensor state that does not hold its output",
    "tests/toy_cell.py",
    (
        registry.StateTensor("c", bridge="linear"),
        registry.StateTensor("m", lambda spec, size: (2, size), bridge="forward"),
        registry.StateTensor("n", lambda spec, size: (1,), bridge="forward"),
    ),
    ToyRecurrent,
    ToyRecurrent,
    options=frozenset({"bidirectional", "layer_sizes"}),
    output_state=None,
)


@contextlib.contextmanager
def toy_registered() -> Iterator[registry.Cell]:
    if NAME in registry.names():
        yield registry.get(NAME)
        return
    with registry.registered(TOY) as cell:
        yield cell

"""mLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"): an LSTM whose memory is a matrix ``C``
(per head, ``d x d``) written with a key-value outer product under exponential gating, read with a query.

One layer is the xLSTM mLSTM layer (the ``xlstm`` package's ``mLSTMLayer``, pre-up-projection block minus its
residual and norm): ``[x_m, z] = W_up x``; ``x_c = silu(causal_conv(x_m))``; per head ``q, k = blockdiag(x_c)``,
``v = blockdiag(x_m)``; the gates see ``[q, k, v]``:

    i~_t = w_i [q, k, v] + b_i        f~_t = w_f [q, k, v] + b_f          (one pair per head)
    m_t = max(log sigmoid(f~_t) + m_{t-1}, i~_t)                          (the stabiliser)
    f_t = exp(log sigmoid(f~_t) + m_{t-1} - m_t)     i_t = exp(i~_t - m_t)
    C_t = f_t C_{t-1} + i_t k_t v_t^T / sqrt(d)      n_t = f_t n_{t-1} + i_t k_t / sqrt(d)
    h~_t = C_t^T q_t / (max(|n_t . q_t|, exp(-m_t)) + 1e-6)
    h_t = (GroupNorm_heads(h~_t) + s * x_c) * silu(z)       output: W_down h_t

``C`` and ``n`` are held divided by ``exp(m)`` (so every exponential is <= 1); the output does not depend on that
scaling except through the ``1e-6``. Training runs the chunkwise-parallel form (:meth:`MLSTMCore.sequence`): within
a chunk of ``chunk_size`` steps the memory is read as masked attention (``(q k^T) * D`` with the gate decay
matrix ``D``), between chunks it is carried as ``C, n, m`` - the recurrence's own stabiliser, computed in closed
form with a ``cummax``, so it equals the step to rounding. :mod:`rnnkit.cells.chunkwise` runs it over every chunk at
once with a hand-written backward.

Sizes: a layer maps ``input_size`` -> ``hidden_size``; the cell runs at ``expand * hidden_size`` features
(``spec.expand``, default 2 - the package's ``proj_factor``; it also rounds up to a multiple of 64, rnnkit does
not), split into ``spec.heads`` heads (default 4); q/k/v are block-diagonal with blocks of 4
(``qkv_proj_blocksize``); ``spec.conv_size`` (default 4) is the causal convolution's width. State:
``conv`` (L*D, batch, conv_size - 1, inner) when conv_size > 0, ``C`` (L*D, batch, heads, d, d),
``n`` (L*D, batch, heads, d), ``m`` (L*D, batch, heads).

Names: as the package's layer (``proj_up``, ``q_proj``/``k_proj``/``v_proj`` ``.weight`` (blocks, 4, 4),
``conv1d`` (its ``conv1d.conv``), ``igate``, ``fgate`` (its ``mlstm_cell.igate/fgate``), ``learnable_skip``,
``proj_down``), except ``outnorm_weight``, which is the package's ``1 + mlstm_cell.outnorm.weight``.
"""

# ruff: noqa: N803  (tensor names follow the equations: C, H, dH...)

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import native
from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.chunkwise import chunkwise_mlstm
from rnnkit.cells.modern import Core, ModernRecurrent, States, compute_dtype, linear_halves, time_mask
from rnnkit.cells.scan import conv_silu_sequence, conv_step, mamba_gate

DOC = "mLSTM (Beck et al. 2024, xLSTM): matrix memory with exponential gating, chunkwise-parallel training"
OPTIONS = {"bidirectional": True, "per_layer_sizes": True, "dropout": True, "forget_bias": False}
BLOCK = 4  # q, k, v projections: block-diagonal with blocks of this size (the package's qkv_proj_blocksize)
EPS = 1e-6


def inner_size(spec: RecurrentSpec, hidden: int) -> int:
    return max(1, round((2.0 if spec.expand is None else spec.expand) * hidden))


def state_names(spec: RecurrentSpec) -> tuple[str, ...]:
    return (("conv",) if spec.conv_size > 0 else ()) + ("C", "n", "m")


class HeadwiseLinear(nn.Module):
    """A block-diagonal linear map: ``features / block`` independent ``block x block`` blocks."""

    def __init__(self, features: int, block: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(features // block, block, block))  # (blocks, out, in)
        self.bias = nn.Parameter(torch.zeros(features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        # x: (..., features)
        weight = self.weight.to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        if native.usable(x, weight):  # a compiled loop: one pass over x (a batched 4 x 4 GEMM makes many)
            return BlockDiagonal.apply(x, weight, bias)
        blocks = weight.size(0)
        y = torch.einsum("...hd,hod->...ho", x.reshape(*x.shape[:-1], blocks, -1), weight).reshape(x.shape)
        return y if bias is None else y + bias


class BlockDiagonal(torch.autograd.Function):
    """``x`` (..., C) times the block-diagonal matrix of ``weight`` (blocks, K, K), plus ``bias``, by
    :mod:`rnnkit.cells.native`'s compiled loops."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.with_bias = bias is not None
        return native.block_diagonal(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        dx = native.block_diagonal(g, weight.transpose(1, 2), None) if ctx.needs_input_grad[0] else None
        dW, db = native.block_diagonal_weight_grad(g, x, weight.size(-1), ctx.with_bias)
        return dx, dW, db


class GateProducts(torch.autograd.Function):
    """The gates' pre-activations ``[q, k, v] W^T + b`` (q, k, v: (..., inner); W: (2 * heads, 3 * inner)) without
    the concatenation. By hand for the weight's gradient: autograd's ``linear`` forms it as ``[q, k, v]^T g``, a
    (3 * inner) x 8 result that BLAS computes ~9x slower than the same numbers as ``g^T [q, k, v]``."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, w: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(q, k, v, w)
        inner = q.size(-1)
        out = torch.addmm(b, q.reshape(-1, inner), w[:, :inner].t())
        out.addmm_(k.reshape(-1, inner), w[:, inner : 2 * inner].t())
        out.addmm_(v.reshape(-1, inner), w[:, 2 * inner :].t())
        return out.view(*q.shape[:-1], w.size(0))

    @staticmethod
    def backward(ctx: Any, g: Tensor):
        q, k, v, w = ctx.saved_tensors
        inner = q.size(-1)
        g = g.reshape(-1, w.size(0))
        parts = [w[:, i * inner : (i + 1) * inner] for i in range(3)]
        grads = [
            (g @ p).view(t.shape) if ctx.needs_input_grad[i] else None for i, (t, p) in enumerate(zip((q, k, v), parts))
        ]
        dw = torch.cat([g.t() @ t.reshape(-1, inner) for t in (q, k, v)], dim=1) if ctx.needs_input_grad[3] else None
        return (*grads, dw, g.sum(0) if ctx.needs_input_grad[4] else None)


class MLSTMCore(Core):
    state_names = ("conv", "C", "n", "m")

    def __init__(self, spec: RecurrentSpec, input_size: int) -> None:
        super().__init__(spec, input_size)
        inner = self.inner = inner_size(spec, self.hidden_size)
        self.heads = spec.heads
        if inner % self.heads or inner % BLOCK:
            raise ValueError(
                f"mlstm: the inner width expand * hidden_size = {inner} must divide into heads = {self.heads} and "
                f"blocks of {BLOCK}"
            )
        self.head_dim = inner // self.heads
        self.conv_size = spec.conv_size
        self.state_names = state_names(spec)
        self.chunk_size = 64  # time steps per chunk of the parallel form: the training speed's knob
        self.proj_up = nn.Linear(input_size, 2 * inner, bias=spec.bias)
        self.q_proj = HeadwiseLinear(inner, BLOCK, spec.bias)
        self.k_proj = HeadwiseLinear(inner, BLOCK, spec.bias)
        self.v_proj = HeadwiseLinear(inner, BLOCK, spec.bias)
        self.conv1d = nn.Conv1d(inner, inner, spec.conv_size, groups=inner) if spec.conv_size > 0 else None
        self.igate = nn.Linear(3 * inner, self.heads)
        self.fgate = nn.Linear(3 * inner, self.heads)
        self.outnorm_weight = nn.Parameter(torch.ones(inner))
        self.learnable_skip = nn.Parameter(torch.ones(inner))
        self.proj_down = nn.Linear(inner, self.hidden_size, bias=spec.bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The package's initialisation: small init for the projections, forget-gate biases 3..6 (remember by
        default), input-gate biases ~N(0, 0.1), zero gate weights."""
        dim = self.hidden_size
        small = math.sqrt(2 / (5 * dim))
        for p in (self.proj_up.weight, self.q_proj.weight, self.k_proj.weight, self.v_proj.weight):
            nn.init.normal_(p, 0.0, small)
        nn.init.normal_(self.proj_down.weight, 0.0, 2 / math.sqrt(dim))
        for lin in (self.proj_up, self.proj_down, self.q_proj, self.k_proj, self.v_proj):
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        nn.init.zeros_(self.fgate.weight)
        with torch.no_grad():
            self.fgate.bias.copy_(torch.linspace(3.0, 6.0, self.heads))
        nn.init.zeros_(self.igate.weight)
        nn.init.normal_(self.igate.bias, 0.0, 0.1)
        nn.init.ones_(self.outnorm_weight)
        nn.init.ones_(self.learnable_skip)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        h, d = self.heads, self.head_dim
        conv = ((self.conv_size - 1, self.inner),) if self.conv_size > 0 else ()
        return (*conv, (h, d, d), (h, d), (h,))

    def _inputs(self, x: Tensor, conv_state: Tensor | None, lengths: Tensor | None, step: bool):
        """Up-projection, convolution, q/k/v and gate pre-activations (any leading dims)."""
        xm, z = linear_halves(self.proj_up, x)
        new_conv = None
        if self.conv1d is None:
            xa = F.silu(xm)
        elif step:
            xc, new_conv = conv_step(xm, conv_state, self.conv1d.weight, self.conv1d.bias)
            xa = F.silu(xc)
        else:  # convolution and SiLU in one compiled pass each way where it runs
            xa, new_conv = conv_silu_sequence(xm, conv_state, self.conv1d.weight, self.conv1d.bias, lengths)
        q, k, v = self.q_proj(xa), self.k_proj(xa), self.v_proj(xm)
        # the gates read [q, k, v]: three products with column blocks of their weights instead of a concatenation
        inner = self.inner
        w = torch.cat([self.igate.weight, self.fgate.weight])  # (2 * heads, 3 * inner)
        b = torch.cat([self.igate.bias, self.fgate.bias])
        if torch.is_grad_enabled() and not torch.jit.is_tracing() and not torch.is_autocast_enabled(x.device.type):
            gates = GateProducts.apply(q, k, v, w, b)
        else:
            gates = F.linear(q, w[:, :inner], b) + F.linear(k, w[:, inner : 2 * inner]) + F.linear(v, w[:, 2 * inner :])
        i_pre, f_pre = gates.chunk(2, dim=-1)
        return q, k, v, i_pre, f_pre, xa, z, new_conv

    def _output(self, h_tilde: Tensor, xa: Tensor, z: Tensor) -> Tensor:
        # h_tilde: (..., heads, d) -> (..., hidden). The package's GroupNorm over heads is a LayerNorm over each
        # head's d features (the same numbers; F.group_norm's backward is several times slower on a CPU)
        normed = F.layer_norm(h_tilde, (self.head_dim,), eps=1e-5).flatten(-2)  # (..., inner)
        # (normed w + skip xa) silu(z): Mamba's output gate, one compiled pass each way where it runs
        h = mamba_gate(normed * self.outnorm_weight.to(normed.dtype), xa, z, self.learnable_skip.to(xa.dtype))
        return self.proj_down(h)

    def step(self, x: Tensor, state: States) -> tuple[Tensor, States]:
        # x: (batch, input); C: (batch, heads, d, d); n: (batch, heads, d); m: (batch, heads)
        conv_state = state[0] if self.conv_size > 0 else None
        C, n, m = state[-3:]
        q, k, v, i_pre, f_pre, xa, z, new_conv = self._inputs(x, conv_state, None, step=True)
        B, H, d = x.size(0), self.heads, self.head_dim
        q, k, v = q.view(B, H, d), k.view(B, H, d) / math.sqrt(d), v.view(B, H, d)
        log_f = F.logsigmoid(f_pre)  # (batch, heads)
        m_new = torch.maximum(log_f + m, i_pre)
        f = torch.exp(log_f + m - m_new)
        i = torch.exp(i_pre - m_new)
        C = f[..., None, None] * C + i[..., None, None] * (k.unsqueeze(-1) * v.unsqueeze(-2))
        n = f[..., None] * n + i[..., None] * k
        num = (q.unsqueeze(-1) * C).sum(-2)  # q^T C: (batch, heads, d)
        den = torch.maximum((q * n).sum(-1).abs(), torch.exp(-m_new)) + EPS
        y = self._output(num / den[..., None], xa, z)
        return y, ((new_conv,) if self.conv_size > 0 else ()) + (C, n, m_new)

    def sequence(self, x: Tensor, state: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        # x: (seq, batch, input)
        conv_state = state[0] if self.conv_size > 0 else None
        C, n, m = state[-3:]
        q, k, v, i_pre, f_pre, xa, z, new_conv = self._inputs(x, conv_state, lengths, step=False)
        T, B = x.shape[:2]
        H, d = self.heads, self.head_dim
        dtype = compute_dtype(q)
        q, k, v = (t.to(dtype).view(T, B, H, d) for t in (q, k, v))
        log_f = F.logsigmoid(f_pre.to(dtype))  # (seq, batch, heads)
        i_pre = i_pre.to(dtype)
        mask = time_mask(lengths, T)
        if mask is not None:  # past a sequence's end: f = 1, i = 0, so C, n, m stay as they were
            log_f = log_f.masked_fill(~mask, 0.0)
            i_pre = i_pre.masked_fill(~mask, float("-inf"))
        h_tilde, C, n, m = chunkwise_mlstm(
            q, k, v, i_pre, log_f, C.to(dtype), n.to(dtype), m.to(dtype), self.chunk_size, 1 / math.sqrt(d)
        )
        y = self._output(h_tilde, xa, z)
        return y, ((new_conv,) if self.conv_size > 0 else ()) + (C, n, m)


def state_layout(spec: RecurrentSpec, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    rows = spec.num_layers * spec.directions
    inner = inner_size(spec, spec.sizes[0])
    d = inner // spec.heads
    shapes = {
        "conv": (spec.conv_size - 1, inner),
        "C": (spec.heads, d, d),
        "n": (spec.heads, d),
        "m": (spec.heads,),
    }
    return [(name, (rows, batch, *shapes[name])) for name in state_names(spec)]


STATE_NAMES = state_names(RecurrentSpec("mlstm", 1, 8))


def build(spec: RecurrentSpec, backend: str = "fast") -> nn.Module:
    return ModernRecurrent(spec, backend, MLSTMCore)

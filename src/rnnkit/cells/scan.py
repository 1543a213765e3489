"""Scans and convolutions the modern cells share: the first-order linear recurrence ``h_t = a_t h_{t-1} + b_t``
with a hand-written backward, and the short causal depthwise convolution (Mamba, xLSTM) with its decode state.

Why a sequential loop and not a parallel (log-space, Blelloch) scan: on a CPU the recurrence is memory-bound, and a
loop that does one fused ``addcmul`` per step over a (batch, features) slice reads each element once, where a
log-space scan (``logcumsumexp``) spends a ``log`` and an ``exp`` per element and its autograd keeps several
full-size intermediates. The loop's Python cost is ~5 us a step; at 1,024 steps that is a few ms, against the
hundreds of ms the projections take. Autograd over the loop would record a node per step and keep every step's
inputs; :class:`LinearScan` keeps ``a``, ``b``'s output ``h`` and runs the backward as the same loop reversed.
"""

# ruff: noqa: N803  (tensor names follow the equations: C, H, dH...)

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells import native


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run a sequential loop of small ops on one intra-op thread, then restore the thread count.

    Why: each step of a recurrence is a handful of ops on a (batch, hidden) slice - below PyTorch's grain size for
    element-wise ops, a few microseconds of BLAS for the small products - so a second thread gains nothing there,
    but every product that does fork pays an OpenMP barrier per step. On a loaded machine those barriers wait for
    a descheduled thread: measured on the 2-core machine this was written on (load ~12), an sLSTM training step at
    2 threads took 8x its 1-thread time, and nn.LSTM's kernel 7x. The loop runs on one thread; the large
    projections before and after it keep every thread.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class LinearScan(torch.autograd.Function):
    """``h_t = a_t * h_{t-1} + b_t`` over dim 0: ``a``, ``b`` (seq, ...), ``h0`` (...) -> all ``h_t`` (seq, ...)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        H = torch.empty_like(b)
        h = h0
        with one_thread():
            for t in range(a.size(0)):
                h = torch.addcmul(b[t], a[t], h, out=H[t])
        ctx.save_for_backward(a, h0, H)
        return H

    @staticmethod
    def backward(ctx: Any, dH: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        a, h0, H = ctx.saved_tensors
        seq = a.size(0)
        # G_t = dL/dh_t through every path: dH_t + a_{t+1} G_{t+1}
        G = torch.empty_like(dH)
        G[-1] = dH[-1]
        with one_thread():
            for t in range(seq - 2, -1, -1):
                torch.addcmul(dH[t], a[t + 1], G[t + 1], out=G[t])
        da = None
        if ctx.needs_input_grad[0]:
            da = torch.empty_like(a)
            torch.mul(G[1:], H[:-1], out=da[1:])
            torch.mul(G[0], h0, out=da[0])
        dh0 = a[0] * G[0] if ctx.needs_input_grad[2] else None
        return da, G, dh0


def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """All states of ``h_t = a_t h_{t-1} + b_t``: ``a``, ``b`` (seq, batch, ...), ``h0`` (batch, ...)."""
    return LinearScan.apply(a, b, h0)


class GatedScan(torch.autograd.Function):
    """minGRU / minLSTM from their input projection to every state, in the compiled kernel of
    :mod:`rnnkit.cells.native`: ``P`` (seq, batch, G * D), ``h0`` (batch, D), ``lengths`` (batch,) or None -> H
    (seq, batch, D). The gates, their products and the scan are one pass forward and one backward (which
    recomputes the gates from ``P``), where the PyTorch form makes about ten element-wise passes over (seq, batch,
    D) each way and keeps the gates for the backward."""

    @staticmethod
    def forward(ctx: Any, P: Tensor, h0: Tensor, lengths: Tensor | None) -> Tensor:
        H = native.min_forward(P, h0, lengths)
        ctx.save_for_backward(P, h0, lengths, H)
        return H

    @staticmethod
    def backward(ctx: Any, dH: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        P, h0, lengths, H = ctx.saved_tensors
        dP, dh0 = native.min_backward(P, h0, lengths, H, dH)
        return dP, dh0, None


def gated_scan(P: Tensor, h0: Tensor, lengths: Tensor | None) -> Tensor | None:
    """minGRU (``P`` = [candidate | gate]) or minLSTM (``P`` = [candidate | forget | input]) through
    :class:`GatedScan`, or None where the compiled kernel cannot run (the cell then uses its PyTorch form)."""
    if not native.usable(P, h0):
        return None
    return GatedScan.apply(P, h0, lengths)


# -- causal depthwise convolution --------------------------------------------------------------------------------
# weight (channels, 1, width) as nn.Conv1d(groups=channels) holds it; the state is the last width - 1 inputs,
# oldest first: (batch, width - 1, channels).


class CausalConv(torch.autograd.Function):
    """``y_t = sum_j w[:, j] * full_{t + j}`` with ``full = [state; x]``: state (width - 1, batch, channels), x
    (seq, batch, channels), w (channels, width) -> y (seq, batch, channels). By hand because autograd over the
    ``width`` shifted slices of the concatenation keeps that copy of ``x`` and gives each slice's gradient as a
    zero-filled full-size tensor, summed: ``2 * width`` extra passes over the sequence."""

    @staticmethod
    def forward(ctx: Any, state: Tensor, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(state, x, w)
        seq, p = x.size(0), w.size(1) - 1
        y = x * w[:, p]
        for j in range(p):
            s = p - j  # full_{t + j} is x_{t - s}, or state_{t + j} for t < s
            if s < seq:
                y[s:].addcmul_(x[: seq - s], w[:, j])
            r = min(s, seq)
            y[:r].addcmul_(state[j : j + r], w[:, j])
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        state, x, w = ctx.saved_tensors
        seq, p = x.size(0), w.size(1) - 1
        d_state = torch.zeros_like(state) if ctx.needs_input_grad[0] else None
        d_x = g * w[:, p] if ctx.needs_input_grad[1] else None
        d_w = torch.empty_like(w) if ctx.needs_input_grad[2] else None
        if d_w is not None:
            d_w[:, p] = (g * x).sum((0, 1))
        for j in range(p):
            s = p - j
            r = min(s, seq)
            if d_x is not None and s < seq:
                d_x[: seq - s].addcmul_(g[s:], w[:, j])
            if d_state is not None:
                d_state[j : j + r].addcmul_(g[:r], w[:, j])
            if d_w is not None:
                d_w[:, j] = (g[:r] * state[j : j + r]).sum((0, 1))
                if s < seq:
                    d_w[:, j] += (g[s:] * x[: seq - s]).sum((0, 1))
        return d_state, d_x, d_w


def conv_sequence(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None, lengths: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Causal depthwise convolution over ``x`` (seq, batch, channels) continuing from ``conv_state``; returns the
    output (seq, batch, channels) and the state after each sequence's length."""
    state = conv_state.transpose(0, 1).to(x.dtype)  # (width - 1, batch, channels)
    w = weight[:, 0, :].to(x.dtype)  # (channels, width)
    y = CausalConv.apply(state, x, w)
    if bias is not None:
        y = y + bias.to(x.dtype)
    return y, _conv_state_after(x, state, lengths)


class CausalConvSiLU(torch.autograd.Function):
    """``silu(causal_conv(x) + bias)`` in the compiled kernel: one pass forward, one backward (which recomputes the
    convolution), where :class:`CausalConv`, the bias and the SiLU make about six passes over (seq, batch, channels)
    forward and a dozen backward. state (width - 1, batch, C), x (seq, batch, C), wt (width, C), bias (C) or None."""

    @staticmethod
    def forward(ctx: Any, state: Tensor, x: Tensor, wt: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(state, x, wt, bias)
        return native.conv_silu_forward(x, state, wt, bias)

    @staticmethod
    def backward(ctx: Any, du: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        state, x, wt, bias = ctx.saved_tensors
        dx, d_state, dwt, dbias = native.conv_silu_backward(x, state, wt, bias, du)
        return d_state, dx, dwt, dbias


def conv_silu_sequence(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None, lengths: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``silu`` of :func:`conv_sequence`'s output, and its new state: the compiled kernel where it runs."""
    state = conv_state.transpose(0, 1).to(x.dtype)  # (width - 1, batch, channels)
    wt = weight[:, 0, :].t().to(x.dtype)  # (width, channels)
    b = None if bias is None else bias.to(x.dtype)
    if weight.size(-1) < 2 or not native.usable(x, state, wt, *(() if b is None else (b,))):
        y, new = conv_sequence(x, conv_state, weight, bias, lengths)
        return F.silu(y), new
    u = CausalConvSiLU.apply(state.contiguous(), x, wt.contiguous(), b)
    return u, _conv_state_after(x, state, lengths)


def _conv_state_after(x: Tensor, state: Tensor, lengths: Tensor | None) -> Tensor:
    """The width - 1 inputs up to each sequence's length (oldest first), from ``[state; x]``: (batch, width - 1, C)."""
    seq, p = x.size(0), state.size(0)
    full = torch.cat([state, x]) if lengths is not None or seq < p else None
    if lengths is None:
        new = full[seq:] if full is not None else x[seq - p :].clone()  # (width - 1, batch, channels)
    else:  # full[L .. L + width - 2]
        index = lengths.view(1, -1, 1) + torch.arange(p, device=x.device).view(-1, 1, 1)
        new = full.gather(0, index.expand(p, -1, full.size(-1)))
    return new.transpose(0, 1)


class MambaGate(torch.autograd.Function):
    """Mamba's output ``(y + D u) * silu(z)`` in one compiled pass each way (four forward and about six backward
    in PyTorch). y, u (seq, batch, C); z (seq, batch, C), a column block of the input projection; D (C,)."""

    @staticmethod
    def forward(ctx: Any, y: Tensor, u: Tensor, z: Tensor, D: Tensor) -> Tensor:
        ctx.save_for_backward(y, u, z, D)
        return native.mamba_gate_forward(y, u, z, D)

    @staticmethod
    def backward(ctx: Any, dout: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        y, u, z, D = ctx.saved_tensors
        return native.mamba_gate_backward(y, u, z, D, dout)


def mamba_gate(y: Tensor, u: Tensor, z: Tensor, D: Tensor) -> Tensor:
    """``(y + D u) * silu(z)``: :class:`MambaGate` where the compiled kernel runs, else PyTorch."""
    if native.usable(y, u, z, D):
        return MambaGate.apply(y, u, z, D)
    return (y + D * u) * F.silu(z)


def conv_step(x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
    """One step of :func:`conv_sequence`: ``x`` (batch, channels) -> output (batch, channels), new state."""
    window = torch.cat([conv_state.to(x.dtype), x.unsqueeze(1)], dim=1)  # (batch, width, channels)
    w = weight[:, 0, :].to(x.dtype)  # (channels, width)
    y = (window * w.t()).sum(1)
    if bias is not None:
        y = y + bias.to(x.dtype)
    return y, window[:, 1:]


# -- the selective scan (Mamba) -------------------------------------------------------------------------------------


class SelectiveScan(torch.autograd.Function):
    """Mamba's selective scan without its (seq, batch, inner, state) tensors: ``h_t = exp(delta_t A) h_{t-1} +
    delta_t u_t B_t``, ``y_t = h_t . C_t``, run over blocks of ``block`` time steps.

    u, delta: (seq, batch, D); A: (D, N); B, C: (seq, batch, N); h0: (batch, D, N) -> y (seq, batch, D) and the
    last state (batch, D, N). Only one block's (block, batch, D, N) tensors exist at a time; the backward keeps the
    state at each block's start and recomputes the block from it (the recompute the CUDA kernel also does, here
    in blocks of PyTorch ops), then runs the adjoint recurrence ``dh_{t-1} = exp(delta_t A) dh_t + C_t dy_t`` in
    reverse.
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor, block: int):
        ctx.block = block
        ctx.native = (
            A.size(1) <= native.MAX_STATE and block <= native.MAX_BLOCK and native.usable(u, delta, A, B, C, h0)
        )
        if ctx.native:  # the compiled loop (rnnkit.cells.native): the same arithmetic, one pass over memory
            y, h, starts = native.scan_forward(u, delta, A, B, C, h0, block)
            ctx.save_for_backward(u, delta, A, B, C, starts)
            return y, h
        T = u.size(0)
        du = delta * u  # (seq, batch, D)
        y = torch.empty_like(u)
        starts = []
        h = h0
        for t0 in range(0, T, block):
            sl = slice(t0, min(t0 + block, T))
            starts.append(h)
            dA, Hb = _block_forward(delta[sl], du[sl], A, B[sl], h)
            h = Hb[-1].clone()
            torch.matmul(Hb, C[sl].unsqueeze(-1), out=y[sl].unsqueeze(-1))
            del dA, Hb
        ctx.save_for_backward(u, delta, A, B, C, torch.stack(starts))
        return y, h

    @staticmethod
    def backward(ctx: Any, dy: Tensor | None, dh_T: Tensor | None):
        u, delta, A, B, C, starts = ctx.saved_tensors
        block = ctx.block
        if ctx.native:
            dy = torch.zeros_like(u) if dy is None else dy
            dh_T = torch.zeros_like(starts[0]) if dh_T is None else dh_T
            return (*native.scan_backward(u, delta, A, B, C, starts, dy, dh_T, block), None)
        T, batch, D = u.shape
        du = delta * u
        dy = torch.zeros_like(u) if dy is None else dy.contiguous()
        dh = torch.zeros_like(starts[0]) if dh_T is None else dh_T.clone()  # gradient at the block's end
        d_du = torch.empty_like(u)
        d_delta = torch.empty_like(delta)
        dB, dC = torch.empty_like(B), torch.empty_like(C)
        dA_total = torch.zeros_like(A)
        n_blocks = starts.size(0)
        for k in range(n_blocks - 1, -1, -1):
            sl = slice(k * block, min((k + 1) * block, T))
            h_start = starts[k]
            dA, Hb = _block_forward(delta[sl], du[sl], A, B[sl], h_start)
            # G_t: the gradient reaching h_t from y_t, then (reverse loop) from every later step too
            G = dy[sl].unsqueeze(-1) * C[sl].unsqueeze(-2)  # (l, batch, D, N)
            for j in range(G.size(0) - 1, -1, -1):
                G[j].add_(dh)
                dh = dA[j] * G[j]  # the gradient reaching h_{j-1}
            torch.matmul(Hb.transpose(-1, -2), dy[sl].unsqueeze(-1), out=dC[sl].unsqueeze(-1))
            torch.matmul(G, B[sl].unsqueeze(-1), out=d_du[sl].unsqueeze(-1))  # d(delta u)
            torch.matmul(du[sl].unsqueeze(-2), G, out=dB[sl].unsqueeze(-2))
            # the gradient of the exponent delta_t A: G_t * h_{t-1} * exp(delta_t A)
            G[1:].mul_(Hb[:-1])
            G[0].mul_(h_start)
            G.mul_(dA)
            del dA, Hb
            dA_total += torch.einsum("lbdn,lbd->dn", G, delta[sl])
            torch.sum(G.mul_(A), dim=-1, out=d_delta[sl])
        d_u = d_du * delta
        d_delta += d_du * u
        return d_u, d_delta, dA_total, dB, dC, dh, None


def _block_forward(delta: Tensor, du: Tensor, A: Tensor, B: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    """One block of the selective scan from state ``h``: ``(exp(delta A), every h_t)``, each (l, batch, D, N)."""
    dA = torch.exp(delta.unsqueeze(-1) * A)
    Hb = du.unsqueeze(-1) * B.unsqueeze(-2)  # delta u B, then (in place) the states
    for j in range(Hb.size(0)):
        h = torch.addcmul(Hb[j], dA[j], h, out=Hb[j])
    return dA, Hb


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor, block: int = 16):
    """See :class:`SelectiveScan`: ``(y (seq, batch, D), h_last (batch, D, N))``."""
    return SelectiveScan.apply(u, delta, A, B, C, h0, block)


class MambaScan(torch.autograd.Function):
    """Mamba's ``delta = softplus(dt)``, selective scan and output gate ``(y + D u) * silu(z)`` in the compiled
    scan's one pass forward and one backward (:mod:`rnnkit.cells.native`, ``raw`` and the gate).

    Why: as three steps (softplus, :class:`SelectiveScan`, :class:`MambaGate`) each is its own pass over
    (seq, batch, inner) and its own tensor of that size each way - delta, y and the gate's gradients - and on a
    CPU a fresh tensor of that size is fresh pages the kernel must fault in and zero. Here delta and y live one
    value at a time inside the loop (y recomputed in the backward with the states), so neither exists as a tensor.
    u, dt (seq, batch, D); A (D, N); B, C (seq, batch, N); D (D,); z (seq, batch, D) with evenly spaced rows;
    h0 (batch, D, N) -> the gated output (seq, batch, D) and the last state (batch, D, N)."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, z: Tensor, h0: Tensor,
                block: int):  # fmt: skip
        out, h, starts = native.scan_forward(u, dt, A, B, C, h0, block, raw=True, gate=(z, D))
        ctx.save_for_backward(u, dt, A, B, C, D, z, starts)
        ctx.block = block
        return out, h

    @staticmethod
    def backward(ctx: Any, dout: Tensor | None, dh_T: Tensor | None):
        u, dt, A, B, C, D, z, starts = ctx.saved_tensors
        dout = torch.zeros_like(u) if dout is None else dout
        dh_T = torch.zeros_like(starts[0]) if dh_T is None else dh_T
        d_u, d_dt, dA, dB, dC, dh0, dz, dD = native.scan_backward(
            u, dt, A, B, C, starts, dout, dh_T, ctx.block, raw=True, gate=(z, D)
        )
        return d_u, d_dt, dA, dB, dC, dD, dz, dh0, None


def mamba_scan(
    u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, z: Tensor, h0: Tensor, block: int = 16
) -> tuple[Tensor, Tensor]:
    """``((selective_scan(u, softplus(dt), A, B, C) + D u) * silu(z), h_last)``: :class:`MambaScan` where the
    compiled kernel runs, else the three steps in PyTorch. A step with ``dt = -inf`` has delta = 0: the state stays."""
    if A.size(1) <= native.MAX_STATE and block <= native.MAX_BLOCK and native.usable(u, dt, A, B, C, D, z, h0):
        return MambaScan.apply(u, dt, A, B, C, D, z, h0, block)
    y, h = selective_scan(u, F.softplus(dt), A, B, C, h0, block)
    return mamba_gate(y, u, z, D), h

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

from typing import Any

import torch
from torch import Tensor


class LinearScan(torch.autograd.Function):
    """``h_t = a_t * h_{t-1} + b_t`` over dim 0: ``a``, ``b`` (seq, ...), ``h0`` (...) -> all ``h_t`` (seq, ...)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        H = torch.empty_like(b)
        h = h0
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


# -- causal depthwise convolution --------------------------------------------------------------------------------
# weight (channels, 1, width) as nn.Conv1d(groups=channels) holds it; the state is the last width - 1 inputs,
# oldest first: (batch, width - 1, channels).


def conv_sequence(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None, lengths: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Causal depthwise convolution over ``x`` (seq, batch, channels) continuing from ``conv_state``; returns the
    output (seq, batch, channels) and the state after each sequence's length."""
    width = weight.size(-1)
    seq = x.size(0)
    full = torch.cat([conv_state.transpose(0, 1).to(x.dtype), x])  # (width - 1 + seq, batch, channels)
    w = weight[:, 0, :].to(x.dtype)  # (channels, width)
    y = full[0:seq] * w[:, 0]
    for j in range(1, width):
        y = torch.addcmul(y, full[j : j + seq], w[:, j])
    if bias is not None:
        y = y + bias.to(x.dtype)
    if lengths is None:
        new = full[seq:]  # (width - 1, batch, channels)
    else:  # the width - 1 inputs up to each sequence's length: full[L .. L + width - 2]
        index = lengths.view(1, -1, 1) + torch.arange(width - 1, device=x.device).view(-1, 1, 1)
        new = full.gather(0, index.expand(width - 1, -1, full.size(-1)))
    return y, new.transpose(0, 1)


def conv_step(x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
    """One step of :func:`conv_sequence`: ``x`` (batch, channels) -> output (batch, channels), new state."""
    window = torch.cat([conv_state.to(x.dtype), x.unsqueeze(1)], dim=1)  # (batch, width, channels)
    w = weight[:, 0, :].to(x.dtype)  # (channels, width)
    y = (window * w.t()).sum(1)
    if bias is not None:
        y = y + bias.to(x.dtype)
    return y, window[:, 1:]

"""An LSTM layer as a few large GEMMs plus one small product per step, in a low-precision compute dtype with the
cell state and every element-wise step in fp32: the "projected" recurrence, next to the fused ``nn.LSTM``.

Why: under bf16 autocast oneDNN's LSTM ran only 1.2x its fp32 time on a CPU with bf16 units (136 vs 164 ms for
2x650, 35x20 steps, forward + backward), while a plain bf16 matmul ran 2-4x fp32. Most of an LSTM's arithmetic
does not depend on the recurrence: the input half of the gates for every step is one ``(seq * batch, input) x
(input, 4H)`` GEMM, and in the backward pass the gradients of ``W_ih``, ``W_hh``, the bias and the input are each
one GEMM over all steps once the per-step gate gradients are known. Only ``h_{t-1} W_hh^T`` (forward) and
``dgates_t W_hh`` (backward) stay in the time loop. Those GEMMs run in ``dtype`` (bf16 / fp16 operands, fp32
accumulation inside the kernel); the gate pre-activations, ``c_t``, ``tanh(c_t)`` and the whole gate-gradient
recurrence (``dc``) are fp32, and every weight gradient is returned in the weight's own dtype (fp32 masters).

The backward is written by hand (one ``autograd.Function`` per layer): autograd over a Python loop would record
~10 nodes per step and sum ``seq`` separate weight gradients; here the loop does 5 small ops per step, and the
element-wise factors that do not depend on ``dc`` (``g * i (1 - i)``, ``c_{t-1} * f (1 - f)``, ...) are computed
for all steps at once before it.

Layout and names are ``nn.LSTM``'s (gates ``i, f, g, o``; ``weight_ih_l{k}``...), so :func:`lstm_stack` runs on
the parameters of a :class:`~rnnkit.cells.kernel.KernelLSTM` directly: which implementation runs is a per-call
choice (``rnnkit.cells.select``), never a different model or checkpoint. Each layer reads its sizes from its
own weights, so layers of different hidden sizes need nothing more here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells.dropout import dropout


class _LSTMLayer(torch.autograd.Function):
    """One unidirectional LSTM layer over a whole sequence; see the module docstring."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        dtype: torch.dtype,
    ) -> tuple[Tensor, Tensor, Tensor]:
        # x: (seq, batch, input); h0, c0: (batch, hidden); w_ih: (4H, input); w_hh: (4H, H); b_*: (4H,)
        seq, batch, _ = x.shape
        hidden = w_hh.size(1)
        low = dtype in (torch.bfloat16, torch.float16)
        acc = torch.float64 if dtype == torch.float64 else torch.float32  # the state's and the gates' dtype
        xc = x.to(dtype)
        wih, whh_t = w_ih.to(dtype), w_hh.to(dtype).t()  # whh_t: (H, 4H)
        # pre-activations of all gates, then (in place) their activations: (seq, batch, 4H), fp32
        G = torch.empty(seq, batch, 4 * hidden, dtype=acc, device=x.device)
        bias = None
        if b_ih is not None:
            bias = (b_ih + b_hh if b_hh is not None else b_ih).to(acc)
        flat_x = xc.reshape(seq * batch, -1)
        if low:
            gx = torch.mm(flat_x, wih.t())  # (seq * batch, 4H) in dtype
            if bias is not None:
                torch.add(gx.view_as(G), bias, out=G)
            else:
                G.copy_(gx.view_as(G))
            del gx
        elif bias is not None:
            torch.addmm(bias, flat_x, wih.t(), out=G.view(seq * batch, -1))
        else:
            torch.mm(flat_x, wih.t(), out=G.view(seq * batch, -1))
        C = torch.empty(seq, batch, hidden, dtype=acc, device=x.device)  # c_t
        TC = torch.empty_like(C)  # tanh(c_t)
        Hs = torch.empty(seq, batch, hidden, dtype=dtype, device=x.device)  # h_t, the layer's output
        h, c = h0.to(dtype), c0.to(acc)
        H2, H3 = 2 * hidden, 3 * hidden
        for t in range(seq):
            g = G[t]  # (batch, 4H)
            if low:
                g.add_(torch.mm(h, whh_t))
            else:
                g.addmm_(h, whh_t)
            g[:, :H2].sigmoid_()  # i, f
            g[:, H2:H3].tanh_()  # g
            g[:, H3:].sigmoid_()  # o
            ct = C[t]
            torch.mul(g[:, hidden:H2], c, out=ct)
            ct.addcmul_(g[:, :hidden], g[:, H2:H3])  # c_t = f c_{t-1} + i g
            torch.tanh(ct, out=TC[t])
            torch.mul(g[:, H3:], TC[t], out=Hs[t])  # h_t = o tanh(c_t), rounded to dtype once
            h, c = Hs[t], ct
        ctx.save_for_backward(xc, h0, c0, wih, whh_t, G, C, TC, Hs)
        ctx.dtype, ctx.x_dtype, ctx.w_dtype = dtype, x.dtype, w_ih.dtype
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        h_n = Hs[-1].to(h0.dtype) if h0.dtype != dtype else Hs[-1].clone()
        return Hs, h_n, C[-1].clone()

    @staticmethod
    def backward(ctx: Any, d_out: Tensor | None, dh_n: Tensor | None, dc_n: Tensor | None) -> tuple[Any, ...]:
        xc, h0, c0, wih, whh_t, G, C, TC, Hs = ctx.saved_tensors
        dtype = ctx.dtype
        low = dtype in (torch.bfloat16, torch.float16)
        acc = G.dtype
        seq, batch, H4 = G.shape
        hidden = H4 // 4
        H2, H3 = 2 * hidden, 3 * hidden
        i, f, g, o = G[..., :hidden], G[..., hidden:H2], G[..., H2:H3], G[..., H3:]
        c_prev = torch.cat([c0.to(acc).unsqueeze(0), C[:-1]])  # (seq, batch, H)
        # what multiplies dc_t (gates i, f, g) or dh_t (gate o) to give each pre-activation's gradient
        Q = torch.empty_like(G)
        torch.mul(g, i * (1 - i), out=Q[..., :hidden])
        torch.mul(c_prev, f * (1 - f), out=Q[..., hidden:H2])
        torch.mul(i, 1 - g * g, out=Q[..., H2:H3])
        torch.mul(TC, o * (1 - o), out=Q[..., H3:])
        Ko = o * (1 - TC * TC)  # dc_t += dh_t * Ko_t
        del c_prev
        dH = d_out.to(acc) if d_out is not None else torch.zeros(seq, batch, hidden, dtype=acc, device=G.device)
        if dh_n is not None:
            if d_out is not None and dH.data_ptr() == d_out.data_ptr():
                dH = dH.clone()  # never write into the incoming gradient
            dH[-1] += dh_n.to(acc)
        DP = torch.empty(seq, batch, H4, dtype=dtype, device=G.device)  # gate pre-activation gradients
        whh = whh_t.t()  # (4H, H)
        dc_next = dc_n.to(acc) if dc_n is not None else torch.zeros(batch, hidden, dtype=acc, device=G.device)
        dh = dH[-1]
        for t in range(seq - 1, -1, -1):
            dc = torch.addcmul(dc_next, dh, Ko[t])  # (batch, H)
            dp = DP[t]
            torch.mul(Q[t, :, :H3].view(batch, 3, hidden), dc.unsqueeze(1), out=dp[:, :H3].view(batch, 3, hidden))
            torch.mul(Q[t, :, H3:], dh, out=dp[:, H3:])
            dc_next = dc * f[t]
            if low:  # the bf16 product added to the fp32 gradient by type promotion: no cast per step
                dh = dH[t - 1] + torch.mm(dp, whh) if t > 0 else torch.mm(dp, whh).to(acc)
            else:
                dh = torch.addmm(dH[t - 1], dp, whh) if t > 0 else torch.mm(dp, whh)
        need = ctx.needs_input_grad
        flat = DP.view(seq * batch, H4)
        dx = torch.mm(flat, wih).view(seq, batch, -1).to(ctx.x_dtype) if need[0] else None
        dh0 = dh.to(h0.dtype) if need[1] else None
        dc0 = dc_next.to(c0.dtype) if need[2] else None
        dw_ih = dw_hh = None
        if need[3]:  # (input, 4H) product then a transposed view: the faster layout for BLAS
            dw_ih = torch.mm(xc.reshape(seq * batch, -1).t(), flat).t().to(ctx.w_dtype)
        if need[4]:
            h_prev = torch.cat([h0.to(dtype).unsqueeze(0), Hs[:-1]]).view(seq * batch, hidden)
            dw_hh = torch.mm(h_prev.t(), flat).t().to(ctx.w_dtype)
        db = flat.sum(0, dtype=acc).to(ctx.w_dtype) if any(ctx.has_bias) and (need[5] or need[6]) else None
        return (dx, dh0, dc0, dw_ih, dw_hh, db if ctx.has_bias[0] else None, db if ctx.has_bias[1] else None, None)


def lstm_stack(
    lstm: nn.LSTM, x: Tensor, state: tuple[Tensor, Tensor] | None, dtype: torch.dtype
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """``lstm(x, state)`` (unidirectional, no projection, time-major) computed layer by layer with
    ``_LSTMLayer`` on the module's own parameters, with ``nn.LSTM``'s dropout between layers in training mode.

    ``x``: (seq, batch, input); ``state``: ``(h0, c0)``, each (layers, batch, hidden), or None for zeros.
    Returns the last layer's output (seq, batch, hidden) in ``dtype`` and ``(h_n, c_n)`` in fp32 (the state a
    task carries to the next batch), like ``nn.LSTM``'s shapes.
    """
    batch = x.size(1)
    out = x
    hs: list[Tensor] = []
    cs: list[Tensor] = []
    for k in range(lstm.num_layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
        b_ih = getattr(lstm, f"bias_ih_l{k}") if lstm.bias else None
        b_hh = getattr(lstm, f"bias_hh_l{k}") if lstm.bias else None
        hidden = w_hh.size(1)
        if state is None:
            h0 = c0 = torch.zeros(batch, hidden, dtype=w_hh.dtype, device=x.device)
        else:
            h0, c0 = state[0][k], state[1][k]
        if k > 0 and lstm.dropout and lstm.training:
            out = dropout(out, lstm.dropout)
        out, h_n, c_n = _LSTMLayer.apply(out, h0, c0, w_ih, w_hh, b_ih, b_hh, dtype)
        hs.append(h_n)
        cs.append(c_n)
    return out, (torch.stack(hs), torch.stack(cs))

"""The mLSTM's matrix memory over a whole sequence in the chunkwise-parallel form, with a hand-written backward.

The recurrence (per batch row and head; ``k`` already divided by sqrt(d)):

    m_t = max(log f_t + m_{t-1}, i_t)
    C_t = exp(log f_t + m_{t-1} - m_t) C_{t-1} + exp(i_t - m_t) k_t v_t^T      (n_t likewise with k_t)
    h_t = C_t^T q_t / (max(|n_t . q_t|, exp(-m_t)) + eps)

The sequence is cut into chunks of ``L`` steps. With ``F`` the cumulative sum of ``log f`` inside a chunk,
``a_s = i_s - F_s`` and ``m^c`` the stabiliser at the chunk's start, the step's stabiliser is, in closed form,
``m_t = F_t + b_t`` with ``b_t = max(m^c, max_{s<=t} a_s)`` (a ``cummax``), and

    h_t = [sum_{s<=t} (q_t . k_s) D_ts v_s + carry_t C^c^T q_t] / den_t,   D_ts = exp(a_s - b_t),
    carry_t = exp(m^c - b_t),   C^{c+1} = carry_L C^c + sum_s D_Ls k_s v_s^T        (every exponent <= 0)

Every chunk's intra-chunk part is one batched product over all chunks at once (the quadratic, attention-like
form), the memory at each chunk's start comes from a short loop over the chunks (one ``d x d`` update each),
and the read of that memory is one more batched product: ``4`` GEMMs forward, ``8`` backward, each batched over
(chunks, batch, heads). This is the structure of the xLSTM authors' chunkwise kernels (Beck et al. 2025,
"Tiled Flash Linear Attention"; the ``mlstm_kernels`` package): states at chunk boundaries by a recurrence,
outputs in parallel, and the backward the same in reverse (the gradient of the memory carried back over the
chunks, then every chunk's gradients in parallel).

Why by hand: autograd over the same products keeps each of their inputs and outputs per chunk and records a
node per op (at batch 32, T = 1,024, two layers of width 256, 3.7 GB and several seconds of bookkeeping); here
the forward keeps the inputs, the chunk states, the (chunk x chunk) gate matrices and ``h``, and the backward
needs no other recomputation. The gradient through the stabiliser ``m`` (which reaches the output through the
``exp(-m)`` floor of the denominator and the ``eps``) is carried exactly, along the ``max``'s selected branch,
as autograd over the step does, so the form equals the step to rounding (tests/cells/test_modern.py).

Layout: chunk-major, so each chunk's tensors are one contiguous block and the loops over chunks index dim 0:
q, k, v, h (chunks, batch, heads, L, d); gates (chunks, batch, heads, L); states (batch, heads, d, d) etc.
"""

# ruff: noqa: N803, N806  (tensor names follow the equations: C, D, F, L...)

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

EPS = 1e-6


def _stabiliser(i_pre: Tensor, log_f: Tensor, m0: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(F, a, b, the cummax's argmax, m at every chunk start (chunks + 1, batch, heads)); see the module docstring."""
    F = log_f.cumsum(-1)  # (nc, B, H, L)
    a = i_pre - F
    cm, idx = a.cummax(-1)
    nc = F.size(0)
    mc = torch.empty(nc + 1, *m0.shape, dtype=m0.dtype, device=m0.device)
    mc[0] = m0
    for c in range(nc):  # m at the next chunk's start: F_L + max(m^c, cm_L); a few (batch, heads) ops per chunk
        torch.add(F[c, ..., -1], torch.maximum(mc[c], cm[c, ..., -1]), out=mc[c + 1])
    b = torch.maximum(mc[:-1].unsqueeze(-1), cm)
    return F, a, b, idx, mc


def _bmm(x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
    """Batched matrix product over every leading dim (contiguous operands: one flat batched GEMM)."""
    lead = x.shape[:-2]
    r = torch.bmm(x.reshape(-1, *x.shape[-2:]), y.reshape(-1, *y.shape[-2:]), out=None if out is None else out)
    return r.view(*lead, *r.shape[-2:])


def _chunks(t: Tensor, L: int, fill: float = 0.0, scale: float = 1.0) -> Tensor:
    """(T, B, H, ...) -> (nc, B, H, L, ...) contiguous, padded to whole chunks with ``fill``, times ``scale``."""
    T = t.size(0)
    nc, rem = -(-T // L), T % L
    out = t.new_empty(nc, *t.shape[1:3], L, *t.shape[3:])
    steps = out.movedim(3, 1)  # (nc, L, B, H, ...): a view of ``out``
    full = T // L

    def put(dst: Tensor, src: Tensor) -> None:
        if scale == 1.0:
            dst.copy_(src)
        else:
            torch.mul(src, scale, out=dst)

    put(steps[:full], t[: full * L].view(full, L, *t.shape[1:]))
    if rem:
        put(steps[full, :rem], t[full * L :])
        steps[full, rem:].fill_(fill)
    return out


def _unchunk(t: Tensor, T: int) -> Tensor:
    """(nc, B, H, L, ...) -> (T, B, H, ...) contiguous: :func:`_chunks` undone."""
    return t.movedim(3, 1).reshape(-1, *t.shape[1:3], *t.shape[4:])[:T].contiguous()


class ChunkwiseMLSTM(torch.autograd.Function):
    """q, k, v: (T, B, H, d); i_pre, log_f: (T, B, H); C0: (B, H, d, d); n0: (B, H, d); m0: (B, H); chunks of L
    steps, ``k`` read times ``scale`` -> h (T, B, H, d) and the state after the last step: C, n, m.

    The chunk-major copies live only inside forward and backward: the saved tensors are the inputs themselves
    (the gates' linear keeps them anyway) and the output, so the layout costs passes over memory, not memory."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, i_pre: Tensor, log_f: Tensor, C0: Tensor, n0: Tensor,
                m0: Tensor, L: int, scale: float):  # fmt: skip
        with torch.autocast(q.device.type, enabled=False):  # the products run in the inputs' dtype (fp32 masters)
            return _forward(ctx, q, k, v, i_pre, log_f, C0, n0, m0, L, scale)

    @staticmethod
    def backward(ctx: Any, dh: Tensor | None, dC_T: Tensor | None, dn_T: Tensor | None, dm_T: Tensor | None):
        with torch.autocast(ctx.device_type, enabled=False):
            return (*_backward(ctx, dh, dC_T, dn_T, dm_T), None, None)


def _forward(ctx: Any, q_seq: Tensor, k_seq: Tensor, v_seq: Tensor, i_seq: Tensor, f_seq: Tensor, C0: Tensor,
             n0: Tensor, m0: Tensor, L: int, scale: float):  # fmt: skip
    ctx.device_type = q_seq.device.type
    ctx.L, ctx.scale = L, scale
    T = q_seq.size(0)
    q, k, v = _chunks(q_seq, L), _chunks(k_seq, L, scale=scale), _chunks(v_seq, L)
    i_pre, log_f = _chunks(i_seq, L, float("-inf")), _chunks(f_seq, L)
    nc, B, H, L, d = q.shape
    F, _, b, idx, mc = _stabiliser(i_pre, log_f, m0)
    m = F + b  # the step's m_t
    # D_ts = exp(a_s - b_t) for s <= t, its exponent summed as (F_t - F_s) + (i_s - m_t): terms of the size of m
    # and of the gates since s, not of the cumulative sums (a fp32 gradient several times closer to fp64)
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    D = F.unsqueeze(-1) - F.unsqueeze(-2)
    D += i_pre.unsqueeze(-2) - m.unsqueeze(-1)
    D.masked_fill_(~causal, float("-inf")).exp_()  # (nc, B, H, L, L)
    carry = torch.exp(mc[:-1].unsqueeze(-1) + F - m)  # (nc, B, H, L)
    S = _bmm(q, k.transpose(-1, -2)).mul_(D)
    num = _bmm(S, v)  # (nc, B, H, L, d)
    qn = S.sum(-1)
    # the memory at every chunk's start: its own chunk's part in one product, then the carry, chunk by chunk
    kw = k * D[..., -1, :].unsqueeze(-1)
    Cs = torch.empty(nc + 1, B, H, d, d, dtype=q.dtype, device=q.device)
    Cs[0] = C0
    _bmm(kw.transpose(-1, -2), v, out=Cs[1:].view(-1, d, d))
    ns = torch.cat([n0.unsqueeze(0), kw.sum(-2)])  # (nc + 1, B, H, d)
    del kw
    decay = carry[..., -1]  # (nc, B, H)
    for c in range(nc):
        Cs[c + 1].addcmul_(Cs[c], decay[c][..., None, None])
        ns[c + 1].addcmul_(ns[c], decay[c][..., None])
    # what the memory held at the chunk's start, read at weight carry_t
    qc = q * carry.unsqueeze(-1)
    num.view(-1, L, d).baddbmm_(qc.view(-1, L, d), Cs[:-1].reshape(-1, d, d))
    qn.view(-1, L, 1).baddbmm_(qc.view(-1, L, d), ns[:-1].reshape(-1, d, 1))  # += n . (carry_t q_t)
    del qc
    den = torch.maximum(qn.abs(), torch.exp(-m)) + EPS
    h_seq = _unchunk(num.div_(den.unsqueeze(-1)), T)
    del q, k, v, num
    ctx.save_for_backward(q_seq, k_seq, v_seq, F, b, idx, mc, D, S, Cs, ns, qn, h_seq)
    return h_seq, Cs[-1].clone(), ns[-1].clone(), mc[-1].clone()


def _backward(ctx: Any, dh: Tensor | None, dC_T: Tensor | None, dn_T: Tensor | None, dm_T: Tensor | None):
    q_seq, k_seq, v_seq, F, b, idx, mc, D, S, Cs, ns, qn, h_seq = ctx.saved_tensors
    L, T = ctx.L, q_seq.size(0)
    q, k, v = _chunks(q_seq, L), _chunks(k_seq, L, scale=ctx.scale), _chunks(v_seq, L)
    nc, B, H, L, d = q.shape
    dh = torch.zeros_like(h_seq) if dh is None else dh
    m = F + b
    floor = torch.exp(-m)
    big = qn.abs() >= floor  # the denominator's branch
    den = torch.where(big, qn.abs(), floor) + EPS
    dnum = _chunks(dh, L).div_(den.unsqueeze(-1))  # (nc, B, H, L, d)
    dden = -_chunks((dh * h_seq).sum(-1), L) / den
    del dh
    dqn = torch.where(big, dden * qn.sign(), 0.0)
    db = torch.where(big, 0.0, -dden * floor)  # through exp(-m_t); m_t = F_t + b_t
    dF = db.clone()
    carry = torch.exp(mc[:-1].unsqueeze(-1) + F - m)
    decay = carry[..., -1]

    # intra-chunk: S = (q k^T) * D, num = S v, qn = rowsum(S)
    dS = _bmm(dnum, v.transpose(-1, -2)).add_(dqn.unsqueeze(-1))  # (nc, B, H, L, L)
    dv = _bmm(S.transpose(-1, -2), dnum)
    dE = dS * S  # the gradient of each exponent a_s - b_t
    dS.mul_(D)  # now d(q k^T)
    dq = _bmm(dS, k)
    dk = _bmm(dS.transpose(-1, -2), q)
    del dS
    # the read of the chunk-start memory: carry_t (C^T q_t, n . q_t)
    CdN = _bmm(dnum, Cs[:-1].transpose(-1, -2))  # (C dnum_t)_t
    nq = _bmm(q, ns[:-1].unsqueeze(-1)).squeeze(-1)  # n . q_t: a product, not an (L x d) temporary
    dcarry = (q * CdN).sum(-1) + dqn * nq
    dq.addcmul_(CdN.addcmul_(dqn.unsqueeze(-1), ns[:-1].unsqueeze(-2)), carry.unsqueeze(-1))
    del CdN
    dE_carry = dcarry * carry  # (nc, B, H, L)
    # the gradient of the memory at each chunk's start, carried back over the chunks
    dCs = torch.empty_like(Cs)
    _bmm((q * carry.unsqueeze(-1)).transpose(-1, -2), dnum, out=dCs[:-1].view(-1, d, d))
    dns = torch.empty_like(ns)
    _bmm((carry * dqn).unsqueeze(-2), q, out=dns[:-1].view(-1, 1, d))  # sum_t carry_t dqn_t q_t
    del q, dnum
    dq = _unchunk(dq, T)
    if dC_T is None:
        dCs[-1].zero_()
    else:
        dCs[-1].copy_(dC_T)
    if dn_T is None:
        dns[-1].zero_()
    else:
        dns[-1].copy_(dn_T)
    for c in range(nc - 1, -1, -1):
        dCs[c].addcmul_(dCs[c + 1], decay[c][..., None, None])
        dns[c].addcmul_(dns[c + 1], decay[c][..., None])
    # each chunk's write into the memory at its end: C^{c+1} = decay C^c + sum_s w_s k_s v_s^T, w = D's last row
    G, gn = dCs[1:], dns[1:]
    w = D[..., -1, :]
    VG = _bmm(v, G.transpose(-1, -2)).add_(gn.unsqueeze(-2))  # (G v_s + gn)_s
    dw = (k * VG).sum(-1)
    dk.addcmul_(VG, w.unsqueeze(-1))
    del VG
    dv.addcmul_(_bmm(k, G), w.unsqueeze(-1))
    # <G, C^c> per chunk as one (1 x d^2) (d^2 x 1) product each: no (d x d) temporary per chunk
    ddecay = torch.bmm(G.reshape(-1, 1, d * d), Cs[:-1].reshape(-1, d * d, 1)).view(nc, B, H)
    ddecay += (gn * ns[:-1]).sum(-1)
    dE[..., -1, :] += dw * w
    dE_carry[..., -1] += ddecay * decay
    # exponents -> a, b, m^c
    da = dE.sum(-2)  # (nc, B, H, L)
    db -= dE.sum(-1) + dE_carry
    del dE
    # b_t = max(m^c, cummax(a)_t): its gradient goes to m^c (where b_t is m^c: exactly, as max returns it) or to
    # the a_s that attained the cummax; m^c is the previous chunk's m_L = F_L + b_L: a short loop back
    sel = b == mc[:-1].unsqueeze(-1)
    local = dE_carry.sum(-1) + (db * sel).sum(-1)  # (nc, B, H): d m^c, less what arrives through b_L
    J = torch.empty_like(mc)
    if dm_T is None:
        J[-1].zero_()
    else:
        J[-1].copy_(dm_T)
    sel_last = sel[..., -1]
    for c in range(nc - 1, -1, -1):
        torch.addcmul(local[c], J[c + 1], sel_last[c], out=J[c])
    db[..., -1] += J[1:]
    dF[..., -1] += J[1:]
    da.scatter_add_(-1, idx, db.masked_fill_(sel, 0.0))
    dF -= da  # a = i - F
    dlog_f = dF.flip(-1).cumsum(-1).flip(-1)  # F = cumsum(log f) within the chunk
    dk = _unchunk(dk.mul_(ctx.scale), T) if ctx.scale != 1.0 else _unchunk(dk, T)
    return dq, dk, _unchunk(dv, T), _unchunk(da, T), _unchunk(dlog_f, T), dCs[0], dns[0], J[0]


def chunkwise_mlstm(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    i_pre: Tensor,
    log_f: Tensor,
    C0: Tensor,
    n0: Tensor,
    m0: Tensor,
    chunk: int,
    scale: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The mLSTM memory over a sequence: q, k, v (seq, batch, heads, d), k read as ``scale * k`` (1 / sqrt(d));
    i_pre, log_f (seq, batch, heads); C0 (batch, heads, d, d), n0 (batch, heads, d), m0 (batch, heads) -> h~
    (seq, batch, heads, d) and the state after the last step. A step past a sequence's end must have
    ``log_f = 0`` and ``i_pre = -inf`` (the state stays as it was). The sequence is padded to whole chunks with
    such steps."""
    L = max(1, min(chunk, q.size(0)))
    return ChunkwiseMLSTM.apply(q, k, v, i_pre, log_f, C0, n0, m0, L, scale)

"""sLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"): an LSTM with exponential input and forget
gates, a normaliser state ``n`` and a stabiliser state ``m``, and block-diagonal (per-head) recurrent weights.

One layer is the xLSTM sLSTM layer (the ``xlstm`` package's ``sLSTMLayer``: its block minus the residual, the
pre-norm and the feed-forward): ``x_c = silu(causal_conv(x))`` (when ``conv_size > 0``), then

    i~, f~ = W_i x_c, W_f x_c        z~, o~ = W_z x, W_o x        (+ R_g h_{t-1} + b_g, R per head)
    m_t = max(log sigmoid(f~_t) + m_{t-1}, i~_t)
    i_t = exp(i~_t - m_t)     f_t = exp(log sigmoid(f~_t) + m_{t-1} - m_t)
    c_t = f_t c_{t-1} + i_t tanh(z~_t)     n_t = f_t n_{t-1} + i_t     h_t = sigmoid(o~_t) c_t / n_t
    output: GroupNorm_heads(h_t)

``c`` and ``n`` are held divided by ``exp(m)``; ``h`` does not depend on that scaling. The stabiliser follows the
paper from ``m_0 = 0``; the package instead sets ``m_1 = i~_1`` on a zero state (a data-dependent branch),
which changes ``m``, ``c`` and ``n`` by a common factor ``exp(m)`` but never ``h`` or the output - the reference
test compares the output, ``h`` and ``c / n``.

The recurrence is inherently sequential (``h`` feeds every gate), so the fast form is the same loop with the
backward written by hand (:class:`SLSTMScan`, like ``rnnkit.cells.projected``): autograd over the loop would
record ~20 nodes and keep ~20 tensors per step.

Sizes: a layer maps ``input_size`` -> ``hidden_size`` (the package requires them equal and makes W block-diagonal
per head too; rnnkit's W is dense, which holds the package's as a special case: the reference test copies its
blocks onto the diagonal). ``spec.heads`` (default 4) divide ``hidden_size``. State: ``conv`` (L*D, batch,
conv_size - 1, channels) when conv_size > 0 - the last inputs, ``channels`` the input size, or in a stack whose
first layer's input size differs from hidden * directions the larger of the two (each layer uses its first
``input`` channels, the rest stay zero) - then ``h``, ``c``, ``n``, ``m`` (L*D, batch, hidden).

Names: ``proj_if`` (rows: i, f; the package's ``igate``/``fgate``, whose outputs it swaps: its ``fgate``
module's output is used as ``i``), ``proj_zo`` (rows z, o), ``recurrent`` (heads, 4 * d, d; rows gate-major) =
the package's ``recurrent_kernel`` (heads, d, 4, d) permuted, ``bias`` (4 * hidden, gate-major), ``conv1d``,
``norm_weight`` = ``1 + group_norm.weight``.
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
from rnnkit.cells.modern import Core, ModernRecurrent, States, compute_dtype, time_mask
from rnnkit.cells.scan import conv_silu_sequence, conv_step, one_thread

DOC = "sLSTM (Beck et al. 2024, xLSTM): exponential gating with normaliser and stabiliser, per-head recurrence"
OPTIONS = {"bidirectional": True, "per_layer_sizes": True, "dropout": True, "forget_bias": True}


def conv_width(spec: RecurrentSpec) -> int:
    """Channels of the conv state: the layer's input size, or in a stack whose first layer's input differs from
    the others' (hidden * directions) the wider of the two, so every layer's state stacks into one tensor."""
    return spec.input_size if spec.num_layers == 1 else max(spec.input_size, spec.output_size)


def state_names(spec: RecurrentSpec) -> tuple[str, ...]:
    return (("conv",) if spec.conv_size > 0 else ()) + ("h", "c", "n", "m")


class SLSTMCore(Core):
    state_names = ("conv", "h", "c", "n", "m")

    def __init__(self, spec: RecurrentSpec, input_size: int) -> None:
        super().__init__(spec, input_size)
        H = self.hidden_size
        self.heads = spec.heads
        if H % self.heads:
            raise ValueError(f"slstm: hidden_size {H} must divide into heads = {self.heads}")
        self.head_dim = H // self.heads
        self.conv_size = spec.conv_size
        self.conv_width = conv_width(spec)
        self.state_names = state_names(spec)
        self.conv1d = nn.Conv1d(input_size, input_size, spec.conv_size, groups=input_size) if spec.conv_size else None
        self.proj_if = nn.Linear(input_size, 2 * H, bias=False)
        self.proj_zo = nn.Linear(input_size, 2 * H, bias=False)
        self.recurrent = nn.Parameter(torch.empty(self.heads, 4 * self.head_dim, self.head_dim))
        self.bias = nn.Parameter(torch.zeros(4 * H)) if spec.bias else None
        self.norm_weight = nn.Parameter(torch.ones(H))
        self.reset_parameters(spec.forget_bias)

    def reset_parameters(self, forget_bias: float = 0.0) -> None:
        """The package's initialisation, except a uniform +-1/sqrt(d) recurrent matrix (the package starts it at
        zero): input projections N(0, 2/(5 input)), forget-gate biases spread over -5..7 per head (its
        ``powerlaw_blockdependent``, first block), other biases zero."""
        std = math.sqrt(2 / (5 * self.input_size))
        nn.init.normal_(self.proj_if.weight, 0.0, std)
        nn.init.normal_(self.proj_zo.weight, 0.0, std)
        bound = 1 / math.sqrt(self.head_dim)
        nn.init.uniform_(self.recurrent, -bound, bound)
        if self.bias is not None:
            H, d = self.hidden_size, self.head_dim
            with torch.no_grad():
                self.bias.zero_()
                ramp = -(-5.0 + 12.0 * (torch.arange(d) / max(d - 1, 1)) ** 0.3)
                self.bias[H : 2 * H] = ramp.repeat(self.heads) + forget_bias
        nn.init.ones_(self.norm_weight)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        H = self.hidden_size
        conv = ((self.conv_size - 1, self.conv_width),) if self.conv_size > 0 else ()
        return (*conv, (H,), (H,), (H,), (H,))

    def _pad(self, conv: Tensor) -> Tensor:
        """A layer's conv state widened to the stack's common width (zeros past this layer's input size)."""
        extra = self.conv_width - self.input_size
        return F.pad(conv, (0, extra)) if extra else conv

    def _gates_in(self, x: Tensor, xa: Tensor) -> Tensor:
        """Input half of the gate pre-activations, gate-major (i, f, z, o): (..., 4 * hidden); ``xa`` is what i and
        f read: silu(conv(x)) with the convolution, x without."""
        g = torch.cat([self.proj_if(xa), self.proj_zo(x)], dim=-1)
        return g if self.bias is None else g + self.bias

    def _norm(self, h: Tensor) -> Tensor:
        flat = h.reshape(-1, self.hidden_size)
        return F.group_norm(flat, self.heads, self.norm_weight.to(flat.dtype), eps=1e-5).view(h.shape)

    def step(self, x: Tensor, state: States) -> tuple[Tensor, States]:
        # x: (batch, input); h, c, n, m: (batch, hidden)
        new_conv: tuple[Tensor, ...] = ()
        xa = x
        if self.conv1d is not None:
            xc, conv = conv_step(x, state[0][..., : self.input_size], self.conv1d.weight, self.conv1d.bias)
            xa, new_conv = F.silu(xc), (self._pad(conv),)
        h, c, n, m = state[-4:]
        B, nh, d = x.size(0), self.heads, self.head_dim
        rec = torch.einsum("bhd,hod->bho", h.view(B, nh, d), self.recurrent.to(h.dtype))  # (batch, heads, 4 * d)
        rec = rec.view(B, nh, 4, d).transpose(1, 2).reshape(B, 4 * self.hidden_size)  # gate-major
        i_pre, f_pre, z_pre, o_pre = (self._gates_in(x, xa) + rec).chunk(4, dim=-1)
        log_f = F.logsigmoid(f_pre)
        m_new = torch.maximum(log_f + m, i_pre)
        i = torch.exp(i_pre - m_new)
        f = torch.exp(log_f + m - m_new)
        c = f * c + i * torch.tanh(z_pre)
        n = f * n + i
        h = torch.sigmoid(o_pre) * c / n
        return self._norm(h), (*new_conv, h, c, n, m_new)

    def sequence(self, x: Tensor, state: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        # x: (seq, batch, input)
        T, B = x.shape[:2]
        nh, d = self.heads, self.head_dim
        new_conv: tuple[Tensor, ...] = ()
        xa = x
        if self.conv1d is not None:  # convolution and SiLU in one compiled pass each way where it runs
            conv0 = state[0][..., : self.input_size]
            xa, conv = conv_silu_sequence(x, conv0, self.conv1d.weight, self.conv1d.bias, lengths)
            new_conv = (self._pad(conv),)
        gx = self._gates_in(x, xa)  # (seq, batch, 4 * hidden), gate-major
        dtype = compute_dtype(gx)
        # the scan's layout: (seq, heads, batch, 4 * d), per head gate-major; states (heads, batch, d)
        gx = gx.to(dtype).view(T, B, 4, nh, d).permute(0, 3, 1, 2, 4).reshape(T, nh, B, 4 * d)

        def heads(s: Tensor) -> Tensor:
            return s.to(dtype).view(B, nh, d).transpose(0, 1).contiguous()

        h0, c0, n0, m0 = (heads(s) for s in state[-4:])
        mask = time_mask(lengths, T)
        valid = None if mask is None else mask.view(T, 1, B, 1)
        Hs, h, c, n, m = SLSTMScan.apply(gx, self.recurrent.to(dtype), h0, c0, n0, m0, valid)

        def back(s: Tensor) -> Tensor:  # (..., heads, batch, d) -> (..., batch, hidden)
            return s.transpose(-3, -2).reshape(*s.shape[:-3], B, self.hidden_size)

        return self._norm(back(Hs)), (*new_conv, back(h), back(c), back(n), back(m))


class SLSTMScan(torch.autograd.Function):
    """The sLSTM recurrence over a sequence with a hand-written backward.

    gx: (seq, heads, batch, 4d) input pre-activations (gates i, f, z, o per head); R: (heads, 4d, d);
    h0, c0, n0, m0: (heads, batch, d); valid: (seq, 1, batch, 1) or None. Returns every h (seq, heads, batch, d)
    and the final h, c, n, m (frozen past each sequence's length).
    """

    @staticmethod
    def forward(ctx: Any, gx: Tensor, R: Tensor, h0: Tensor, c0: Tensor, n0: Tensor, m0: Tensor, valid: Tensor | None):
        T, nh, B, G = gx.shape
        d = G // 4
        ctx.native = native.usable(gx, R, h0, c0, n0, m0)
        if ctx.native:  # the compiled loop (rnnkit.cells.native): the same arithmetic, batch rows over the threads
            lengths = None if valid is None else valid.view(T, B).sum(0)
            A, SF, SEL, Hs, Cs, Ns, Ms = native.slstm_forward(gx, R, h0, c0, n0, m0, lengths)
            ctx.save_for_backward(gx, R, h0, c0, n0, m0, lengths, A, SF, SEL, Hs, Cs, Ns, Ms)
            return Hs, Hs[-1].clone(), Cs[-1].clone(), Ns[-1].clone(), Ms[-1].clone()
        Rt = R.transpose(1, 2)  # (heads, d, 4d)
        A = torch.empty_like(gx)  # i, f, tanh(z~), o per step
        SF = torch.empty(T, nh, B, d, dtype=gx.dtype, device=gx.device)  # sigmoid(-f~): d log sigmoid(f~) / d f~
        SEL = torch.empty(T, nh, B, d, dtype=torch.bool, device=gx.device)  # m_t came from i~ (else from f + m)
        Hs, Cs, Ns, Ms = (torch.empty_like(SF) for _ in range(4))
        h, c, n, m = h0, c0, n0, m0
        with one_thread():  # small per-step ops: see rnnkit.cells.scan.one_thread
            for t in range(T):
                raw = torch.baddbmm(gx[t], h, Rt).view(nh, B, 4, d)
                i_pre, f_pre, z_pre, o_pre = raw.unbind(2)
                a = A[t].view(nh, B, 4, d)
                i, f, z, o = a.unbind(2)
                torch.sigmoid(f_pre.neg(), out=SF[t])
                a_f = F.logsigmoid(f_pre).add_(m)  # log f~ + m_{t-1}
                m_new = torch.maximum(i_pre, a_f, out=Ms[t])
                torch.gt(i_pre, a_f, out=SEL[t])
                torch.exp(i_pre - m_new, out=i)
                torch.exp(a_f.sub_(m_new), out=f)
                torch.tanh(z_pre, out=z)
                torch.sigmoid(o_pre, out=o)
                c_new = torch.mul(f, c, out=Cs[t]).addcmul_(i, z)  # c_t = f c_{t-1} + i tanh(z~)
                n_new = torch.addcmul(i, f, n, out=Ns[t])
                h_new = torch.mul(o, c_new, out=Hs[t]).div_(n_new)
                if valid is not None:  # past a sequence's end every state keeps its value
                    v = valid[t]
                    for new, old in ((h_new, h), (c_new, c), (n_new, n), (m_new, m)):
                        torch.where(v, new, old, out=new)
                h, c, n, m = h_new, c_new, n_new, m_new
        ctx.save_for_backward(gx, R, h0, c0, n0, m0, valid, A, SF, SEL, Hs, Cs, Ns, Ms)
        return Hs, h.clone(), c.clone(), n.clone(), m.clone()

    @staticmethod
    def backward(
        ctx: Any, dHs: Tensor | None, dh_T: Tensor | None, dc_T: Tensor | None, dn_T: Tensor | None, dm_T: Tensor | None
    ):
        gx, R, h0, c0, n0, m0, valid, A, SF, SEL, Hs, Cs, Ns, Ms = ctx.saved_tensors
        T, nh, B, G = gx.shape
        d = G // 4

        def zero() -> Tensor:
            return torch.zeros_like(h0)

        dh = dh_T if dh_T is not None else zero()
        dc = dc_T if dc_T is not None else zero()
        dn = dn_T if dn_T is not None else zero()
        dm = dm_T if dm_T is not None else zero()
        if ctx.native:  # `valid` holds the lengths here
            DG, dh, dc, dn, dm = native.slstm_backward(R, c0, n0, valid, A, SF, SEL, Hs, Cs, Ns, dHs, dh, dc, dn, dm)
            return DG, _recurrent_grad(ctx, DG, h0, Hs), dh, dc, dn, dm, None
        if dHs is not None:
            dh = dh + dHs[-1]
        DG = torch.empty_like(gx)  # gate pre-activation gradients
        with one_thread():  # small per-step ops: see rnnkit.cells.scan.one_thread
            for t in range(T - 1, -1, -1):
                i, f, z, o = A[t].view(nh, B, 4, d).unbind(2)
                c_t, n_t, h_t = Cs[t], Ns[t], Hs[t]
                c_p, n_p = (Cs[t - 1], Ns[t - 1]) if t > 0 else (c0, n0)
                dg = DG[t].view(nh, B, 4, d)
                d_i, d_f, d_z, d_o = dg.unbind(2)
                if valid is not None:  # a frozen step passes its state's gradient straight through
                    v = valid[t]
                    dh_s, dc_s, dn_s, dm_s = dh, dc, dn, dm
                    dh, dc, dn, dm = (x * v for x in (dh, dc, dn, dm))
                ratio = c_t / n_t
                torch.mul(dh, ratio, out=d_o)  # d o
                dc = dc + dh * o / n_t
                dn = dn - dh * h_t / n_t
                df = torch.addcmul(dc * c_p, dn, n_p)
                di = torch.addcmul(dn, dc, z)
                torch.mul(dc, i, out=d_z)  # d tanh(z~)
                gi, gf = di * i, df * f  # gradients of the exponents
                dm_t = dm - gi - gf
                sel = SEL[t]
                torch.add(gi, dm_t * sel, out=d_i)
                da = gf + dm_t * ~sel  # gradient of log sigmoid(f~) + m_{t-1}
                torch.mul(da, SF[t], out=d_f)
                d_z.mul_(1 - z * z)
                d_o.mul_(o * (1 - o))
                dc, dn, dm = dc * f, dn * f, da
                dh = torch.bmm(DG[t], R)  # (heads, batch, d)
                if valid is not None:
                    dh, dc, dn, dm = (
                        torch.where(v, a1, a0) for a1, a0 in ((dh, dh_s), (dc, dc_s), (dn, dn_s), (dm, dm_s))
                    )
                if t > 0 and dHs is not None:
                    dh = dh + dHs[t - 1]
        return DG, _recurrent_grad(ctx, DG, h0, Hs), dh, dc, dn, dm, None


def _recurrent_grad(ctx: Any, DG: Tensor, h0: Tensor, Hs: Tensor) -> Tensor | None:
    """dL/dR (heads, 4d, d) = sum over steps and batch of DG_t h_{t-1}^T, one batched product per head."""
    if not ctx.needs_input_grad[1]:
        return None
    T, nh, B, G = DG.shape
    d = G // 4
    h_prev = torch.cat([h0.unsqueeze(0), Hs[:-1]])  # (seq, heads, batch, d)
    return torch.bmm(
        DG.transpose(0, 1).reshape(nh, T * B, G).transpose(1, 2), h_prev.transpose(0, 1).reshape(nh, T * B, d)
    )


def state_layout(spec: RecurrentSpec, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    rows, H = spec.num_layers * spec.directions, spec.sizes[0]
    shapes = {"conv": (spec.conv_size - 1, conv_width(spec)), "h": (H,), "c": (H,), "n": (H,), "m": (H,)}
    return [(name, (rows, batch, *shapes[name])) for name in state_names(spec)]


STATE_NAMES = state_names(RecurrentSpec("slstm", 1, 8))


def build(spec: RecurrentSpec, backend: str = "fast") -> nn.Module:
    return ModernRecurrent(spec, backend, SLSTMCore)

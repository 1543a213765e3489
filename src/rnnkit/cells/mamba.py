"""Mamba (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces"): the selective SSM block.

    [x, z] = W_in u_t;   x_c = silu(causal_conv(x))                   (depthwise, width conv_size)
    [dt, B_t, C_t] = W_x x_c;   delta_t = softplus(W_dt dt + b_dt)      (input-dependent step, B and C)
    h_t = exp(delta_t A) h_{t-1} + delta_t x_c B_t    (per channel: an N-state diagonal SSM, A = -exp(A_log))
    y_t = h_t C_t + D x_c;     output: W_out (y_t * silu(z))

The fast form runs the SSM with :func:`rnnkit.cells.scan.mamba_scan` (the softplus, the selective scan and the
output gate in one compiled pass each way where it runs), which never holds the (seq, batch, inner, N) tensors of
the parallel scan: blocks of time steps, recomputed in the backward.

Sizes: ``hidden_size`` is d_model: a layer maps ``input_size`` -> ``hidden_size`` (W_in reads ``input_size``
features); ``inner = spec.expand * hidden_size`` (default 2), ``N = spec.state_size`` (16), ``conv_size`` (4),
``dt_rank = spec.dt_rank`` (default ceil(hidden_size / 16)). The layer is the block's mixer (the ``mambapy``
package's ``MambaBlock``, mamba-ssm's ``Mamba``): no residual and no RMSNorm (its ``ResidualBlock`` adds them).
``spec.bias`` sets W_in's and W_out's biases (the paper has none: use ``bias=False`` for the published model).
Parameter names are the package's (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``), so its state dict loads as is. State: ``conv`` (L*D, batch, conv_size - 1, inner) - the last
inputs of the convolution - and ``ssm`` (L*D, batch, inner, N).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentSpec
from rnnkit.cells.modern import Core, ModernRecurrent, States, compute_dtype, linear_halves, time_mask
from rnnkit.cells.scan import conv_silu_sequence, conv_step, mamba_scan

DOC = "Mamba (Gu & Dao 2023): the selective state-space block (input-dependent delta, B, C; causal conv; gating)"
STATE_NAMES = ("conv", "ssm")
OPTIONS = {"bidirectional": True, "per_layer_sizes": True, "dropout": True, "forget_bias": False}


def sizes(spec: RecurrentSpec, hidden: int) -> tuple[int, int]:
    """(inner width, dt rank) of a layer of ``hidden`` features."""
    inner = max(1, round((2.0 if spec.expand is None else spec.expand) * hidden))
    return inner, spec.dt_rank if spec.dt_rank else math.ceil(hidden / 16)


class MambaCore(Core):
    state_names = STATE_NAMES

    def __init__(self, spec: RecurrentSpec, input_size: int) -> None:
        super().__init__(spec, input_size)
        if spec.conv_size < 1:
            raise ValueError(f"mamba: conv_size must be >= 1, got {spec.conv_size}")
        inner, rank = self.inner, self.dt_rank = sizes(spec, self.hidden_size)
        self.state_size = N = spec.state_size
        self.conv_size = spec.conv_size
        self.block = 16  # time steps per block of the selective scan: the memory / speed knob
        self.in_proj = nn.Linear(input_size, 2 * inner, bias=spec.bias)
        self.conv1d = nn.Conv1d(inner, inner, spec.conv_size, groups=inner, padding=spec.conv_size - 1)
        self.x_proj = nn.Linear(inner, rank + 2 * N, bias=False)
        self.dt_proj = nn.Linear(rank, inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(inner, N))
        self.D = nn.Parameter(torch.empty(inner))
        self.out_proj = nn.Linear(inner, self.hidden_size, bias=spec.bias)
        self.reset_ssm()

    def reset_ssm(self, dt_min: float = 0.001, dt_max: float = 0.1, dt_floor: float = 1e-4) -> None:
        """The paper's initialisation of the SSM: A = -(1..N) per channel (S4D-real), D = 1, steps delta
        log-uniform in [dt_min, dt_max] through the inverse softplus of dt_proj's bias."""
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            self.A_log.copy_(torch.log(torch.arange(1, self.state_size + 1, dtype=torch.float32)).repeat(self.inner, 1))
            self.D.fill_(1.0)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.conv_size - 1, self.inner), (self.inner, self.state_size))

    def _ssm_inputs(self, xc: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        u = F.silu(xc)
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.state_size, self.state_size], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        return u, delta, B, C

    def step(self, x: Tensor, state: States) -> tuple[Tensor, States]:
        # x: (batch, input); conv: (batch, conv_size - 1, inner); h: (batch, inner, N)
        conv, h = state
        xi, z = self.in_proj(x).chunk(2, dim=-1)
        xc, conv = conv_step(xi, conv, self.conv1d.weight, self.conv1d.bias)
        u, delta, B, C = self._ssm_inputs(xc)
        A = -torch.exp(self.A_log.to(delta.dtype))  # (inner, N)
        h = torch.exp(delta.unsqueeze(-1) * A) * h + (delta * u).unsqueeze(-1) * B.unsqueeze(-2)
        y = (h * C.unsqueeze(-2)).sum(-1) + self.D * u
        return self.out_proj(y * F.silu(z)), (conv, h)

    def sequence(self, x: Tensor, state: States, lengths: Tensor | None) -> tuple[Tensor, States]:
        # x: (seq, batch, input)
        conv, h0 = state
        xi, z = linear_halves(self.in_proj, x)  # (seq, batch, inner) each
        u, conv = conv_silu_sequence(xi, conv, self.conv1d.weight, self.conv1d.bias, lengths)
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.state_size, self.state_size], dim=-1)
        dt = self.dt_proj(dt)  # delta = softplus(dt), inside the scan
        dtype = compute_dtype(u)
        u, dt, B, C = u.to(dtype), dt.to(dtype), B.to(dtype), C.to(dtype)
        mask = time_mask(lengths, x.size(0))
        if mask is not None:  # past a sequence's end delta = softplus(-inf) = 0: exp(0 A) = 1, no input: h stays
            dt = dt.masked_fill(~mask, float("-inf"))
        A = -torch.exp(self.A_log.to(dtype))
        y, h = mamba_scan(u, dt, A, B, C, self.D.to(dtype), z.to(dtype), h0.to(dtype), self.block)
        return self.out_proj(y), (conv, h)


def state_layout(spec: RecurrentSpec, batch: int) -> list[tuple[str, tuple[int, ...]]]:
    rows = spec.num_layers * spec.directions
    inner, _ = sizes(spec, spec.sizes[0])
    return [("conv", (rows, batch, spec.conv_size - 1, inner)), ("ssm", (rows, batch, inner, spec.state_size))]


def build(spec: RecurrentSpec, backend: str = "fast") -> nn.Module:
    return ModernRecurrent(spec, backend, MambaCore)

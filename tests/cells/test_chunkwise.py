"""The mLSTM's chunkwise-parallel memory (rnnkit.cells.chunkwise) and its hand-written backward, checked on their
own against autograd over the step recurrence in float64: every input's gradient, ragged chunks, padding steps,
a carried state, both branches of the denominator's max."""

# ruff: noqa: N803, N806  (tensor names follow the equations: C, T, H...)

from __future__ import annotations

import pytest
import torch

from rnnkit.cells.chunkwise import EPS, chunkwise_mlstm

T, B, H, D = 7, 2, 2, 3
SCALE = 0.6  # k is read as SCALE * k (1 / sqrt(d) in the layer)


def _step_form(q, k, v, i_pre, log_f, C, n, m, branches: list | None = None):
    """The recurrence one step at a time (mlstm.MLSTMCore.step's memory); ``branches`` collects where |n . q| is
    the denominator."""
    k = SCALE * k
    hs = []
    for t in range(q.size(0)):
        m_new = torch.maximum(log_f[t] + m, i_pre[t])
        f = torch.exp(log_f[t] + m - m_new)
        i = torch.exp(i_pre[t] - m_new)
        C = f[..., None, None] * C + i[..., None, None] * (k[t].unsqueeze(-1) * v[t].unsqueeze(-2))
        n = f[..., None] * n + i[..., None] * k[t]
        num = (q[t].unsqueeze(-1) * C).sum(-2)
        den = torch.maximum((q[t] * n).sum(-1).abs(), torch.exp(-m_new)) + EPS
        if branches is not None:
            branches.append((q[t] * n).sum(-1).abs() >= torch.exp(-m_new))
        hs.append(num / den[..., None])
        m = m_new
    return torch.stack(hs), C, n, m


def _inputs(seed: int, with_state: bool, padded: bool, floor: bool):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)

    q, k, v = rand(T, B, H, D), rand(T, B, H, D), rand(T, B, H, D)
    i_pre = rand(T, B, H)
    # log f: around the forget gates of a trained layer (sigmoid of 1..4); ``floor``: in batch row 0, large i~ and
    # small q, k, so exp(-m) is the denominator there and |n . q| in row 1
    log_f = torch.nn.functional.logsigmoid(rand(T, B, H) + 2.0)
    if floor:
        q[:, 0] *= 0.05
        k[:, 0] *= 0.05
        i_pre[:, 0] += 2.0
    if padded:  # row 1 ends after 4 steps: f = 1, i = 0 past its end
        log_f[4:, 1] = 0.0
        i_pre[4:, 1] = float("-inf")
    if with_state:
        C, n, m = rand(B, H, D, D, scale=0.5), rand(B, H, D).abs() + 0.5, rand(B, H, scale=0.5)
    else:
        C, n, m = (torch.zeros(*s, dtype=torch.float64) for s in ((B, H, D, D), (B, H, D), (B, H)))
    return [q, k, v, i_pre, log_f, C, n, m]


@pytest.mark.parametrize("chunk", [1, 3, 7, 16], ids=lambda c: f"L{c}")
@pytest.mark.parametrize(
    "with_state, padded, floor", [(False, False, False), (True, True, False), (True, False, True)],
    ids=["fresh", "state_padded", "denominator_floor"],
)  # fmt: skip
def test_chunkwise_equals_step_form_with_gradients(chunk, with_state, padded, floor):
    inputs = _inputs(0, with_state, padded, floor)
    gen = torch.Generator().manual_seed(1)
    weights = [
        torch.randn(s, generator=gen, dtype=torch.float64) for s in ((T, B, H, D), (B, H, D, D), (B, H, D), (B, H))
    ]
    results = []
    for fn in (_step_form, lambda *a: chunkwise_mlstm(*a, chunk, SCALE)):
        leaves = [t.clone().requires_grad_() for t in inputs]
        outs = fn(*leaves)
        loss = sum((o * w).sum() for o, w in zip(outs, weights))
        grads = torch.autograd.grad(loss, leaves)
        results.append(([o.detach() for o in outs], grads))
    (ref_out, ref_grads), (out, grads) = results
    names = ["q", "k", "v", "i_pre", "log_f", "C", "n", "m"]
    for what, a, b in zip(["h", "C", "n", "m"], ref_out, out):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10, msg=lambda s, w=what: f"{w}: {s}")
    for what, a, b in zip(names, ref_grads, grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10, msg=lambda s, w=what: f"d{w}: {s}")
    branches: list = []
    _step_form(*inputs, branches=branches)
    big = torch.stack(branches)
    assert big.any() and (not floor or not big.all())  # the floor case reaches both branches of the max


def test_chunkwise_backward_passes_gradcheck():
    """Finite differences against the hand-written backward (only outputs that are smooth at the inputs)."""
    q, k, v, i_pre, log_f, C, n, m = _inputs(2, True, False, False)
    leaves = [t.clone().requires_grad_() for t in (q, k, v, i_pre, log_f, C, n, m)]
    assert torch.autograd.gradcheck(lambda *a: chunkwise_mlstm(*a, 3, SCALE), leaves, eps=1e-6, atol=1e-6, rtol=1e-5)

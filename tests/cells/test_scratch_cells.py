"""Cells with no fused counterpart: the peephole LSTM and the layer-normalised LSTM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnkit.cells import RecurrentSpec, make_recurrent
from rnnkit.cells.layernorm_lstm import LayerNormLSTMCell
from rnnkit.cells.lstm import LSTMCell

SEQ, BATCH, INPUT, HIDDEN = 5, 4, 3, 4
LENGTHS = torch.tensor([5, 3, 1, 4])
TOL = dict(rtol=1e-6, atol=1e-6)
PEEPHOLES = ("weight_ci", "weight_cf", "weight_co")


@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_peephole_lstm_with_zero_peepholes_is_the_plain_lstm(bidirectional, padded):
    kwargs = dict(num_layers=2, bidirectional=bidirectional)
    torch.manual_seed(0)
    fused = make_recurrent(RecurrentSpec("lstm", INPUT, HIDDEN, **kwargs), "fast").double()
    peephole = make_recurrent(RecurrentSpec("peephole_lstm", INPUT, HIDDEN, **kwargs), "scratch").double()
    missing, unexpected = peephole.load_state_dict(fused.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(name.startswith(PEEPHOLES) for name in missing)
    assert len(missing) == 3 * 2 * (2 if bidirectional else 1)
    with torch.no_grad():
        for name in missing:
            peephole.get_parameter(name).zero_()

    lengths = LENGTHS if padded else None
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    (f_out, (f_h, f_c)), (p_out, (p_h, p_c)) = fused(xs[0], lengths=lengths), peephole(xs[1], lengths=lengths)
    for a, b in ((p_out, f_out), (p_h, f_h), (p_c, f_c)):
        torch.testing.assert_close(a, b, **TOL)
    (f_out.sum() + f_c.sum()).backward()
    (p_out.sum() + p_c.sum()).backward()
    torch.testing.assert_close(xs[1].grad, xs[0].grad, **TOL)
    for name, p in fused.named_parameters():
        torch.testing.assert_close(peephole.get_parameter(name).grad, p.grad, **TOL)
    for name in missing:  # peepholes learn even when they start at zero
        assert peephole.get_parameter(name).grad.abs().sum() > 0


def test_peephole_step_follows_the_equations():
    torch.manual_seed(0)
    cell = LSTMCell(INPUT, HIDDEN, peephole=True).double()
    w = {n: torch.empty(s, dtype=torch.float64) for n, s in cell.parameter_shapes().items()}
    cell.reset_parameters(w)
    x, h, c = (torch.randn(BATCH, n, dtype=torch.float64) for n in (INPUT, HIDDEN, HIDDEN))

    gx = cell.project_input(x.unsqueeze(0), w)[0]
    h_new, c_new = cell(gx, (h, c), w)

    pre = x @ w["weight_ih"].T + w["bias_ih"] + h @ w["weight_hh"].T + w["bias_hh"]
    i, f, g, o = pre.chunk(4, dim=1)
    i = torch.sigmoid(i + w["weight_ci"] * c)
    f = torch.sigmoid(f + w["weight_cf"] * c)
    c_ref = f * c + i * torch.tanh(g)
    o = torch.sigmoid(o + w["weight_co"] * c_ref)  # the output gate peeks at the new cell state
    torch.testing.assert_close(c_new, c_ref, **TOL)
    torch.testing.assert_close(h_new, o * torch.tanh(c_ref), **TOL)


def _layernorm_lstm(seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return make_recurrent(RecurrentSpec("layernorm_lstm", INPUT, HIDDEN, **kwargs), "scratch").double()


def test_layernorm_lstm_shapes_init_and_gradient_flow():
    module = _layernorm_lstm(num_layers=2, bidirectional=True, forget_bias=1.0)
    params = dict(module.named_parameters())
    for name in ("ln_ih_weight_l0", "ln_hh_bias_l1_reverse", "ln_c_weight_l1", "weight_ih_l1_reverse"):
        assert name in params
    assert params["ln_ih_weight_l0"].shape == (4 * HIDDEN,)
    assert params["ln_c_bias_l0"].shape == (HIDDEN,)
    assert all((p == 1).all() for n, p in params.items() if n.startswith("ln_") and "_weight_" in n)
    assert all((p == 0).all() for n, p in params.items() if n.startswith("ln_") and "_bias_" in n)

    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, BATCH, HIDDEN, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(4, BATCH, HIDDEN, dtype=torch.float64, requires_grad=True)
    out, (h, c) = module(x, (h0, c0), lengths=LENGTHS)
    assert out.shape == (SEQ, BATCH, 2 * HIDDEN)
    assert h.shape == c.shape == (4, BATCH, HIDDEN)
    assert out[LENGTHS[2] :, 2].abs().max() == 0  # zero past the length of sequence 2
    (out.pow(2).sum() + h.sum() + c.sum()).backward()
    for t in (x, h0, c0, *params.values()):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_layernorm_lstm_normalises_each_step():
    """LN makes every step's gate input zero-mean, unit-variance, so rescaling W_ih or W_hh changes nothing."""
    module = _layernorm_lstm(num_layers=2)
    cell = module.cells[0]
    assert isinstance(cell, LayerNormLSTMCell)
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64) * 3 + 1

    # the input half, biases removed, is normalised per (step, example) row
    w = {k: v.detach() for k, v in module.weights(0).items()}
    w["bias_ih"], w["bias_hh"] = torch.zeros_like(w["bias_ih"]), torch.zeros_like(w["bias_hh"])
    gx = cell.project_input(x, w)  # (seq, batch, 4 * hidden)
    torch.testing.assert_close(gx.mean(-1), torch.zeros(SEQ, BATCH, dtype=torch.float64), rtol=0, atol=1e-9)
    torch.testing.assert_close(
        gx.var(-1, unbiased=False), torch.ones(SEQ, BATCH, dtype=torch.float64), rtol=0, atol=1e-3
    )

    # invariance to the scale of either weight matrix, at every step and layer (exact once LN's eps is negligible)
    for layer_cell in module.cells:
        layer_cell.eps = 1e-12
    h0 = torch.randn(2, BATCH, HIDDEN, dtype=torch.float64)
    state = (h0, torch.randn_like(h0))
    out, (h, c) = module(x, state)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
            module.get_parameter(name).mul_(7.0)
    out_scaled, (h_scaled, c_scaled) = module(x, state)
    torch.testing.assert_close(out_scaled, out, rtol=0, atol=1e-9)
    torch.testing.assert_close(c_scaled, c, rtol=0, atol=1e-9)
    # ...which a plain LSTM is not
    plain = make_recurrent(RecurrentSpec("lstm", INPUT, HIDDEN, num_layers=2), "scratch").double()
    before = plain(x, state)[0]
    with torch.no_grad():
        plain.weight_hh_l0.mul_(7.0)
    assert (plain(x, state)[0] - before).abs().max() > 1e-2


def test_layernorm_lstm_step_follows_the_equations():
    torch.manual_seed(0)
    cell = LayerNormLSTMCell(INPUT, HIDDEN).double()
    w = {n: torch.randn(s, dtype=torch.float64) for n, s in cell.parameter_shapes().items()}
    x, h, c = (torch.randn(BATCH, n, dtype=torch.float64) for n in (INPUT, HIDDEN, HIDDEN))
    h_new, c_new = cell(cell.project_input(x.unsqueeze(0), w)[0], (h, c), w)

    def ln(v, which):
        return F.layer_norm(v, v.shape[-1:], w[f"ln_{which}_weight"], w[f"ln_{which}_bias"], eps=1e-5)

    pre = ln(x @ w["weight_ih"].T, "ih") + ln(h @ w["weight_hh"].T, "hh") + w["bias_ih"] + w["bias_hh"]
    i, f, g, o = pre.chunk(4, dim=1)
    c_ref = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # the carried c is not normalised
    torch.testing.assert_close(c_new, c_ref, **TOL)
    torch.testing.assert_close(h_new, torch.sigmoid(o) * torch.tanh(ln(c_ref, "c")), **TOL)


@pytest.mark.parametrize("cell", ["peephole_lstm", "layernorm_lstm"])
def test_scratch_only_cells_handle_padding_like_separate_runs(cell):
    """A padded batch gives each sequence the same result as running it alone, both directions."""
    torch.manual_seed(0)
    module = make_recurrent(RecurrentSpec(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True), "scratch").double()
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    out, (h, c) = module(x, lengths=LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        out_b, (h_b, c_b) = module(x[:n, b : b + 1])
        torch.testing.assert_close(out[:n, b : b + 1], out_b, **TOL)
        torch.testing.assert_close(h[:, b : b + 1], h_b, **TOL)
        torch.testing.assert_close(c[:, b : b + 1], c_b, **TOL)

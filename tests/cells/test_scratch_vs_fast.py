"""The scratch backend against PyTorch's fused modules: same names, same numbers, same gradients."""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import RecurrentSpec, make_recurrent
from rnnkit.cells.layer import ScratchRecurrent

FUSED = ("rnn_tanh", "rnn_relu", "lstm", "gru")
SEQ, BATCH, INPUT, HIDDEN = 5, 4, 3, 4
LENGTHS = torch.tensor([5, 3, 1, 4])
TOL = dict(rtol=1e-6, atol=1e-6)


def _pair(spec: RecurrentSpec, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Fused and scratch modules in float64 with the fused module's weights copied into the scratch one."""
    torch.manual_seed(seed)
    fused = make_recurrent(spec, "fast").double()
    scratch = make_recurrent(spec, "scratch").double()
    scratch.load_state_dict(fused.state_dict())
    return fused, scratch


def _as_tuple(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _run(module, x, state, lengths, out_weight, state_weights):
    """Forward, then the gradients of a random linear functional of output and final state."""
    out, new_state = module(x, state, lengths=lengths)
    loss = (out * out_weight).sum() + sum((s * w).sum() for s, w in zip(_as_tuple(new_state), state_weights))
    inputs = [x, *(_as_tuple(state) if state is not None else ())]
    params = [p for _, p in module.named_parameters()]
    grads = torch.autograd.grad(loss, inputs + params)
    return (
        out,
        _as_tuple(new_state),
        grads[: len(inputs)],
        dict(zip([n for n, _ in module.named_parameters()], grads[len(inputs) :])),
    )


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", FUSED)
def test_outputs_states_and_gradients_match(cell, num_layers, bidirectional, padded, with_state):
    spec = RecurrentSpec(cell, INPUT, HIDDEN, num_layers=num_layers, bidirectional=bidirectional)
    fused, scratch = _pair(spec)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(SEQ, BATCH, INPUT, generator=gen, dtype=torch.float64)
    n_state = 2 if cell == "lstm" else 1
    state_shape = (num_layers * spec.directions, BATCH, HIDDEN)
    state = None
    if with_state:
        parts = tuple(torch.randn(state_shape, generator=gen, dtype=torch.float64) for _ in range(n_state))
        state = parts if n_state == 2 else parts[0]
    out_weight = torch.randn(SEQ, BATCH, spec.output_size, generator=gen, dtype=torch.float64)
    state_weights = [torch.randn(state_shape, generator=gen, dtype=torch.float64) for _ in range(n_state)]
    lengths = LENGTHS if padded else None

    results = []
    for module in (fused, scratch):
        xi = x.clone().requires_grad_(True)
        si = None
        if state is not None:
            si = tuple(s.clone().requires_grad_(True) for s in _as_tuple(state))
            si = si if n_state == 2 else si[0]
        results.append(_run(module, xi, si, lengths, out_weight, state_weights))
    (f_out, f_state, f_in_grads, f_grads), (s_out, s_state, s_in_grads, s_grads) = results

    assert s_out.shape == (SEQ, BATCH, spec.output_size)
    torch.testing.assert_close(s_out, f_out, **TOL)
    assert len(s_state) == len(f_state) == n_state
    for a, b in zip(s_state, f_state):
        assert a.shape == state_shape
        torch.testing.assert_close(a, b, **TOL)
    if padded:
        past_end = torch.arange(SEQ).unsqueeze(1) >= LENGTHS  # (seq, batch)
        assert s_out[past_end].abs().max() == 0
    for a, b in zip(s_in_grads, f_in_grads):  # input, then initial state
        torch.testing.assert_close(a, b, **TOL)
    assert list(s_grads) == list(f_grads)
    for name in f_grads:
        torch.testing.assert_close(s_grads[name], f_grads[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", FUSED)
def test_parameter_names_shapes_and_order_match(cell, bias):
    spec = RecurrentSpec(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True, bias=bias)
    fused = make_recurrent(spec, "fast")
    scratch = make_recurrent(spec, "scratch")
    assert isinstance(scratch, ScratchRecurrent)
    assert [(n, p.shape) for n, p in scratch.named_parameters()] == [(n, p.shape) for n, p in fused.named_parameters()]
    scratch.flatten_parameters()  # interface parity: exists and does nothing


def test_no_bias_outputs_match():
    spec = RecurrentSpec("gru", INPUT, HIDDEN, num_layers=2, bidirectional=True, bias=False)
    fused, scratch = _pair(spec)
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    torch.testing.assert_close(scratch(x, lengths=LENGTHS)[0], fused(x, lengths=LENGTHS)[0], **TOL)


@pytest.mark.parametrize("cell", FUSED)
def test_state_dict_round_trip_both_directions(cell):
    spec = RecurrentSpec(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True)
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)

    torch.manual_seed(1)
    fused = make_recurrent(spec, "fast").double()
    torch.manual_seed(2)
    scratch = make_recurrent(spec, "scratch").double()
    assert not torch.allclose(scratch(x)[0], fused(x)[0])  # different draws before loading
    scratch.load_state_dict(fused.state_dict())  # fused -> scratch
    torch.testing.assert_close(scratch(x, lengths=LENGTHS)[0], fused(x, lengths=LENGTHS)[0], **TOL)

    torch.manual_seed(3)
    scratch = make_recurrent(spec, "scratch").double()
    assert not torch.allclose(scratch(x)[0], fused(x)[0])
    fused.load_state_dict(scratch.state_dict())  # scratch -> fused
    torch.testing.assert_close(fused(x, lengths=LENGTHS)[0], scratch(x, lengths=LENGTHS)[0], **TOL)
    torch.testing.assert_close(fused(x)[1], scratch(x)[1], **TOL)


@pytest.mark.parametrize(
    "backend, cell",
    [("fast", "lstm"), ("scratch", "lstm"), ("scratch", "peephole_lstm"), ("scratch", "layernorm_lstm")],
)
def test_forget_bias_init_shifts_only_the_f_chunk_of_bias_ih(backend, cell):
    hidden = 16
    bound = 1 / hidden**0.5
    spec = RecurrentSpec(cell, INPUT, hidden, num_layers=2, bidirectional=True, forget_bias=1.0)
    torch.manual_seed(0)
    module = make_recurrent(spec, backend)
    params = dict(module.named_parameters())
    bias_ih = [n for n in params if n.startswith("bias_ih")]
    assert len(bias_ih) == 4  # 2 layers x 2 directions
    for name in bias_ih:
        i, f, g, o = params[name].detach().chunk(4)
        assert ((f >= 1 - bound) & (f <= 1 + bound)).all(), name
        for chunk in (i, g, o):
            assert chunk.abs().max() <= bound, name
        assert params[name.replace("_ih", "_hh")].detach().abs().max() <= bound  # b_hh untouched

    torch.manual_seed(0)
    plain = make_recurrent(RecurrentSpec(cell, INPUT, hidden, num_layers=2, bidirectional=True), backend)
    for name in bias_ih:
        assert dict(plain.named_parameters())[name].detach().abs().max() <= bound


@pytest.mark.parametrize("backend", ["scratch", "fast"])
def test_dropout_between_layers_only_in_training(backend):
    torch.manual_seed(0)
    spec = RecurrentSpec("lstm", INPUT, HIDDEN, num_layers=2, dropout=0.5)
    module = make_recurrent(spec, backend).double()
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)

    module.train()
    assert not torch.allclose(module(x)[0], module(x)[0])  # a fresh mask each call

    module.eval()
    no_dropout = make_recurrent(RecurrentSpec("lstm", INPUT, HIDDEN, num_layers=2), backend).double()
    no_dropout.load_state_dict(module.state_dict())
    torch.testing.assert_close(module(x)[0], module(x)[0], rtol=0, atol=0)
    torch.testing.assert_close(module(x)[0], no_dropout(x)[0], **TOL)


def test_no_dropout_after_the_last_layer():
    torch.manual_seed(0)
    module = make_recurrent(RecurrentSpec("gru", INPUT, HIDDEN, num_layers=1, dropout=0.5), "scratch").train()
    x = torch.randn(SEQ, BATCH, INPUT)
    torch.testing.assert_close(module(x)[0], module(x)[0], rtol=0, atol=0)


def test_scratch_rejects_bad_shapes():
    module = make_recurrent(RecurrentSpec("lstm", INPUT, HIDDEN), "scratch")
    x = torch.randn(SEQ, BATCH, INPUT)
    with pytest.raises(ValueError):
        module(torch.randn(SEQ, BATCH, INPUT + 1))
    with pytest.raises(ValueError):
        module(x, torch.zeros(1, BATCH, HIDDEN))  # an LSTM needs (h, c)
    with pytest.raises(ValueError):
        module(x, (torch.zeros(2, BATCH, HIDDEN), torch.zeros(2, BATCH, HIDDEN)))
    with pytest.raises(ValueError):
        module(x, lengths=torch.tensor([5, 0, 1, 4]))

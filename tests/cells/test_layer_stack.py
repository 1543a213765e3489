"""Layers of different sizes (``hidden = [a, b]``): a LayerStack of one-layer modules in either backend.

Scratch against fused in float64 (outputs, states, every gradient), both against one-layer ``nn.LSTM``/``nn.GRU``/
``nn.RNN`` modules chained by hand, the name mapping, state dicts across backends, dropout, the projected bf16
recurrence per layer, and the errors.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import expected_choice
from rnnkit.cells import LayerStack, RecurrentSpec, make_recurrent, select
from rnnkit.cells.kernel import KernelLSTM
from rnnkit.cells.stack import (
    flat_state,
    from_layer_states,
    last_hidden,
    layer_states,
    map_state,
    stacked_name,
    state_shapes,
    unflatten_state,
)

FUSED = ("rnn_tanh", "rnn_relu", "lstm", "gru")
SEQ, BATCH, INPUT = 5, 4, 3
LENGTHS = torch.tensor([5, 3, 1, 4])
TOL = dict(rtol=1e-6, atol=1e-6)
TORCH_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}


def _pair(spec: RecurrentSpec, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    fused = make_recurrent(spec, "fast").double()
    scratch = make_recurrent(spec, "scratch").double()
    scratch.load_state_dict(fused.state_dict())
    return fused, scratch


def _random_state(module: nn.Module, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(shape, generator=gen, dtype=torch.float64) for _, shape in state_shapes(module, BATCH))


def _run(module, x, flat_in, lengths, out_weight, gen_seed):
    """Forward, then the gradients (input, initial state, parameters) of a random functional of output and state."""
    state = unflatten_state(module, flat_in) if flat_in else None
    out, new_state = module(x, state, lengths=lengths)
    g = torch.Generator().manual_seed(gen_seed)
    flat_out = flat_state(new_state)
    noise = [torch.randn(s.shape, generator=g, dtype=s.dtype) for s in flat_out]
    loss = (out * out_weight).sum() + sum((s * w).sum() for s, w in zip(flat_out, noise, strict=True))
    params = list(module.named_parameters())
    grads = torch.autograd.grad(loss, [x, *flat_in, *(p for _, p in params)])
    return out, flat_out, grads[: 1 + len(flat_in)], dict(zip([n for n, _ in params], grads[1 + len(flat_in) :]))


@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("sizes", [(4, 6), (6, 2, 5)], ids=["4-6", "6-2-5"])
@pytest.mark.parametrize("cell", FUSED)
def test_mixed_sizes_scratch_equals_fused(cell, sizes, bidirectional, padded, with_state):
    spec = RecurrentSpec(cell, INPUT, sizes, len(sizes), bidirectional=bidirectional)
    fused, scratch = _pair(spec)
    assert isinstance(fused, LayerStack) and isinstance(scratch, LayerStack)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(SEQ, BATCH, INPUT, generator=gen, dtype=torch.float64)
    state = _random_state(fused, gen) if with_state else ()
    out_weight = torch.randn(SEQ, BATCH, spec.output_size, generator=gen, dtype=torch.float64)
    lengths = LENGTHS if padded else None
    results = []
    for module in (fused, scratch):
        xi = x.clone().requires_grad_(True)
        si = tuple(s.clone().requires_grad_(True) for s in state)
        results.append(_run(module, xi, si, lengths, out_weight, 2))
    (f_out, f_state, f_in, f_grads), (s_out, s_state, s_in, s_grads) = results

    assert s_out.shape == (SEQ, BATCH, sizes[-1] * spec.directions)
    torch.testing.assert_close(s_out, f_out, **TOL)
    assert [t.shape for t in s_state] == [t.shape for t in f_state] == [s for _, s in state_shapes(fused, BATCH)]
    for a, b in zip(s_state, f_state, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    if padded:
        assert s_out[torch.arange(SEQ).unsqueeze(1) >= LENGTHS].abs().max() == 0
    for a, b in zip(s_in, f_in, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    assert list(s_grads) == list(f_grads)
    for name in f_grads:
        torch.testing.assert_close(s_grads[name], f_grads[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("backend", ["fast", "scratch"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", FUSED)
def test_mixed_stack_is_one_layer_torch_modules_chained(cell, bidirectional, backend):
    """The reference is PyTorch itself: one-layer modules of each size, fed one another's output. The stack's
    tensors load into them through the documented names (layer k = ``k.`` + a one-layer module's names)."""
    sizes = (5, 3)
    spec = RecurrentSpec(cell, INPUT, sizes, 2, bidirectional=bidirectional)
    torch.manual_seed(0)
    stack = make_recurrent(spec, backend).double()
    kw = {"nonlinearity": cell.split("_")[1]} if cell.startswith("rnn") else {}
    dirs = spec.directions
    refs = [
        TORCH_MODULES[cell](i, h, 1, bidirectional=bidirectional, **kw).double() for i, h in ((INPUT, 5), (5 * dirs, 3))
    ]
    for k, ref in enumerate(refs):
        ref.load_state_dict({n.split(".", 1)[1]: t for n, t in stack.state_dict().items() if n.startswith(f"{k}.")})
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    out, state = stack(x)
    h, ref_states = x, []
    for ref in refs:
        h, s = ref(h)
        ref_states.append(s)
    torch.testing.assert_close(out, h, **TOL)
    for a, b in zip(flat_state(state), flat_state(tuple(ref_states)), strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("cell", FUSED)
def test_mixed_state_dict_round_trip_both_directions(cell):
    spec = RecurrentSpec(cell, INPUT, (6, 4), 2, bidirectional=True)
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    torch.manual_seed(1)
    fused = make_recurrent(spec, "fast").double()
    torch.manual_seed(2)
    scratch = make_recurrent(spec, "scratch").double()
    assert list(scratch.state_dict()) == list(fused.state_dict())  # the same names, in the same order
    assert "1.weight_ih_l0_reverse" in fused.state_dict()
    assert fused.state_dict()["1.weight_ih_l0"].shape == ((4 if cell == "lstm" else 3 if cell == "gru" else 1) * 4, 12)
    assert not torch.allclose(scratch(x)[0], fused(x)[0])
    scratch.load_state_dict(fused.state_dict())  # fused -> scratch
    torch.testing.assert_close(scratch(x, lengths=LENGTHS)[0], fused(x, lengths=LENGTHS)[0], **TOL)
    torch.manual_seed(3)
    scratch = make_recurrent(spec, "scratch").double()
    fused.load_state_dict(scratch.state_dict())  # scratch -> fused
    for a, b in zip(flat_state(fused(x)[1]), flat_state(scratch(x)[1]), strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_stacked_name_maps_a_single_module_onto_a_stack():
    """``weight_ih_l1`` of one multi-layer module is ``1.weight_ih_l0`` of a stack: weights of a model with equal
    sizes move into a per-layer stack (AWD's layout) through that one mapping and give the same numbers."""
    assert stacked_name("weight_ih_l1") == "1.weight_ih_l0"
    assert stacked_name("rnn.bias_hh_l2_reverse") == "rnn.2.bias_hh_l0_reverse"
    assert stacked_name("ln_ih_weight_l1") == "1.ln_ih_weight_l0"
    with pytest.raises(ValueError):
        stacked_name("encoder.weight")
    spec = RecurrentSpec("lstm", INPUT, 6, 3, bidirectional=True)
    torch.manual_seed(0)
    single = make_recurrent(spec, "fast").double()
    stack = LayerStack(spec, "scratch").double()
    stack.load_state_dict({stacked_name(n): t for n, t in single.state_dict().items()})
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    out, (h, c) = single(x, lengths=LENGTHS)
    s_out, s_state = stack(x, lengths=LENGTHS)
    torch.testing.assert_close(s_out, out, **TOL)
    torch.testing.assert_close(from_layer_states(single, list(s_state))[0], h, **TOL)
    torch.testing.assert_close(from_layer_states(single, list(s_state))[1], c, **TOL)


def test_equal_sizes_keep_the_single_fused_module():
    spec = RecurrentSpec("lstm", INPUT, [7, 7], 2)
    assert spec == RecurrentSpec("lstm", INPUT, 7, 2) and spec.uniform and spec.sizes == (7, 7)
    module = make_recurrent(spec, "fast")
    assert isinstance(module, KernelLSTM) and module.num_layers == 2  # existing checkpoints, speed and exports
    assert "weight_ih_l1" in module.state_dict()
    mixed = RecurrentSpec("lstm", INPUT, [7, 5], 2)
    assert not mixed.uniform and mixed.sizes == (7, 5) and mixed.output_size == 5
    assert mixed.layer(1) == RecurrentSpec("lstm", 7, 5, 1)


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="one size per layer"):
        RecurrentSpec("lstm", INPUT, [4, 5, 6], 2)
    with pytest.raises(ValueError, match=">= 1"):
        RecurrentSpec("gru", INPUT, [4, 0], 2)
    with pytest.raises(ValueError, match=">= 1"):
        RecurrentSpec("gru", INPUT, 0, 1)
    from rnnkit.cells.kernel import build_kernel
    from rnnkit.cells.layer import ScratchRecurrent

    with pytest.raises(ValueError, match="make_recurrent"):
        build_kernel(RecurrentSpec("lstm", INPUT, [4, 5], 2))
    with pytest.raises(ValueError, match="make_recurrent"):
        ScratchRecurrent(RecurrentSpec("lstm", INPUT, [4, 5], 2))


@pytest.mark.parametrize("backend", ["fast", "scratch"])
def test_a_stack_refuses_a_stacked_state(backend):
    stack = make_recurrent(RecurrentSpec("lstm", INPUT, [4, 5], 2), backend)
    x = torch.randn(SEQ, BATCH, INPUT)
    with pytest.raises(ValueError, match="one state per layer"):
        stack(x, (torch.zeros(2, BATCH, 4), torch.zeros(2, BATCH, 4)))
    with pytest.raises((ValueError, RuntimeError), match="[Ee]xpected|size"):  # layer 0 is 4 wide, not 5
        stack(x, ((torch.zeros(1, BATCH, 5), torch.zeros(1, BATCH, 5)), (torch.zeros(1, BATCH, 5),) * 2))


@pytest.mark.parametrize("backend", ["fast", "scratch"])
def test_dropout_between_layers_only_in_training(backend):
    torch.manual_seed(0)
    spec = RecurrentSpec("lstm", INPUT, [6, 4], 2, dropout=0.5)
    module = make_recurrent(spec, backend).double()
    x = torch.randn(SEQ, BATCH, INPUT, dtype=torch.float64)
    module.train()
    assert not torch.allclose(module(x)[0], module(x)[0])
    module.eval()
    plain = make_recurrent(RecurrentSpec("lstm", INPUT, [6, 4], 2), backend).double()
    plain.load_state_dict(module.state_dict())
    torch.testing.assert_close(module(x)[0], plain(x)[0], rtol=0, atol=0)
    # no dropout after the last layer: with one layer's output fixed, training mode changes nothing after it
    torch.manual_seed(1)
    single = LayerStack(RecurrentSpec("gru", INPUT, [6], 1, dropout=0.5), backend).train()
    y = torch.randn(SEQ, BATCH, INPUT)
    torch.testing.assert_close(single(y)[0], single(y)[0], rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["fast", "scratch"])
def test_forget_bias_shifts_every_layer_of_its_own_size(backend):
    spec = RecurrentSpec("lstm", INPUT, [16, 9], 2, forget_bias=1.0)
    torch.manual_seed(0)
    module = make_recurrent(spec, backend)
    for k, h in enumerate((16, 9)):
        i, f, g, o = module[k].bias_ih_l0.detach().chunk(4)
        bound = 1 / h**0.5
        assert ((f >= 1 - bound) & (f <= 1 + bound)).all() and max(t.abs().max() for t in (i, g, o)) <= bound


def test_state_helpers_treat_both_layouts_alike():
    uniform = make_recurrent(RecurrentSpec("lstm", INPUT, 4, 3, bidirectional=True), "fast")
    mixed = make_recurrent(RecurrentSpec("lstm", INPUT, [4, 6, 5], 3, bidirectional=True), "fast")
    x = torch.randn(SEQ, BATCH, INPUT)
    for module, top in ((uniform, 4), (mixed, 5)):
        _, state = module(x)
        layers = layer_states(module, state)
        assert len(layers) == 3 and layers[0][0].shape == (2, BATCH, 4)
        assert last_hidden(module, state).shape == (2, BATCH, top)
        back = from_layer_states(module, layers)
        assert all(torch.equal(a, b) for a, b in zip(flat_state(back), flat_state(state), strict=True))
        flat = flat_state(state)
        assert [t.shape for t in flat] == [s for _, s in state_shapes(module, BATCH)]
        assert all(torch.equal(a, b) for a, b in zip(flat_state(unflatten_state(module, flat)), flat, strict=True))
        doubled = map_state(lambda t: t * 2, state)
        assert all(torch.equal(a, b * 2) for a, b in zip(flat_state(doubled), flat, strict=True))
    assert [n for n, _ in state_shapes(mixed, 1)] == ["h_l0", "c_l0", "h_l1", "c_l1", "h_l2", "c_l2"]
    assert [n for n, _ in state_shapes(uniform, 1)] == ["h", "c"]


@pytest.fixture
def fresh_choices():
    select.reset()
    select.set_policy(None)
    yield
    select.reset()
    select.set_policy(None)


def test_projected_bf16_recurrence_runs_per_layer_of_its_own_shape(fresh_choices):
    """Under bf16 autocast each fused layer of a mixed stack picks its implementation for its own shape (AVX2:
    the projected layer, oneDNN having no bf16 LSTM; AVX-512: the faster by a timing); whichever runs, every
    layer's state is fp32, the result stays within the projected layer's stated bf16 tolerance of fp32 and every
    layer's parameters train."""

    torch.manual_seed(4)
    stack = make_recurrent(RecurrentSpec("lstm", 16, [24, 8], 2), "fast")
    x = torch.randn(7, 3, 16)
    ref, _ = stack(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = stack(x)
    keys = sorted(select.choices())
    assert len(keys) == 2 and any("/16x24/" in k for k in keys) and any("/24x8/" in k for k in keys), keys
    assert select.choices() == {k: expected_choice(k) for k in keys}
    assert all(s.dtype == torch.float32 for s in flat_state(state))
    assert [s.shape for s in flat_state(state)] == [(1, 3, 24)] * 2 + [(1, 3, 8)] * 2
    err = float((y.detach().double() - ref.detach().double()).norm() / ref.detach().double().norm())
    assert err < 2e-2
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stack.parameters())

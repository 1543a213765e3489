"""The kernel modules' one-step inference path (cell ops instead of oneDNN's kernel) against the kernel itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.cells import RecurrentSpec, kernel, make_recurrent
from rnnkit.models.lm import RNNLanguageModel


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_one_step_equals_the_kernel(with_state: bool, bias: bool) -> None:
    torch.manual_seed(0)
    m = make_recurrent(RecurrentSpec("lstm", 12, 16, 3, bias=bias), "fast").eval()
    x = torch.randn(1, 5, 12)
    state = (torch.randn(3, 5, 16), torch.randn(3, 5, 16)) if with_state else None
    with torch.inference_mode():
        assert kernel.one_step_ok(m, x, None)
        out, new = m(x, state)
        ref_out, ref_new = nn.LSTM.forward(m, x, state)  # oneDNN's kernel, bypassing rnnkit's forward
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(new, ref_new):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_decode_loop_with_the_step_path_follows_the_sequence_kernel() -> None:
    """Twenty steps fed one at a time (the step path) end where the kernel over the whole sequence ends."""
    torch.manual_seed(1)
    m = make_recurrent(RecurrentSpec("lstm", 8, 10, 2), "fast").eval()
    xs = torch.randn(20, 3, 8)
    with torch.no_grad():
        seq_out, (h_ref, c_ref) = m(xs)
        state = None
        outs = []
        for t in range(20):
            o, state = m(xs[t : t + 1], state)
            outs.append(o)
    torch.testing.assert_close(torch.cat(outs), seq_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state[0], h_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state[1], c_ref, atol=1e-5, rtol=1e-5)


def test_training_autograd_and_sequences_keep_the_kernel() -> None:
    m = make_recurrent(RecurrentSpec("lstm", 4, 6, 2), "fast")
    one = torch.randn(1, 2, 4)
    assert not kernel.one_step_ok(m.train(), one, None)  # training: dropout between layers, autograd
    m.eval()
    assert not kernel.one_step_ok(m, one, None)  # grad enabled: a backward may follow
    with torch.no_grad():
        assert kernel.one_step_ok(m, one, None)
        assert not kernel.one_step_ok(m, torch.randn(3, 2, 4), None)  # a sequence: the kernel amortises
        assert not kernel.one_step_ok(m, one, torch.tensor([1, 1]))  # packed lengths
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not kernel.one_step_ok(m, one, None)  # autocast: the precision policy chooses
    bi = nn.LSTM(4, 6, bidirectional=True).eval()
    gru = make_recurrent(RecurrentSpec("gru", 4, 6, 2), "fast").eval()  # PyTorch's CPU GRU is cell ops already
    with torch.no_grad():
        assert not kernel.one_step_ok(bi, one, None)
        assert not kernel.one_step_ok(gru, one, None)


def test_language_model_generation_step_matches_between_backends() -> None:
    """A tied-weight LM with per-layer sizes (a LayerStack of one-layer fused modules) steps like the scratch one."""
    torch.manual_seed(2)
    kw = dict(vocab_size=30, embedding=8, hidden=[12, 8], layers=2, tie=True)
    a = RNNLanguageModel(backend="fast", **kw).eval()
    b = RNNLanguageModel(backend="scratch", **kw).eval()
    b.load_state_dict(a.state_dict())
    tokens = torch.randint(0, 30, (6, 2))
    with torch.inference_mode():
        la, sa = a(tokens[:5])
        lb, sb = b(tokens[:5])
        la, sa = a(tokens[5:], sa)  # one step
        lb, sb = b(tokens[5:], sb)
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-5)

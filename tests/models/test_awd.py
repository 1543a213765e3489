"""AWD-LSTM pieces: weight drop through the fused op, locked and embedding dropout, per-layer sizes, backends."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnkit.cells import RecurrentSpec, make_recurrent
from rnnkit.models.awd import AWDLanguageModel, embedding_dropout, kernel_with_weight_hh, locked_dropout


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_fused_call_with_the_raw_matrix_equals_the_module(cell):
    torch.manual_seed(0)
    rnn = make_recurrent(RecurrentSpec(cell, 5, 7, 1), "fast")
    x = torch.randn(6, 3, 5)  # (seq, batch, input)
    state = (torch.randn(1, 3, 7), torch.randn(1, 3, 7)) if cell == "lstm" else torch.randn(1, 3, 7)
    want_out, want_state = rnn(x, state)
    out, got_state = kernel_with_weight_hh(rnn, x, state, rnn.weight_hh_l0)
    torch.testing.assert_close(out, want_out)
    for a, b in zip(_as_tuple(got_state), _as_tuple(want_state), strict=True):
        torch.testing.assert_close(a, b)


def test_weight_drop_reaches_the_raw_weight_and_leaves_it_untouched():
    torch.manual_seed(0)
    rnn = make_recurrent(RecurrentSpec("lstm", 4, 6, 1), "fast")
    before = rnn.weight_hh_l0.detach().clone()
    x = torch.randn(5, 2, 4)
    w = F.dropout(rnn.weight_hh_l0, 0.5, training=True)
    out, _ = kernel_with_weight_hh(rnn, x, None, w)
    out.sum().backward()
    dropped = w == 0  # DropConnect: the gradient of a dropped weight is exactly zero
    assert dropped.any() and (rnn.weight_hh_l0.grad[dropped] == 0).all()
    assert rnn.weight_hh_l0.grad[~dropped].abs().sum() > 0
    assert torch.equal(rnn.weight_hh_l0.detach(), before)


def test_locked_dropout_uses_one_mask_for_all_time_steps():
    torch.manual_seed(0)
    x = torch.ones(9, 4, 8)  # (seq, batch, features)
    y = locked_dropout(x, 0.5, training=True)
    assert (y == y[0]).all() and (y[0] == 0).any() and set(y.unique().tolist()) <= {0.0, 2.0}
    assert locked_dropout(x, 0.5, training=False) is x


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    embed = torch.nn.Embedding(50, 6)
    tokens = torch.arange(50).repeat(3, 1).t()  # every word three times: (50, 3)
    e = embedding_dropout(embed, tokens, 0.5, training=True)  # (50, 3, 6)
    zero = (e == 0).all(-1)  # (50, 3)
    assert zero.any() and (zero == zero[:, :1]).all()  # a dropped word is dropped at every occurrence
    kept = ~zero[:, 0]
    torch.testing.assert_close(e[kept, 0], embed.weight[kept] * 2)


def test_model_shapes_tied_sizes_and_state():
    m = AWDLanguageModel(100, 12, 20, 3, tie=True)
    assert m.sizes == [20, 20, 12] and m.decoder.weight is m.encoder.weight
    tokens = torch.randint(0, 100, (7, 4))
    logits, state = m(tokens)
    assert logits.shape == (7, 4, 100) and len(state) == 3
    assert [s[0].shape for s in state] == [(1, 4, 20), (1, 4, 20), (1, 4, 12)]
    logits2, _, (raw, dropped) = m(tokens, state, activations=True)
    assert raw.shape == dropped.shape == (7, 4, 12)
    m.eval()
    a, _ = m(tokens, state)
    b, _ = m(tokens, state)
    assert torch.equal(a, b)  # no dropout of any kind at evaluation


def test_scratch_and_fused_backends_agree_with_weight_drop():
    """Same seed, same masks: the scratch cells (via functional_call) and the fused op give the same loss and
    gradients, so the weight-drop path is right for both."""
    torch.manual_seed(0)
    kw = dict(dropout=0.3, dropout_h=0.2, dropout_i=0.3, dropout_e=0.1, weight_drop=0.5)
    fused = AWDLanguageModel(30, 8, 10, 2, backend="fast", **kw).double()
    scratch = AWDLanguageModel(30, 8, 10, 2, backend="scratch", **kw).double()
    scratch.load_state_dict(fused.state_dict())
    tokens = torch.randint(0, 30, (6, 3))
    grads = []
    for m in (fused, scratch):
        torch.manual_seed(5)
        logits, _ = m(tokens)
        logits.sum().backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
        grads[-1]["logits"] = logits.detach()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-9, atol=1e-9)

"""Every recurrent model with layers of different sizes (``hidden = [a, b]``), in both backends.

Scratch against fused in float64 for each model (outputs and every gradient to 1e-6), the shapes that follow the
last layer's size, the decoding helpers that move per-layer states around (beam reorder, step-level batching), and
the rules a model enforces itself (a tied embedding needs the last layer's size).
"""

from __future__ import annotations

import pytest
import torch

from rnnkit.cells import LayerStack
from rnnkit.cells.stack import flat_state
from rnnkit.models.awd import AWDLanguageModel
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.lm import RNNLanguageModel
from rnnkit.models.seq2seq import Seq2Seq, cat_decoder_states

TOL = dict(rtol=1e-6, atol=1e-6)


def _both(build, seed: int = 0):
    """The model in both backends, float64, the scratch one holding the fused one's weights."""
    torch.manual_seed(seed)
    fused = build("fast").double()
    scratch = build("scratch").double()
    scratch.load_state_dict(fused.state_dict())
    return fused, scratch


def _grads(model, loss):
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return dict(zip([n for n, _ in params], torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)))


def _assert_same_grads(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        if a[name] is None:
            assert b[name] is None, name
            continue
        torch.testing.assert_close(b[name], a[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_language_model_scratch_equals_fused_and_carries_a_state_per_layer(cell):
    fused, scratch = _both(lambda b: RNNLanguageModel(50, 12, [16, 7], 2, cell=cell, backend=b))
    assert isinstance(fused.rnn, LayerStack) and fused.decoder.in_features == 7
    tokens = torch.randint(0, 50, (9, 3))
    targets = torch.randint(0, 50, (9, 3))
    results = []
    for m in (fused, scratch):
        logits, state = m(tokens[:5])  # carried into the next chunk, as training does
        loss, state = m(tokens[5:], state, targets=targets[5:])
        results.append((logits, flat_state(state), _grads(m, loss + logits.sum() * 1e-3)))
    (fl, fs, fg), (sl, ss, sg) = results
    torch.testing.assert_close(sl, fl, **TOL)
    assert [t.shape for t in fs] == ([(1, 3, 16)] * 2 + [(1, 3, 7)] * 2 if cell == "lstm" else [(1, 3, 16), (1, 3, 7)])
    for a, b in zip(ss, fs, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    _assert_same_grads(fg, sg)


def test_language_model_tie_needs_the_last_layers_size():
    m = RNNLanguageModel(40, 8, [16, 8], 2, tie=True)
    assert m.decoder.weight is m.encoder.weight
    with pytest.raises(ValueError, match="last layer"):
        RNNLanguageModel(40, 8, [8, 16], 2, tie=True)


def test_the_notebook_model_has_the_notebooks_parameters():
    """Embedding 200 -> LSTM 256 -> LSTM 128 -> softmax 10,000: 3,955,088 parameters in the notebook's (Keras)
    count, which has one bias vector per LSTM layer; PyTorch keeps two (b_ih and b_hh, only ever summed), 1,536
    entries more holding the same function."""
    m = RNNLanguageModel(10_000, 200, [256, 128], 2)
    total = sum(p.numel() for p in m.parameters())
    redundant = sum(p.numel() for n, p in m.named_parameters() if n.rpartition(".")[2].startswith("bias_hh"))
    assert (total, redundant) == (3_956_624, 4 * 256 + 4 * 128)
    assert total - redundant == 3_955_088


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_mixed_sizes_bidirectional_scratch_equals_fused(bidirectional, pooling):
    fused, scratch = _both(
        lambda b: SequenceClassifier(
            3,
            [10, 6, 4],
            3,
            cell="lstm",
            backend=b,
            vocab_size=30,
            embedding=5,
            bidirectional=bidirectional,
            pooling=pooling,
        )
    )
    assert fused.head.in_features == 4 * (2 if bidirectional else 1)
    x = torch.randint(1, 30, (8, 4))
    lengths = torch.tensor([8, 5, 2, 7])
    results = []
    for m in (fused, scratch):
        logits = m(x, lengths)
        results.append((logits, _grads(m, (logits * torch.arange(12.0).view(4, 3)).sum())))
    torch.testing.assert_close(results[1][0], results[0][0], **TOL)
    _assert_same_grads(results[0][1], results[1][1])
    # padding never changes a prediction: each sequence alone gives the batch's row
    fused.eval()
    alone = torch.cat([fused(x[: lengths[i], i : i + 1], lengths[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(alone, fused(x, lengths), **TOL)


@pytest.mark.parametrize("arch,strategy", [("rnn", "direct"), ("seq2seq", "direct"), ("rnn", "recursive")])
def test_forecaster_mixed_sizes_scratch_equals_fused(arch, strategy):
    fused, scratch = _both(
        lambda b: Forecaster(2, 4, [12, 5], 2, cell="gru", backend=b, arch=arch, strategy=strategy, gaussian=True)
    )
    x = torch.randn(10, 3, 2, dtype=torch.float64)
    results = []
    for m in (fused, scratch):
        mean, logvar = m(x)
        results.append((mean, logvar, _grads(m, mean.sum() + logvar.sum())))
    torch.testing.assert_close(results[1][0], results[0][0], **TOL)
    torch.testing.assert_close(results[1][1], results[0][1], **TOL)
    _assert_same_grads(results[0][2], results[1][2])
    if strategy == "recursive":
        mean, _ = fused.unroll(x, steps=3, repeats=2)  # the per-layer state repeated for each sample path
        assert mean.shape == (6, 3, 2)
        torch.testing.assert_close(mean[::2], mean[1::2])


@pytest.mark.parametrize(
    "attention,input_feed", [("bahdanau", False), ("general", True), ("general", False), ("none", False)]
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_seq2seq_mixed_sizes_scratch_equals_fused(attention, input_feed, bidirectional):
    """The decoder mirrors the encoder's sizes (each decoder layer starts from that encoder layer's state, through
    a bridge of that layer's size when bidirectional); attention and the output see the last layer."""
    fused, scratch = _both(
        lambda b: Seq2Seq(
            20,
            25,
            6,
            [12, 8],
            2,
            cell="lstm",
            backend=b,
            bidirectional=bidirectional,
            attention=attention,
            input_feed=input_feed,
        )
    )
    assert isinstance(fused.encoder, LayerStack) and isinstance(fused.decoder, LayerStack)
    if bidirectional:
        assert [lin.in_features for lin in fused.bridge_h] == [24, 16]
    src = torch.randint(4, 20, (7, 3))
    src_len = torch.tensor([7, 4, 6])
    tgt = torch.randint(4, 25, (5, 3))
    results = []
    for m in (fused, scratch):
        feats, _ = m(src, src_len, tgt)
        logits = m.logits(feats)
        assert logits.shape == (5, 3, 25)
        results.append((logits, _grads(m, logits.sum())))
    torch.testing.assert_close(results[1][0], results[0][0], **TOL)
    _assert_same_grads(results[0][1], results[1][1])


def test_seq2seq_per_layer_states_reorder_and_batch():
    """Beam search reorders rows of the per-layer state; step-level batching concatenates states of requests
    with different source lengths: both give what each row computes alone."""
    torch.manual_seed(0)
    m = Seq2Seq(20, 25, 6, [12, 8], 2, cell="lstm", attention="general").eval()
    a = m.encode(torch.randint(4, 20, (5, 1)), None)
    b = m.encode(torch.randint(4, 20, (3, 1)), None)
    tokens = torch.tensor([1])
    with torch.no_grad():
        fa, sa, _ = m.step(tokens, a)
        fb, sb, _ = m.step(tokens, b)
        both = cat_decoder_states([a, b])
        fab, sab, _ = m.step(torch.tensor([1, 1]), both)
        torch.testing.assert_close(fab, torch.cat([fa, fb]), rtol=1e-5, atol=1e-6)
        swapped = sab.select(torch.tensor([1, 0]))
        for x, y in zip(flat_state(swapped.rnn), flat_state(cat_decoder_states([sb, sa]).rnn), strict=True):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_awd_takes_one_size_per_layer():
    m = AWDLanguageModel(60, 10, [24, 16, 10], 3, tie=True)
    assert m.sizes == [24, 16, 10] and isinstance(m.rnns, LayerStack)
    assert "rnns.1.weight_hh_l0" in m.state_dict()  # AWD's names are unchanged: a LayerStack is a ModuleList
    _, state = m(torch.randint(0, 60, (4, 2)))
    assert [s[0].shape[-1] for s in state] == [24, 16, 10]
    with pytest.raises(ValueError, match="last layer"):
        AWDLanguageModel(60, 10, [24, 16, 12], 3, tie=True)
    assert AWDLanguageModel(60, 10, 24, 3, tie=True).sizes == [24, 24, 10]  # one size: as before

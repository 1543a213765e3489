"""Beam search against hand-made decoders whose best outputs are known, and on a real seq2seq model."""

from __future__ import annotations

import math

import torch

from rnnkit.decode.beam import beam_search, greedy_search, length_penalty
from rnnkit.models.seq2seq import Seq2Seq

GO, EOS, A, B, C = 0, 1, 2, 3, 4
CPU = torch.device("cpu")


def markov(table: dict[int, dict[int, float]], vocab: int = 5):
    """A decoder whose next-token distribution depends only on the previous token (state: a row bias)."""
    logits = torch.full((vocab, vocab), -30.0)
    for prev, row in table.items():
        for tok, p in row.items():
            logits[prev, tok] = math.log(p)

    def step(tokens, state):
        return logits[tokens] + state, state, None

    return step, (lambda state, idx: state[idx])


# greedy takes A (0.6) but everything after A is poor; B (0.4) then EOS (0.95) is the best sentence
TRAP = {GO: {A: 0.6, B: 0.4}, A: {A: 0.3, B: 0.3, C: 0.4}, B: {EOS: 0.95, C: 0.05}, C: {EOS: 0.5, C: 0.5}}


def test_beam_finds_the_sentence_greedy_misses():
    step, reorder = markov(TRAP)
    state = torch.zeros(1, 5)
    g = greedy_search(step, state, 1, GO, EOS, 10, CPU)[0]
    assert g.tokens[0] == A
    best = beam_search(step, state, reorder, 1, 3, GO, EOS, 10, CPU)[0][0]
    assert best.tokens == [B] and best.finished
    assert math.isclose(best.logprob, math.log(0.4) + math.log(0.95), rel_tol=1e-5)
    assert best.logprob > g.logprob


def test_beam_of_one_is_greedy_and_rows_are_independent():
    step, reorder = markov(TRAP)
    bias = torch.zeros(3, 5)
    bias[1, B] = 2.0  # row 1 prefers B everywhere, row 2 prefers C
    bias[2, C] = 1.5
    greedy = greedy_search(step, bias, 3, GO, EOS, 8, CPU)
    beam1 = beam_search(step, bias, reorder, 3, 1, GO, EOS, 8, CPU, alpha=0.7)
    assert [h.tokens for h in greedy] == [h[0].tokens for h in beam1]
    batched = beam_search(step, bias, reorder, 3, 4, GO, EOS, 8, CPU, n_best=4)
    for i in range(3):
        alone = beam_search(step, bias[i : i + 1], reorder, 1, 4, GO, EOS, 8, CPU, n_best=4)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batched[i]]
        scores = [h.score for h in batched[i]]
        assert scores == sorted(scores, reverse=True) and len(scores) == 4


def test_length_penalty_favours_longer_outputs():
    # EOS at once: log 0.35; A then EOS: log 0.65 + log 0.45 (lower in total, higher per token)
    table = {GO: {EOS: 0.35, A: 0.65}, A: {EOS: 0.45, A: 0.55}}
    step, reorder = markov(table)
    state = torch.zeros(1, 5)
    plain = beam_search(step, state, reorder, 1, 4, GO, EOS, 6, CPU, alpha=0.0)[0][0]
    assert plain.tokens == []
    long = beam_search(step, state, reorder, 1, 4, GO, EOS, 6, CPU, alpha=2.0)[0][0]
    assert long.tokens == [A]
    assert torch.allclose(length_penalty(torch.tensor([1]), 2.0), torch.tensor([1.0]))


def test_max_length_and_min_length():
    step, reorder = markov({GO: {A: 1.0}, A: {A: 1.0}})
    state = torch.zeros(2, 5)
    hyps = beam_search(step, state, reorder, 2, 2, GO, EOS, 4, CPU)
    assert all(h[0].tokens == [A] * 4 and not h[0].finished for h in hyps)
    step, reorder = markov({GO: {EOS: 0.9, A: 0.1}, A: {EOS: 1.0}})
    assert greedy_search(step, torch.zeros(1, 5), 1, GO, EOS, 5, CPU)[0].tokens == []
    assert greedy_search(step, torch.zeros(1, 5), 1, GO, EOS, 5, CPU, min_len=1)[0].tokens == [A]
    assert beam_search(step, torch.zeros(1, 5), reorder, 1, 2, GO, EOS, 5, CPU, min_len=1)[0][0].tokens == [A]


def _model_step(model):
    def step(tokens, st):
        feat, st, w = model.step(tokens, st)
        return model.logits(feat), st, w

    return step


def test_seq2seq_beam_of_one_equals_greedy_on_a_padded_batch():
    torch.manual_seed(0)
    for attention in ("general", "bahdanau"):
        model = Seq2Seq(
            30,
            25,
            embedding=8,
            hidden=16,
            layers=2,
            cell="lstm",
            bidirectional=True,
            attention=attention,
            input_feed=True,
            init_scale=0.5,
        ).eval()
        src = torch.randint(4, 30, (7, 4))
        lengths = torch.tensor([7, 3, 5, 1])
        src[3:, 1] = 0
        src[5:, 2] = 0
        src[1:, 3] = 0
        st = model.encode(src, lengths)
        step = _model_step(model)
        greedy = greedy_search(step, st, 4, 2, 3, 12, CPU, banned=[0, 2])
        beam1 = beam_search(step, st, lambda s, i: s.select(i), 4, 1, 2, 3, 12, CPU, banned=[0, 2])
        assert [h.tokens for h in greedy] == [b[0].tokens for b in beam1]
        for g, b in zip(greedy, beam1):
            assert math.isclose(g.logprob, b[0].logprob, rel_tol=1e-4, abs_tol=1e-4)
            assert torch.allclose(g.attention, b[0].attention, atol=1e-6)
        # and each sentence decodes the same alone as in the padded batch
        wide = beam_search(step, st, lambda s, i: s.select(i), 4, 3, 2, 3, 12, CPU, banned=[0, 2])
        for j in range(4):
            n = int(lengths[j])
            alone = model.encode(src[:n, j : j + 1], lengths[j : j + 1])
            one = beam_search(step, alone, lambda s, i: s.select(i), 1, 3, 2, 3, 12, CPU, banned=[0, 2])[0]
            assert one[0].tokens == wide[j][0].tokens

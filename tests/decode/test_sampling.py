"""Sampling never runs out of candidates: the most likely token survives any top-k / top-p setting."""

from __future__ import annotations

import pytest
import torch

from rnnkit.decode.sampling import SamplingOptions, filter_logits, sample_next


@pytest.mark.parametrize("top_p", [1e-323, 1e-45, 1e-8, 0.5, 1.0])
def test_top_p_always_keeps_the_most_likely_token(top_p):
    logits = torch.randn(3, 40, generator=torch.Generator().manual_seed(0))
    kept = torch.isfinite(filter_logits(logits, SamplingOptions(top_p=top_p), banned=[0]))
    assert kept.gather(1, logits[:, 1:].argmax(-1, keepdim=True) + 1).all()
    nxt = sample_next(logits, SamplingOptions(top_p=top_p), torch.Generator().manual_seed(1), banned=[0])
    assert nxt.shape == (3,) and (nxt != 0).all()


def test_sample_rows_draws_from_the_filtered_distribution():
    from rnnkit.decode.sampling import sample_rows

    probs = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    logits = probs.clamp(min=1e-30).log().expand(20_000, 5).clone()
    logits[:, 4] = float("-inf")
    gens = [torch.Generator().manual_seed(i) for i in range(20_000)]
    opts = SamplingOptions(temperature=1.0)
    freq = torch.bincount(sample_rows(logits, [opts] * 20_000, gens), minlength=5).double() / 20_000
    assert torch.allclose(freq, probs.double(), atol=0.012)  # > 3 sigma at this size
    top2 = SamplingOptions(top_k=2)
    freq = torch.bincount(sample_rows(logits, [top2] * 20_000, gens), minlength=5).double() / 20_000
    assert freq[2:].sum() == 0 and abs(freq[0] - 0.625) < 0.012  # 0.5 / (0.5 + 0.3)
    banned = sample_rows(logits, [opts] * 20_000, gens, banned=[0])
    assert not bool((banned == 0).any()) and not bool((banned == 4).any())


def test_sample_rows_gives_a_row_the_same_token_whatever_rows_share_its_call():
    """Each row: its own options, its own generator, one draw; equal options are filtered together. A row sampled
    in a batch of mixed rows equals the same row sampled alone with a fresh copy of its generator."""
    from rnnkit.decode.sampling import sample_rows

    torch.manual_seed(0)
    logits = torch.randn(6, 300) * 3
    opts = [
        SamplingOptions(0.8, 40),
        SamplingOptions(0.0),
        SamplingOptions(1.2, 0, 0.9),
        SamplingOptions(0.8, 40),
        SamplingOptions(1.0, 1),
        SamplingOptions(0.5, 5, 0.95),
    ]
    for step in range(5):
        batched = sample_rows(logits, opts, [torch.Generator().manual_seed(10 * step + r) for r in range(6)])
        alone = [
            int(sample_rows(logits[r : r + 1], [opts[r]], [torch.Generator().manual_seed(10 * step + r)]))
            for r in range(6)
        ]
        assert batched.tolist() == alone
        assert batched[1] == logits[1].argmax() and batched[4] == logits[4].argmax()  # greedy rows

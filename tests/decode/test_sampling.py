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

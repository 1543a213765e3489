"""Sampled softmax (Jean et al. 2015): the training loss over a sample of the target vocabulary."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def log_uniform_probs(n: int) -> Tensor:
    """P(k) = log((k + 2) / (k + 1)) / log(n + 1): Zipf-like, for a vocabulary sorted by frequency."""
    k = torch.arange(n, dtype=torch.float64)
    return (torch.log1p(1.0 / (k + 1)) / np.log(n + 1)).float()


def sampled_softmax_loss(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    num_sampled: int,
    probs: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean sampled-softmax loss (Jean et al. 2015): the true class against ``num_sampled`` classes shared by the
    batch, drawn from ``probs`` (log-uniform), each logit corrected by -log(expected count), accidental hits
    removed. features (N, D), weight (V, D), targets (N,)."""
    draws = torch.multinomial(probs, num_sampled, replacement=True, generator=generator)
    sampled = torch.unique(draws).to(features.device)  # (K,)
    expected = -torch.expm1(num_sampled * torch.log1p(-probs.clamp(max=1 - 1e-7))).to(features.device)  # (V,)
    log_q = torch.log(expected.clamp(min=1e-12))
    true_logit = (features * weight[targets]).sum(-1) - log_q[targets]  # (N,)
    samp_logit = features @ weight[sampled].t() - log_q[sampled]  # (N, K)
    if bias is not None:
        true_logit = true_logit + bias[targets]
        samp_logit = samp_logit + bias[sampled]
    samp_logit = samp_logit.masked_fill(sampled.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([true_logit.unsqueeze(1), samp_logit], 1).float()
    return F.cross_entropy(logits, torch.zeros_like(targets))

"""Choosing the next token from logits.

Temperature divides the logits; top-k keeps the k most likely tokens; top-p (nucleus) keeps the smallest set
whose probability reaches p. A temperature of 0 (or below 1e-4, where exp() would overflow into NaN) means
greedy argmax, so "very cold" sampling degrades gracefully instead of failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

GREEDY_BELOW = 1e-4


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off

    def validate(self) -> None:
        from rnnkit.errors import UserError

        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise UserError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise UserError(f"top-k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top-p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW or self.top_k == 1


def filter_logits(logits: Tensor, opts: SamplingOptions, banned: list[int] | None = None) -> Tensor:
    """Temperature-scaled logits with everything outside top-k / top-p set to -inf. logits: (batch, vocab)."""
    logits = logits.float()
    if banned:
        logits = logits.clone()
        logits[:, banned] = float("-inf")
    logits = logits / max(opts.temperature, GREEDY_BELOW)
    if opts.top_k and opts.top_k < logits.size(-1):
        kth = torch.topk(logits, opts.top_k, dim=-1).values[:, -1:]  # (batch, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the tokens before it already reach top_p (the first one is always kept)
        drop_sorted = (probs.cumsum(-1) - probs) >= opts.top_p
        drop_sorted[..., 0] = False  # also when top_p is below float32's smallest number (1e-323 rounds to 0)
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: Tensor, opts: SamplingOptions, generator: torch.Generator | None = None,
                banned: list[int] | None = None) -> Tensor:
    """Next token ids, (batch,), from logits (batch, vocab)."""
    if opts.greedy:
        logits = logits.float()
        if banned:
            logits = logits.clone()
            logits[:, banned] = float("-inf")
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, opts, banned), dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)

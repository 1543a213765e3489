"""Choosing the next token from logits.

Temperature divides the logits; top-k keeps the k most likely tokens; top-p (nucleus) keeps the smallest set
whose probability reaches p. A temperature of 0 (or below 1e-4, where exp() would overflow into NaN) means
greedy argmax, so "very cold" sampling degrades gracefully instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def sample_next(
    logits: Tensor, opts: SamplingOptions, generator: torch.Generator | None = None, banned: list[int] | None = None
) -> Tensor:
    """Next token ids, (batch,), from logits (batch, vocab)."""
    if opts.greedy:
        logits = logits.float()
        if banned:
            logits = logits.clone()
            logits[:, banned] = float("-inf")
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, opts, banned), dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def sample_rows(
    logits: Tensor,
    opts: Sequence[SamplingOptions],
    generators: Sequence[torch.Generator | None],
    banned: list[int] | None = None,
) -> Tensor:
    """Next token ids (rows,) for logits (rows, vocab), row ``r`` with its own ``opts[r]`` and ``generators[r]``.

    Built for step-level batching (``rnnkit.decode.stream``): what row ``r`` gets depends only on its own logits
    row, its options and its generator, never on the other rows - rows with equal options are filtered together
    (every operation is row-wise), and each sampled row draws exactly one uniform number from its own generator
    and picks the token where that number falls in the cumulative distribution. So a seeded request
    samples the same tokens batched or alone, and a batch costs one vectorised pass, not one per row (``sample_next``
    draws a number per vocabulary entry). Greedy rows (temperature ~0 or top-k 1) take the argmax.
    """
    logits = logits.float()
    if banned:
        logits = logits.clone()
        logits[:, banned] = float("-inf")
    rows, vocab = logits.shape
    out = torch.empty(rows, dtype=torch.long, device=logits.device)
    groups: dict[SamplingOptions, list[int]] = {}
    for r, o in enumerate(opts):
        groups.setdefault(o, []).append(r)
    for o, members in groups.items():
        idx = torch.tensor(members, device=logits.device)
        part = logits if len(members) == rows else logits.index_select(0, idx)  # (group, vocab)
        if o.greedy:
            out[idx] = part.argmax(-1)
            continue
        probs = torch.softmax(filter_logits(part, o), dim=-1)  # (group, vocab)
        cdf = probs.cumsum(-1)  # fp32: a token's share is off by ~1e-7 at most, row for row the same batched or alone
        u = torch.cat([torch.rand(1, dtype=torch.float64, generator=generators[r]) for r in members]).float()
        target = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1)  # (group, 1)
        tok = torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_(max=vocab - 1)
        # rounding at the very top of the distribution must not land on a token of probability zero
        ok = probs.gather(1, tok.unsqueeze(1)).squeeze(1) > 0
        if not bool(ok.all()):
            last = vocab - 1 - (probs > 0).flip(-1).to(torch.uint8).argmax(-1)
            tok = torch.where(ok, tok, last)
        out[idx] = tok
    return out

"""Attention over an encoder's outputs: Bahdanau (additive) and Luong (dot, general) scores.

``score(q, k)``:
    additive (Bahdanau et al. 2015):  v . tanh(W_q q + W_k k)
    dot      (Luong et al. 2015):     q . k           (needs equal sizes)
    general  (Luong et al. 2015):     q . (W k)

Keys are projected once per source sentence (``prepare``), not once per decoder step. Weights are a softmax over
each sentence's real tokens only: padding gets exactly 0, so a padded batch gives the same result as each
sentence alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SCORES = ("additive", "dot", "general")


class Attention(nn.Module):
    def __init__(self, query_size: int, memory_size: int, score: str = "general", attention_size: int = 0) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"unknown attention score {score!r}; choose one of {', '.join(SCORES)}")
        if score == "dot" and query_size != memory_size:
            raise ValueError(
                f"dot attention needs equal decoder and encoder output sizes (got {query_size} and "
                f"{memory_size}); use 'general' or 'bahdanau'"
            )
        self.score_kind = score
        if score == "additive":
            size = attention_size or query_size
            self.key_proj = nn.Linear(memory_size, size, bias=False)
            self.query_proj = nn.Linear(query_size, size, bias=True)
            self.v = nn.Linear(size, 1, bias=False)
        elif score == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        """Keys from the encoder outputs ``memory`` (B, S, M): (B, S, K)."""
        if self.score_kind == "dot":
            return memory
        return self.key_proj(memory)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """query (B, T, Q), keys (B, S, K) -> unnormalised scores (B, T, S)."""
        if self.score_kind == "additive":
            q = self.query_proj(query).unsqueeze(2)  # (B, T, 1, A)
            return self.v(torch.tanh(q + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)
        return torch.bmm(query, keys.transpose(1, 2))

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Context and weights for a query.

        query (B, Q) for one step or (B, T, Q) for T steps at once; keys from ``prepare``; memory (B, S, M);
        mask (B, S) True on real tokens. Returns context (B, M) or (B, T, M), and weights (B, S) or (B, T, S)
        that sum to 1 over the real tokens and are 0 on padding.
        """
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query
        s = self.scores(q, keys).float()  # softmax in float32 even under reduced precision
        s = s.masked_fill(~mask.unsqueeze(1), float("-inf"))
        w = torch.softmax(s, dim=-1).to(memory.dtype)  # (B, T, S)
        ctx = torch.bmm(w, memory)  # (B, T, M)
        return (ctx.squeeze(1), w.squeeze(1)) if single else (ctx, w)

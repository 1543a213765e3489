"""Many-to-one recurrent classifier: a sequence in, one label out."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.cells import RecurrentSpec, make_recurrent

POOLINGS = ("last", "mean", "max")


class SequenceClassifier(nn.Module):
    """(Embedding or raw features) -> recurrent stack -> pooling over time -> dropout -> linear.

    ``last`` pooling uses the final hidden state of the top layer (both directions when bidirectional), taken at
    each sequence's own last valid step; ``mean``/``max`` pool the top layer's outputs over valid steps only.
    """

    def __init__(self, num_classes: int, hidden: int, layers: int = 1, cell: str = "lstm", backend: str = "fused",
                 input_size: int = 0, vocab_size: int = 0, embedding: int = 0, bidirectional: bool = False,
                 dropout: float = 0.0, pooling: str = "last", padding_idx: int | None = None) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=padding_idx) if vocab_size else None
        rnn_in = embedding if vocab_size else input_size
        self.spec = RecurrentSpec(cell, rnn_in, hidden, layers, bidirectional=bidirectional, dropout=dropout)
        self.rnn = make_recurrent(self.spec, backend)
        self.drop = nn.Dropout(dropout)
        self.pooling = pooling
        self.head = nn.Linear(self.spec.output_size, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        # x: (seq, batch) token ids, or (seq, batch, features); lengths: (batch,) or None
        if self.embed is not None:
            x = self.drop(self.embed(x))  # (seq, batch, embedding)
        out, state = self.rnn(x, None, lengths)  # out: (seq, batch, hidden * dirs)
        if self.pooling == "last":
            h = state[0] if isinstance(state, tuple) else state  # (layers * dirs, batch, hidden)
            d = self.spec.directions
            pooled = torch.cat([h[-d + i] for i in range(d)], dim=-1)  # (batch, hidden * dirs)
        else:
            steps = torch.arange(out.size(0), device=out.device).unsqueeze(1)  # (seq, 1)
            valid = (steps < lengths.to(out.device).unsqueeze(0)) if lengths is not None else torch.ones_like(
                steps, dtype=torch.bool).expand(out.size(0), out.size(1))
            mask = valid.unsqueeze(-1)  # (seq, batch, 1)
            if self.pooling == "mean":
                pooled = (out * mask).sum(0) / mask.sum(0).clamp(min=1)
            else:
                pooled = out.masked_fill(~mask, float("-inf")).max(0).values
        return self.head(self.drop(pooled))  # (batch, classes)

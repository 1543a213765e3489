"""Many-to-one recurrent classifier: a sequence in, one label out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells import RecurrentSpec, make_recurrent
from rnnkit.cells.dropout import Dropout
from rnnkit.cells.stack import final_output

POOLINGS = ("last", "mean", "max", "attention")


class AdditivePooling(nn.Module):
    """Additive attention over time (Bahdanau et al. 2015; Yang et al. 2016 for classification).

    ``score_t = v . tanh(W h_t + b)``, softmax over each sequence's valid steps only (padding gets weight 0),
    output ``sum_t a_t h_t``. The weights of the last call are kept in ``weights`` ((seq, batch), detached).
    """

    def __init__(self, size: int, attention_size: int = 0) -> None:
        super().__init__()
        attention_size = attention_size or size
        self.proj = nn.Linear(size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)
        self.weights: Tensor | None = None

    def forward(self, out: Tensor, valid: Tensor) -> Tensor:
        # out: (seq, batch, size); valid: (seq, batch) bool
        scores = self.score(torch.tanh(self.proj(out))).squeeze(-1)  # (seq, batch)
        scores = scores.masked_fill(~valid, float("-inf"))
        a = torch.softmax(scores, dim=0)
        self.weights = a.detach()
        return (a.unsqueeze(-1) * out).sum(0)  # (batch, size)


class SequenceClassifier(nn.Module):
    """(Embedding or raw features) -> recurrent stack -> pooling over time -> dropout -> linear.

    ``last`` pooling uses the top layer's output at the end of its reading of each sequence (both directions when
    bidirectional): the forward direction's at the sequence's own last valid step, the backward one's at its
    first - the final ``h`` where the cell's state holds it; ``mean``/``max``/``attention`` pool the top layer's
    outputs over valid steps only, so padding never changes a sequence's prediction.
    """

    def __init__(
        self,
        num_classes: int,
        hidden: int | Sequence[int],
        layers: int = 1,
        cell: str = "lstm",
        backend: str = "fast",
        input_size: int = 0,
        vocab_size: int = 0,
        embedding: int = 0,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
        padding_idx: int | None = None,
        attention_size: int = 0,
        project: int = 0,
        cell_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=padding_idx) if vocab_size else None
        # raw features: an optional per-step Linear + ReLU first (the TF HAR set-up's input layer)
        self.project = nn.Sequential(nn.Linear(input_size, project), nn.ReLU()) if project and not vocab_size else None
        rnn_in = embedding if vocab_size else (project or input_size)
        self.spec = RecurrentSpec(
            cell,
            rnn_in,
            hidden if isinstance(hidden, int) else tuple(hidden),
            layers,
            bidirectional=bidirectional,
            dropout=dropout,
            **dict(cell_options or {}),
        )
        self.rnn = make_recurrent(self.spec, backend)
        self.drop = Dropout(dropout)
        self.pooling = pooling
        self.attend = AdditivePooling(self.spec.output_size, attention_size) if pooling == "attention" else None
        self.head = nn.Linear(self.spec.output_size, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        # x: (seq, batch) token ids, or (seq, batch, features); lengths: (batch,) or None
        if self.embed is not None:
            x = self.drop(self.embed(x))  # (seq, batch, embedding)
        elif self.project is not None:
            x = self.project(x)  # (seq, batch, project)
        out, state = self.rnn(x, None, lengths)  # out: (seq, batch, hidden * dirs)
        if self.pooling == "last":
            h = final_output(self.rnn, out, state, lengths)  # (dirs, batch, last hidden)
            pooled = torch.cat(h.unbind(0), dim=-1)  # (batch, last hidden * dirs)
        else:
            steps = torch.arange(out.size(0), device=out.device).unsqueeze(1)  # (seq, 1)
            valid = (
                (steps < lengths.to(out.device).unsqueeze(0))
                if lengths is not None
                else torch.ones_like(steps, dtype=torch.bool).expand(out.size(0), out.size(1))
            )  # (seq, batch)
            mask = valid.unsqueeze(-1)  # (seq, batch, 1)
            if self.pooling == "mean":
                pooled = (out * mask).sum(0) / mask.sum(0).clamp(min=1)
            elif self.pooling == "max":
                pooled = out.masked_fill(~mask, float("-inf")).max(0).values
            else:
                assert self.attend is not None
                pooled = self.attend(out, valid)
        return self.head(self.drop(pooled))  # (batch, classes)

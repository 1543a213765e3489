"""The recurrent language model of Zaremba et al. and the pytorch/examples word language model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells import RecurrentSpec, State, make_recurrent, registry
from rnnkit.cells.dropout import Dropout
from rnnkit.ops.loss import linear_cross_entropy


class RNNLanguageModel(nn.Module):
    """Embedding -> stacked recurrent layers of any registered cell (either backend) -> dropout -> linear decoder
    over the vocabulary.

    Dropout is applied to the embeddings, between recurrent layers and before the decoder, never on the
    recurrent connections (Zaremba et al. 2014). ``tie`` shares the embedding and decoder weights
    (Press & Wolf 2017; Inan et al. 2017), which needs ``embedding`` == the last layer's size.

    ``hidden`` is one size for every layer or one per layer (``[256, 128]``: the seed notebook's PTB model); with
    sizes that differ, ``rnn`` is a :class:`~rnnkit.cells.stack.LayerStack` and the state one per layer.
    ``cell_options``: the cell's own hyperparameters (``RecurrentSpec`` fields such as ``heads``).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding: int,
        hidden: int | Sequence[int],
        layers: int,
        cell: str = "lstm",
        backend: str = "fast",
        dropout: float = 0.0,
        tie: bool = False,
        init_scale: float = 0.1,
        forget_bias: float = 0.0,
        cell_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        entry = registry.get(cell)
        self.own_init = entry.own_init
        self.classic_forget_gate = entry.step is not None and entry.supports("forget_bias")  # in bias_ih, i f g o
        # a cell with an initialisation of its own takes the forget bias at construction; the classic LSTMs get it
        # after the model-wide uniform init below (init_weights)
        spec = RecurrentSpec(
            cell,
            embedding,
            hidden if isinstance(hidden, int) else tuple(hidden),
            layers,
            dropout=dropout,
            forget_bias=forget_bias if entry.own_init else 0.0,
            **dict(cell_options or {}),
        )
        last = spec.sizes[-1]
        if tie and embedding != last:
            raise ValueError(
                f"tied weights need model.embedding == the last layer's model.hidden (got {embedding} and {last})"
            )
        self.drop = Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, embedding)
        self.rnn = make_recurrent(spec, backend)
        self.decoder = nn.Linear(last, vocab_size)
        if tie:
            self.decoder.weight = self.encoder.weight
        self.cell = cell
        self.init_weights(init_scale, forget_bias)

    def init_weights(self, scale: float, forget_bias: float = 0.0) -> None:
        """Uniform in [-scale, scale] for every parameter (Zaremba: 0.1 small, 0.05 medium, 0.04 large) - except a
        cell's whose registry entry says its own initialisation matters (``own_init``: decay rates, gate biases)."""
        if scale > 0:
            for name, p in self.named_parameters():
                if not (self.own_init and name.startswith("rnn.")):
                    nn.init.uniform_(p, -scale, scale)
        if forget_bias and self.classic_forget_gate:
            for name, p in self.rnn.named_parameters():
                if name.rpartition(".")[2].startswith("bias_ih"):  # "bias_ih_l0", or "1.bias_ih_l0" in a stack
                    h = p.size(0) // 4
                    p.data[h : 2 * h].add_(forget_bias)  # gate order i, f, g, o
        if hasattr(self.rnn, "flatten_parameters"):
            self.rnn.flatten_parameters()

    def forward(
        self, tokens: Tensor, state: State | None = None, activations: bool = False, targets: Tensor | None = None
    ) -> Any:
        """``(logits, state)``; with ``activations`` also ``(last layer output, the same after dropout)``.

        With ``targets`` (seq, batch) the first element is the mean cross-entropy of the targets instead of the
        logits: the decoder and the softmax then run as one function that never keeps the logits
        (``linear_cross_entropy``), the fast path for training. The activations feed AR/TAR regularisation
        (``optim.ar``, ``optim.tar``) in the language-model task.
        """
        # tokens: (seq, batch)
        emb = self.drop(autocast_rows(self.encoder(tokens)))  # (seq, batch, embedding)
        out, state = self.rnn(emb, state)  # (seq, batch, last hidden)
        dropped = self.drop(out)  # (seq, batch, last hidden)
        head = decode(self.decoder, dropped, targets)  # (seq, batch, vocab), or the loss
        if activations:
            return head, state, (out, dropped)
        return head, state


def autocast_rows(x: Tensor) -> Tensor:
    """Embedding rows in autocast's dtype where it is on (bf16/fp16), else as they are: the lookup itself is not
    autocast, and the rows would otherwise go through dropout in fp32 only to be cast before the first GEMM."""
    kind = x.device.type
    if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind):
        return x.to(torch.get_autocast_dtype(kind))
    return x


def decode(decoder: nn.Linear, x: Tensor, targets: Tensor | None) -> Tensor:
    """The decoder's logits for ``x`` (seq, batch, features), or with ``targets`` their mean cross-entropy."""
    if targets is None:
        return decoder(x)  # (seq, batch, vocab)
    return linear_cross_entropy(x.reshape(-1, x.size(-1)), decoder.weight, decoder.bias, targets.reshape(-1))

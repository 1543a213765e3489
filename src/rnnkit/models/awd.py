"""The AWD-LSTM language model (Merity, Keskar & Socher 2017, "Regularizing and Optimizing LSTM Language Models").

A stack of single-layer recurrent modules, one per layer so each can have its own size and its own dropout:

    tokens -> embedding (embedding dropout: whole rows, i.e. whole words, dropped)
           -> locked dropout (dropout_i) -> LSTM 1 -> locked dropout (dropout_h) -> LSTM 2 -> ...
           -> LSTM L -> locked dropout (dropout) -> decoder (tied to the embedding)

* Weight drop (DropConnect) on every hidden-to-hidden matrix: one mask per forward pass, shared by all time
  steps and all sequences, so the recurrence is regularised without touching the kernel's inner loop.
  The dropped matrix is passed to PyTorch's op directly (``torch.lstm`` with the layer's own ``weight_ih``
  and biases) - the module's parameters are never replaced, so cuDNN's flat weight buffer and the state dict
  stay intact; the scratch backend gets it through ``torch.func.functional_call``. Only cells with such matrices
  support it (the registry's ``weight_drop`` option); any registered cell runs here with ``weight_drop = 0``.
* Locked (variational) dropout: one mask per sequence, the same at every time step (Gal & Ghahramani 2016).
* Per-layer sizes: layers 1..L-1 have ``hidden`` units, the last has ``embedding`` units when tied (1150,
  1150, 400 in the paper) so the decoder can share the embedding matrix (Inan et al.; Press & Wolf 2017); or
  ``hidden`` lists every layer's size (the last must then equal ``embedding`` when tied). The layers are a
  :class:`~rnnkit.cells.stack.LayerStack` (one module per layer, state one per layer), as any stack of mixed
  sizes is; AWD runs them itself to put its own dropout between them.

All randomness comes from torch's global RNG, which the trainer checkpoints, so resume stays exact.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from rnnkit.cells import LayerStack, RecurrentSpec, State, registry
from rnnkit.cells.kernel import master_state
from rnnkit.models.lm import decode

# The dropped hidden-to-hidden matrix cannot live in cuDNN's flat buffer; cuDNN copies it in each call (as in the
# reference implementation). The warning about that is expected here, not a sign of a problem.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")

_KERNEL_OPS = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with one mask per (sequence, feature), reused at every time step."""
    # x: (seq, batch, features)
    if not training or p == 0.0:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1.0 - p).div_(1.0 - p)  # (1, batch, features)
    return x * mask


def embedding_dropout(embed: nn.Embedding, tokens: Tensor, p: float, training: bool) -> Tensor:
    """Drop whole rows of the embedding matrix (every occurrence of a word in the batch), rescaling the rest."""
    # tokens: (seq, batch) -> (seq, batch, embedding)
    weight = embed.weight  # (vocab, embedding)
    if training and p > 0.0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1.0 - p).div_(1.0 - p)  # (vocab, 1)
        weight = weight * mask
    return F.embedding(tokens, weight, embed.padding_idx)


def kernel_with_weight_hh(rnn: nn.RNNBase, x: Tensor, state: State | None, w_hh: Tensor) -> tuple[Tensor, State]:
    """Run a single-layer unidirectional ``nn.LSTM``/``nn.GRU``/``nn.RNN`` with ``w_hh`` as its recurrent matrix.

    The same ATen op ``nn.LSTM.forward`` calls (cuDNN on CUDA, oneDNN on CPU, autocast-aware), given the layer's
    own input weights and biases plus the dropped ``w_hh``; gradients flow to the raw parameters. The state comes
    back in the parameters' dtype, as from the module itself (``rnnkit.cells.kernel.master_state``).
    """
    # x: (seq, batch, input); state: (1, batch, hidden) or a pair of them for an LSTM
    cell = rnn.spec.cell  # type: ignore[attr-defined]
    weights = [rnn.weight_ih_l0, w_hh]
    if rnn.bias:
        weights += [rnn.bias_ih_l0, rnn.bias_hh_l0]
    if state is None:
        zeros = x.new_zeros(1, x.size(1), rnn.hidden_size)
        state = (zeros, zeros) if cell == "lstm" else zeros
    args = (weights, rnn.bias, 1, 0.0, True, False, False)  # params, biases, layers, dropout, train, bidir, batch1st
    if cell == "lstm":
        out, h, c = torch.lstm(x, list(state), *args)  # type: ignore[arg-type]
        return out, master_state(rnn, (h, c))
    out, h = _KERNEL_OPS[cell](x, state, *args)
    return out, master_state(rnn, h)


class AWDLanguageModel(nn.Module):
    """AWD-LSTM: weight-dropped, locked-dropout recurrent stack (any registered cell) with tied embedding/decoder.

    ``forward(tokens, state)`` returns ``(logits, state)`` like :class:`RNNLanguageModel`, so evaluation,
    generation and serving need nothing special; ``state`` is a tuple with one entry per layer (each the cell's
    state for one layer: ``(h, c)`` for LSTMs, each ``(1, batch, size)``) since layer sizes differ.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding: int,
        hidden: int | Sequence[int],
        layers: int,
        cell: str = "lstm",
        backend: str = "fast",
        dropout: float = 0.4,
        dropout_h: float = 0.25,
        dropout_i: float = 0.4,
        dropout_e: float = 0.1,
        weight_drop: float = 0.5,
        tie: bool = True,
        init_scale: float = 0.1,
        cell_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if weight_drop and not registry.get(cell).supports("weight_drop"):
            others = ", ".join(registry.supporting("weight_drop"))
            raise ValueError(f"cell {cell!r} has no hidden-to-hidden matrix to weight-drop (cells with one: {others})")
        if layers < 1:
            raise ValueError(f"model.layers must be >= 1, got {layers}")
        for name, p in (
            ("dropout", dropout),
            ("dropout_h", dropout_h),
            ("dropout_i", dropout_i),
            ("dropout_e", dropout_e),
            ("weight_drop", weight_drop),
        ):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"model.{name} must be in [0, 1), got {p}")
        self.cell, self.backend = cell, backend
        self.dropout, self.dropout_h, self.dropout_i, self.dropout_e = dropout, dropout_h, dropout_i, dropout_e
        self.weight_drop = weight_drop
        self.encoder = nn.Embedding(vocab_size, embedding)
        if isinstance(hidden, int):
            self.sizes = [hidden] * (layers - 1) + [embedding if tie else hidden]  # output size of each layer
        else:
            self.sizes = list(hidden)
            if tie and self.sizes[-1] != embedding:
                raise ValueError(
                    f"tied weights need the last layer's model.hidden == model.embedding (got "
                    f"{self.sizes[-1]} and {embedding})"
                )
        # one module per layer, even where sizes agree: weight drop and the dropouts go between them
        spec = RecurrentSpec(cell, embedding, self.sizes, layers, **dict(cell_options or {}))
        self.rnns = LayerStack(spec, registry.canonical_backend(backend))
        self.decoder = nn.Linear(self.sizes[-1], vocab_size)
        if tie:
            self.decoder.weight = self.encoder.weight
        self.init_weights(init_scale)

    def init_weights(self, scale: float) -> None:
        """As the reference code: embedding/decoder uniform in [-scale, scale], decoder bias 0; the recurrent
        layers keep PyTorch's default uniform(+-1/sqrt(hidden))."""
        if scale > 0:
            nn.init.uniform_(self.encoder.weight, -scale, scale)
            nn.init.uniform_(self.decoder.weight, -scale, scale)
        nn.init.zeros_(self.decoder.bias)

    def _layer(self, k: int, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        rnn = self.rnns[k]
        if not (self.training and self.weight_drop > 0.0):
            return rnn(x, state)
        if isinstance(rnn, nn.RNNBase):
            w_hh = F.dropout(rnn.weight_hh_l0, self.weight_drop, training=True)  # one DropConnect mask per pass
            return kernel_with_weight_hh(rnn, x, state, w_hh)
        # any other module: its hidden-to-hidden matrices (the cell's registry entry names them) swapped for
        # dropped copies for this call
        names = registry.get(self.cell).hidden_to_hidden
        dropped = {n: F.dropout(rnn.get_parameter(n), self.weight_drop, training=True) for n in names}
        return functional_call(rnn, dropped, (x, state))

    def forward(
        self,
        tokens: Tensor,
        state: tuple[State, ...] | None = None,
        activations: bool = False,
        targets: Tensor | None = None,
    ) -> Any:
        """``(logits, state)``; with ``activations`` also ``(last layer output, the same after dropout)``.

        With ``targets`` the first element is their mean cross-entropy instead (see ``RNNLanguageModel``)."""
        # tokens: (seq, batch)
        x = embedding_dropout(self.encoder, tokens, self.dropout_e, self.training)  # (seq, batch, embedding)
        x = locked_dropout(x, self.dropout_i, self.training)
        new_state: list[State] = []
        raw = x
        for k in range(len(self.rnns)):
            raw, s = self._layer(k, x, state[k] if state is not None else None)  # (seq, batch, sizes[k])
            new_state.append(s)
            last = k == len(self.rnns) - 1
            x = locked_dropout(raw, self.dropout if last else self.dropout_h, self.training)
        head = decode(self.decoder, x, targets)  # (seq, batch, vocab), or the loss
        if activations:
            return head, tuple(new_state), (raw, x)
        return head, tuple(new_state)

    def flatten_parameters(self) -> None:
        for rnn in self.rnns:
            if hasattr(rnn, "flatten_parameters"):
                rnn.flatten_parameters()

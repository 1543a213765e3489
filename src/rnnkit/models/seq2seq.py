"""Encoder-decoder with attention (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al. 2015).

Encoder: embedding -> (bi)directional multi-layer recurrent stack of any registered cell (``rnnkit.cells``, either
backend), run on each sentence's true length. Its final state, passed through a ``bridge`` when bidirectional
(per state tensor, as the cell's registry entry says), starts the decoder.
``hidden`` may give one size per layer (``[512, 256]``): the decoder then has the encoder's sizes, layer for
layer, since each decoder layer starts from the encoder layer's final state; attention and the output layer see
the last layer's size.

Decoder, one of:
  ``bahdanau``: the additive score with the previous decoder state as query; the context enters the RNN input
                with the previous word (``[y_{t-1}; c_t]``), as in Bahdanau et al.
  ``dot`` / ``general``: Luong's scores with the new decoder state ``h_t`` as query. ``input_feed`` adds the
                previous attentional state to the input (``[y_{t-1}; h~_{t-1}]``); without it the whole decoder
                RNN runs as one call over the whole target under teacher forcing (much faster).
  ``none``:     no attention (the plain encoder-decoder of Sutskever et al.).
With attention the output is the attentional state ``h~_t = tanh(W_c [h_t; c_t])``, then dropout and a linear
layer over the target vocabulary. ``tie`` shares that layer's weights with the target embedding (through a
linear bottleneck when hidden != embedding).

``forward`` gives output *features*, not logits, so a task can apply the full softmax (``logits``) or a sampled
softmax over a subset of the output layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells import RecurrentSpec, State, make_recurrent, registry
from rnnkit.cells.dropout import Dropout
from rnnkit.cells.registry import StateTensor
from rnnkit.cells.stack import (
    final_output,
    from_layer_states,
    handover,
    join_states,
    last_hidden,
    layer_states,
    map_state,
)
from rnnkit.data.parallel import PAD_ID
from rnnkit.models.attention import Attention

ATTENTIONS = ("bahdanau", "dot", "general", "none")


def _select_state(state: State, idx: Tensor) -> State:
    return map_state(lambda s: s.index_select(1, idx), state)


@dataclass
class DecoderState:
    """Everything one decoder step needs; ``select`` reorders/expands along the batch (beam search)."""

    rnn: State  # the cell's state, each tensor (layers, B, ...); a tuple of one per layer when sizes differ
    memory: Tensor  # (B, S, M) encoder outputs
    keys: Tensor | None  # (B, S, K) projected for the attention score
    mask: Tensor  # (B, S) True on real source tokens
    feed: Tensor | None  # (B, H) previous attentional state (input feeding), or Bahdanau's query (see Seq2Seq)

    def select(self, idx: Tensor) -> DecoderState:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "rnn":
                out[f.name] = _select_state(v, idx)
            else:
                out[f.name] = v.index_select(0, idx) if v is not None else None
        return DecoderState(**out)


def cat_decoder_states(states: Sequence[DecoderState]) -> DecoderState:
    """Several decoders' states as one batch (step-level batching of chat requests, ``rnnkit.decode.stream``).

    Sources differ in length: memory and keys are zero-padded to the longest and the mask is False there, so the
    attention gives the padding exactly zero weight and every row attends as it would alone.
    """
    width = max(st.memory.size(1) for st in states)

    def pad(t: Tensor | None, value: Any = 0) -> Tensor | None:
        if t is None or t.size(1) == width:
            return t
        extra = list(t.shape)
        extra[1] = width - t.size(1)
        return torch.cat([t, t.new_full(extra, value)], 1)

    def cat0(ts: list[Tensor | None]) -> Tensor | None:
        return None if ts[0] is None else torch.cat(ts, 0)  # type: ignore[arg-type]

    rnn = join_states(lambda ts: torch.cat(ts, 1), [st.rnn for st in states])
    return DecoderState(
        rnn,
        cat0([pad(st.memory) for st in states]),
        cat0([pad(st.keys) for st in states]),
        cat0([pad(st.mask, False) for st in states]),
        cat0([st.feed for st in states]),
    )


class Seq2Seq(nn.Module):
    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        embedding: int = 100,
        hidden: int | Sequence[int] = 256,
        layers: int = 1,
        cell: str = "lstm",
        backend: str = "fast",
        bidirectional: bool = False,
        attention: str = "general",
        attention_size: int = 0,
        input_feed: bool = True,
        dropout: float = 0.0,
        tie: bool = False,
        init_scale: float = 0.1,
        cell_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if min(embedding, layers, src_vocab, tgt_vocab) < 1:
            raise ValueError("embedding, hidden and layers must be >= 1")
        sizes = hidden if isinstance(hidden, int) else tuple(hidden)
        options = dict(cell_options or {})
        enc = RecurrentSpec(cell, embedding, sizes, layers, bidirectional=bidirectional, dropout=dropout, **options)
        self.kind = attention
        self.input_feed = input_feed and attention in ("dot", "general")
        self.cell = cell
        hidden = enc.sizes[-1]
        self.hidden = hidden  # the decoder's last layer: attention query, attentional state, output features
        self.layers = layers
        self.bidirectional = bidirectional
        self.drop = Dropout(dropout)
        self.src_emb = nn.Embedding(src_vocab, embedding, padding_idx=PAD_ID)
        self.tgt_emb = nn.Embedding(tgt_vocab, embedding, padding_idx=PAD_ID)
        self.enc_spec = enc
        self.encoder = make_recurrent(enc, backend)
        mem = enc.output_size
        self.memory_size = mem
        entry = registry.get(cell)
        # Bahdanau's query is the decoder's previous output: read from its state where the cell's state holds it
        # (h), else carried in ``feed`` (mLSTM, Mamba...), starting from the encoder's final output
        self.query_in_feed = attention == "bahdanau" and entry.output_in_state(enc) is None
        # the names and bridges of the cell's state tensors (rnnkit.cells.registry)
        self.state_layout = entry.layout(enc)
        if bidirectional:  # both directions' final states -> the decoder's initial state, per layer and tensor
            for part in self.state_layout:
                if part.bridge in ("forward", "zeros"):
                    continue  # not a vector: the forward direction's own, or zeros (see _bridge)
                widths = [part.dims(enc.layer(k), s)[0] for k, s in enumerate(enc.sizes)]  # h: each layer's size
                if enc.uniform:  # one bridge shared by the layers
                    lin: nn.Module = nn.Linear(2 * widths[0], widths[0])
                else:  # one per layer, of its size
                    lin = nn.ModuleList(nn.Linear(2 * w, w) for w in widths)
                setattr(self, f"bridge_{part.name}", lin)  # an LSTM's: bridge_h, bridge_c
        dec_in = embedding + (mem if attention == "bahdanau" else hidden if self.input_feed else 0)
        self.dec_spec = RecurrentSpec(cell, dec_in, sizes, layers, dropout=dropout, **options)
        self.decoder = make_recurrent(self.dec_spec, backend)
        if attention == "none":
            self.attn = None
            self.combine = None
        else:
            score = "additive" if attention == "bahdanau" else attention
            self.attn = Attention(hidden, mem, score, attention_size)
            self.combine = nn.Linear(hidden + mem, hidden, bias=False)
        self.bottleneck = nn.Linear(hidden, embedding, bias=False) if tie and hidden != embedding else None
        self.out = nn.Linear(embedding if tie else hidden, tgt_vocab)
        if tie:
            self.out.weight = self.tgt_emb.weight
        self.init_weights(init_scale)

    def init_weights(self, scale: float) -> None:
        """Uniform in [-scale, scale] (Sutskever et al. use 0.08); 0 keeps PyTorch's defaults. The recurrent layers
        of a cell whose registry entry says its own initialisation matters (``own_init``) keep it."""
        if scale > 0:
            own = registry.get(self.cell).own_init
            for name, p in self.named_parameters():
                if not (own and name.startswith(("encoder.", "decoder."))):
                    nn.init.uniform_(p, -scale, scale)
        with torch.no_grad():
            self.src_emb.weight[PAD_ID].zero_()
            self.tgt_emb.weight[PAD_ID].zero_()
        self.flatten()

    def flatten(self) -> None:
        for rnn in (self.encoder, self.decoder):
            if hasattr(rnn, "flatten_parameters"):
                rnn.flatten_parameters()

    @property
    def carries_feed(self) -> bool:
        """Whether the decoder state's ``feed`` is used (input feeding, or Bahdanau's query for cells whose state
        does not hold their output) - an exported decoder then takes and returns it."""
        return self.input_feed or self.query_in_feed

    # -- encoder ----------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_len: Tensor | None) -> DecoderState:
        """src (S, B) ids, src_len (B,) -> the decoder's starting state.

        ``src_len=None`` means no padding (every sentence is S long): nothing is packed, which is what an exported
        encoder needs (packed sequences do not survive ONNX export or tracing).
        """
        emb = self.drop(self.src_emb(src))  # (S, B, E)
        out, state = self.encoder(emb, lengths=src_len)  # (S, B, M)
        memory = out.transpose(0, 1)  # (B, S, M)
        if src_len is None:
            mask = torch.ones(src.size(1), src.size(0), dtype=torch.bool, device=src.device)  # (B, S)
        else:
            steps = torch.arange(src.size(0), device=src.device)
            mask = steps.unsqueeze(0) < src_len.to(src.device).unsqueeze(1)  # (B, S)
        rnn = self._bridge(state)
        keys = self.attn.prepare(memory) if self.attn is not None else None
        feed = memory.new_zeros(src.size(1), self.hidden) if self.input_feed else None
        if self.query_in_feed:  # the encoder's final output (its forward direction): (B, H)
            feed = final_output(self.encoder, out, state, src_len)[0]
        return DecoderState(rnn, memory, keys, mask, feed)

    def _bridge(self, state: State) -> State:
        """A bidirectional encoder's final state -> the decoder's first: each layer's ``[forward; backward]``
        state tensors mapped to one (``tanh`` for ``h``, linear for an LSTM's ``c``), or for a tensor that is not
        a vector (a matrix memory) the forward direction's own; see ``StateTensor.bridge``."""
        if not self.bidirectional:
            return handover(self.decoder, state)

        def merge(s: Tensor, part: StateTensor, lin: nn.Module | None) -> Tensor:
            # s: (L * 2, B, *dims), layer-major -> (L, B, *dims)
            L, B = s.size(0) // 2, s.size(1)
            pairs = s.view(L, 2, B, *s.shape[2:])
            if part.bridge in ("forward", "zeros") or lin is None:
                return pairs[:, 0]  # "zeros": replaced by handover
            H = s.size(2)
            both = pairs.permute(0, 2, 1, 3).reshape(L, B, 2 * H)
            y = lin(both)
            return torch.tanh(y) if part.bridge == "tanh" else y

        def merged(layer_state: State, k: int | None) -> State:
            parts = (layer_state,) if isinstance(layer_state, Tensor) else tuple(layer_state)
            out = []
            for part, t in zip(self.state_layout, parts, strict=True):
                lin = getattr(self, f"bridge_{part.name}", None)
                out.append(merge(t, part, lin if k is None or lin is None else lin[k]))
            return out[0] if len(out) == 1 else tuple(out)

        if self.enc_spec.uniform:
            return handover(self.decoder, merged(state, None))
        layers = [merged(s, k) for k, s in enumerate(layer_states(self.encoder, state))]  # s: (2, B, ...) each
        return handover(self.decoder, from_layer_states(self.decoder, layers))

    # -- decoder ----------------------------------------------------------------------------------
    def step(self, tokens: Tensor, st: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: tokens (B,) -> features (B, D), the new state, attention weights (B, S) or None."""
        emb = self.drop(self.tgt_emb(tokens))  # (B, E)
        weights = None
        if self.kind == "bahdanau":
            assert self.attn is not None and self.combine is not None
            # previous top-layer output (B, H)
            top = st.feed if self.query_in_feed else last_hidden(self.decoder, st.rnn)[-1]
            ctx, weights = self.attn(top, st.keys, st.memory, st.mask)
            out, rnn = self.decoder(torch.cat([emb, ctx], -1).unsqueeze(0), st.rnn)
            h = out[0]
            feat = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
        else:
            x = torch.cat([emb, st.feed], -1) if self.input_feed else emb
            out, rnn = self.decoder(x.unsqueeze(0), st.rnn)
            h = out[0]
            if self.attn is not None:
                assert self.combine is not None
                ctx, weights = self.attn(h, st.keys, st.memory, st.mask)
                feat = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
            else:
                feat = h
        feat = self.drop(feat)
        feed = feat if self.input_feed else h if self.query_in_feed else None
        new = DecoderState(rnn, st.memory, st.keys, st.mask, feed)
        return feat, new, weights

    def logits(self, features: Tensor) -> Tensor:
        """Full softmax logits over the target vocabulary, (..., V)."""
        if self.bottleneck is not None:
            features = self.bottleneck(features)
        return self.out(features)

    def project(self, features: Tensor) -> Tensor:
        """Features as the output layer sees them (after the tied-embedding bottleneck), for sampled softmax."""
        return self.bottleneck(features) if self.bottleneck is not None else features

    def forward(
        self,
        src: Tensor,
        src_len: Tensor,
        tgt_in: Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
        return_attention: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Decoder features (T, B, D) for target inputs ``tgt_in`` (T, B) (``<go> y1 .. yn``).

        ``teacher_forcing`` < 1: at each step each sentence feeds the true previous word with that probability
        and its own previous prediction (argmax) otherwise (scheduled sampling, Bengio et al. 2015).
        With ``return_attention`` also the weights (B, T, S).
        """
        st = self.encode(src, src_len)
        T, B = tgt_in.shape
        if teacher_forcing >= 1.0 and not self.input_feed and self.kind != "bahdanau":
            emb = self.drop(self.tgt_emb(tgt_in))  # (T, B, E)
            out, _ = self.decoder(emb, st.rnn)  # (T, B, H); steps after <eos> never reach earlier ones
            h = out.transpose(0, 1)  # (B, T, H)
            weights = None
            if self.attn is not None:
                assert self.combine is not None
                ctx, weights = self.attn(h, st.keys, st.memory, st.mask)  # (B, T, M), (B, T, S)
                h = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
            return self.drop(h).transpose(0, 1), weights
        feats: list[Tensor] = []
        attns: list[Tensor] = []
        tokens = tgt_in[0]
        for t in range(T):
            if t > 0:
                tokens = tgt_in[t]
                if teacher_forcing < 1.0:
                    with torch.no_grad():
                        pred = self.logits(feats[-1]).argmax(-1)
                    coin = torch.rand(B, generator=generator).to(tgt_in.device) < teacher_forcing
                    tokens = torch.where(coin | (tgt_in[t] == PAD_ID), tgt_in[t], pred)
            feat, st, w = self.step(tokens, st)
            feats.append(feat)
            if w is not None and return_attention:
                attns.append(w)
        weights = torch.stack(attns, 1) if attns else None
        return torch.stack(feats, 0), weights

"""Decoding sequence-to-sequence models: translations and chat replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.data.parallel import (
    EOS_ID,
    GO_ID,
    PAD_ID,
    UNK_ID,
    display_case,
    encode,
    length_sorted_chunks,
    pad_batch,
)
from rnnkit.decode.beam import Hypothesis, _mask_logp, _trim, beam_search, greedy_search, sample_search
from rnnkit.decode.sampling import SamplingOptions, filter_logits
from rnnkit.decode.stream import Stream, StreamBatch
from rnnkit.errors import UserError
from rnnkit.models.seq2seq import cat_decoder_states
from rnnkit.tasks.seq2seq.settings import ENGLISH, PRONOUN_I


class Seq2SeqDecoding:
    """Decoding a trained model: greedy, beam and sampled search over batches of sources, translations with their
    attention, chat replies (and their streams for the server's step-level batching) - a mixin of
    ``Seq2SeqTask``: it reads the task's vocabularies and tokenizers (``Seq2SeqCorpus``), ``mcfg``, ``dcfg``,
    ``device`` and ``eval_batch_size``)."""

    # -- decoding ---------------------------------------------------------------------------------
    def _banned(self) -> list[int]:
        return [PAD_ID, GO_ID] + ([UNK_ID] if self.mcfg.ban_unk else [])

    def _max_len(self, src_len: Tensor, override: int | None = None) -> int:
        if override:
            return override
        if self.mcfg.decode_length:
            return self.mcfg.decode_length
        return int(src_len.max()) * 2 + 10

    @torch.no_grad()
    def decode(
        self,
        model: nn.Module,
        sources: Sequence[Sequence[int]],
        method: str = "greedy",
        beam: int = 1,
        n_best: int = 1,
        max_len: int | None = None,
        alpha: float | None = None,
        opts: SamplingOptions | None = None,
        generator: torch.Generator | None = None,
        min_len: int = 0,
    ) -> list[list[Hypothesis]]:
        """Decode source id lists (greedy | beam | sample), batched and length-sorted; results in input order."""
        model.eval()
        alpha = self.mcfg.length_penalty if alpha is None else alpha
        out: list[list[Hypothesis]] = [[] for _ in sources]
        lengths = [len(s) for s in sources]
        size = max(1, self.eval_batch_size // (beam if method == "beam" else 1))
        for idx in length_sorted_chunks(lengths, size):
            todo = [int(i) for i in idx if lengths[i] > 0]
            for i in idx:
                if lengths[i] == 0:
                    out[int(i)] = [Hypothesis([], 0.0, 0.0, None, True)]
            if not todo:
                continue
            src, src_len = pad_batch([sources[i] for i in todo])
            st = model.encode(src.to(self.device), src_len)
            n = len(todo)
            limit = self._max_len(src_len, max_len)

            def step(tokens: Tensor, state: Any) -> tuple[Tensor, Any, Tensor | None]:
                feat, state, w = model.step(tokens, state)
                return model.logits(feat), state, w

            if method == "beam":
                res = beam_search(
                    step,
                    st,
                    lambda s, i: s.select(i),
                    n,
                    beam,
                    GO_ID,
                    EOS_ID,
                    limit,
                    self.device,
                    alpha,
                    self._banned(),
                    min_len,
                    n_best,
                )
            elif method == "sample":
                res = [
                    [h]
                    for h in sample_search(
                        step,
                        st,
                        n,
                        GO_ID,
                        EOS_ID,
                        limit,
                        self.device,
                        opts or SamplingOptions(),
                        generator,
                        self._banned(),
                        min_len,
                    )
                ]
            else:
                res = [
                    [h] for h in greedy_search(step, st, n, GO_ID, EOS_ID, limit, self.device, self._banned(), min_len)
                ]
            for i, r in zip(todo, res):
                out[i] = r
        return out

    def encode_source(self, text: str, history: Sequence[str] = ()) -> tuple[list[int], list[str], list[str]]:
        """(ids, tokens, unknown tokens) of a user's sentence (and earlier turns, for a chatbot)."""
        assert self.src_vocab is not None
        toks = self.source_tokens([*history, text]) if text.strip() else []
        unknown = [t for t in toks if t not in self.src_vocab]
        return encode(self.src_vocab, toks), toks, unknown

    def translate(
        self,
        model: nn.Module,
        texts: Sequence[str],
        beam: int | None = None,
        max_len: int | None = None,
        alpha: float | None = None,
    ) -> list[dict[str, Any]]:
        """Translate sentences: text (display case), tokens, score, attention (target x source) per input."""
        beam = self.mcfg.beam if beam is None else beam
        if beam < 1:
            raise UserError(f"beam=... must be >= 1, got {beam}")
        encoded = [self.encode_source(t) for t in texts]
        hyps = self.decode(model, [e[0] for e in encoded], "beam" if beam > 1 else "greedy", beam, 1, max_len, alpha)
        assert self.tgt_vocab is not None
        out = []
        for text, (ids, toks, unknown), h in zip(texts, encoded, hyps):
            best = h[0]
            words = [self.tgt_vocab.itos[i] for i in best.tokens]
            att = best.attention[:, : len(ids)] if best.attention is not None else None
            labels = words + ["<eos>"] * ((att.size(0) if att is not None else len(words)) - len(words))
            out.append(
                {
                    "source": text,
                    "translation": self._reply_text(best.tokens),
                    "source_tokens": toks,
                    "target_tokens": labels,
                    "unknown": unknown,
                    "score": best.score,
                    "attention": att,
                }
            )
        return out

    def reply_stream(
        self,
        model: nn.Module,
        text: str,
        history: Sequence[str] = (),
        n: int | None = None,
        method: str | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_len: int | None = None,
    ) -> Stream:
        """A sampled or greedy chat request as a :class:`~rnnkit.decode.stream.Stream` (the server decodes many
        in one :meth:`generation_batch`); UserError for a bad request, now. Beam search is not streamed."""
        m = self.mcfg
        n = m.replies if n is None else n
        method = m.reply_decoding if method is None else method
        if n < 1:
            raise UserError(f"replies=... must be >= 1, got {n}")
        if method not in ("sample", "greedy"):
            raise UserError(f"reply decoding: expected sample, beam or greedy, got {method!r}")
        ids, _, _ = self.encode_source(text, history[-self.dcfg.context_turns :] if self.dcfg.context_turns else ())
        if not ids:
            raise UserError("say something: the message is empty")
        opts = SamplingOptions(
            temperature=m.temperature if temperature is None else temperature, top_k=m.top_k if top_k is None else top_k
        )
        opts.validate()
        return _ReplyStream(self, model, ids, n, method, opts, seed, max_len or m.decode_length or None)

    def generation_batch(self, model: nn.Module) -> StreamBatch:
        """An empty batch of reply streams over ``model``: one decoder step per row per step."""
        model.eval()

        def step(tokens: Tensor, st: Any) -> tuple[Tensor, Any]:
            feat, st, _ = model.step(tokens[0], st)  # tokens: (1, rows)
            return model.logits(feat).unsqueeze(0), st  # (1, rows, vocab)

        return StreamBatch(step, cat=cat_decoder_states, select=lambda st, idx: st.select(idx))

    def replies(
        self,
        model: nn.Module,
        text: str,
        history: Sequence[str] = (),
        n: int | None = None,
        method: str | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        beam: int | None = None,
        seed: int | None = None,
        max_len: int | None = None,
    ) -> list[str]:
        """``n`` candidate replies to ``text`` (after the conversation ``history``), best/first first."""
        m = self.mcfg
        method = m.reply_decoding if method is None else method
        if method in ("sample", "greedy"):  # the server's batched path, with a batch of one
            stream = self.reply_stream(model, text, history, n, method, top_k, temperature, seed, max_len)
            with torch.no_grad():
                batch = self.generation_batch(model)
                if not batch.add(stream):
                    batch.run()
            return stream.result()
        n = m.replies if n is None else n
        if n < 1:
            raise UserError(f"replies=... must be >= 1, got {n}")
        if method != "beam":
            raise UserError(f"reply decoding: expected sample, beam or greedy, got {method!r}")
        ids, _, _ = self.encode_source(text, history[-self.dcfg.context_turns :] if self.dcfg.context_turns else ())
        if not ids:
            raise UserError("say something: the message is empty")
        limit = max_len or m.decode_length or None
        n_beam = max(beam or m.beam, n)
        hyps = self.decode(model, [ids], "beam" if n_beam > 1 else "greedy", n_beam, n, limit, min_len=1)[0]
        texts = [self._reply_text(h.tokens) for h in hyps]
        while len(texts) < n:
            texts.append(texts[-1])
        return texts[:n]

    def _reply_text(self, ids: Sequence[int]) -> str:
        """Output text as shown to a person: a case-folded model's sentence capitalised (and English "I")."""
        t = self.detokenize(ids)
        if not self.dcfg.lowercase:
            return t
        if self.dcfg.target_lang.lower() in ENGLISH:
            t = PRONOUN_I.sub("I", t)
        return display_case(t)


class _ReplyStream(Stream):
    """A chat request: ``2n`` sampled rows (one for greedy), and up to 4 rounds until ``n`` distinct replies -
    exactly ``sample_search`` / ``greedy_search`` step by step, with its own generator."""

    def __init__(
        self,
        task: Seq2SeqDecoding,
        model: nn.Module,
        ids: list[int],
        n: int,
        method: str,
        opts: SamplingOptions,
        seed: int | None,
        limit: int | None,
    ) -> None:
        self.task, self.model, self.ids, self.n, self.method, self.opts = task, model, ids, n, method, opts
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.rows = 2 * n if method == "sample" else 1
        self.override = limit
        self.found: list[str] = []
        self.rounds = 0
        self.banned = task._banned()

    def prefill(self) -> tuple[Tensor, Any]:
        """Encode the source (``rows`` copies) and run the decoder's first step from <go>."""
        self.model.eval()
        src, src_len = pad_batch([self.ids] * self.rows)
        st = self.model.encode(src.to(self.task.device), src_len)
        self.limit = self.task._max_len(src_len, self.override)
        self.t, self.done, self.out = 0, False, []
        self.finished = torch.zeros(self.rows, dtype=torch.bool, device=self.task.device)
        feat, st, _ = self.model.step(torch.full((self.rows,), GO_ID, dtype=torch.long, device=self.task.device), st)
        return self.model.logits(feat), st

    def choose(self, logits: Tensor) -> Tensor:
        # logits: (rows, vocab)
        logp = _mask_logp(torch.log_softmax(logits.float(), -1), self.banned, EOS_ID, self.t >= 1)
        if self.method == "greedy":
            nxt = logp.max(-1)[1]
        elif self.opts.greedy:
            nxt = logp.argmax(-1)
        else:
            probs = torch.softmax(filter_logits(logp, self.opts), -1)
            nxt = torch.multinomial(probs.cpu(), 1, generator=self.generator).squeeze(-1).to(logits.device)
        tokens = torch.where(self.finished, torch.full_like(nxt, EOS_ID), nxt)
        self.out.append(tokens)
        self.finished |= tokens == EOS_ID
        self.t += 1
        self.done = bool(self.finished.all()) or self.t >= self.limit
        return tokens

    def restart(self) -> bool:
        self.rounds += 1
        for seq in torch.stack(self.out, 1).tolist():
            reply = self.task._reply_text(_trim(seq, EOS_ID)[0])
            if self.method == "greedy" or reply not in self.found:
                self.found.append(reply)
        return self.method == "sample" and len(self.found) < self.n and self.rounds < 4

    def result(self) -> list[str]:
        found = list(self.found)
        while len(found) < self.n:
            found.append(found[len(found) % max(len(found), 1)] if found else "")
        return found[: self.n]

"""The sequence-to-sequence task: translation and chat, trained and evaluated (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import ConfigError, RunConfig
from rnnkit.data.parallel import (
    GO_ID,
    PAD_ID,
    Batch,
    Tokenizer,
    encode,
    length_sorted_chunks,
    make_batch,
    normalize,
    read_pairs,
)
from rnnkit.data.sampling import bucketed_batches, epoch_permutation
from rnnkit.data.vocab import Vocabulary
from rnnkit.decode.beam import Hypothesis
from rnnkit.errors import UserError
from rnnkit.metrics import perplexity
from rnnkit.metrics.bleu import corpus_bleu, corpus_chrf
from rnnkit.models.seq2seq import Seq2Seq
from rnnkit.ops.device import to_device
from rnnkit.ops.loss import softmax_cross_entropy
from rnnkit.seeds import Purpose, derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import Task
from rnnkit.tasks.seq2seq.corpus import Seq2SeqCorpus, Split
from rnnkit.tasks.seq2seq.decoding import Seq2SeqDecoding
from rnnkit.tasks.seq2seq.sampled_softmax import log_uniform_probs, sampled_softmax_loss
from rnnkit.tasks.seq2seq.settings import Seq2SeqData, Seq2SeqModel


@register
class Seq2SeqTask(Seq2SeqCorpus, Seq2SeqDecoding, Task[Seq2SeqData, Seq2SeqModel]):
    name = "seq2seq"
    metric = "bleu_greedy"
    higher_is_better = True
    services = ("translate", "chat")
    default_eval_batch_size = 256

    @classmethod
    def check_config(cls, config: RunConfig[Seq2SeqData, Seq2SeqModel]) -> None:
        m = config.model
        fields.check_recurrent(m)
        if m.attention_kind == "dot" and m.bidirectional:
            raise ConfigError(
                "model.attention_kind",
                "= 'dot' needs encoder and decoder outputs of one size; with "
                "model.bidirectional = true use general or bahdanau",
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.mcfg.select == "loss":
            self.metric, self.higher_is_better = "loss", False  # type: ignore[misc]
        self.src_tok: Tokenizer | None = None
        self.tgt_tok: Tokenizer | None = None
        self.src_vocab: Vocabulary | None = None
        self.tgt_vocab: Vocabulary | None = None
        self.codes: np.ndarray | None = None  # split code per pair of the file
        self.data_digest: str | None = None
        self._saved_digest: str | None = None
        self.data: dict[str, Split] = {}
        self._punct_ids: Tensor | None = None
        self._probs: Tensor | None = None

    # -- serving ----------------------------------------------------------------------------------
    def served(self) -> tuple[str, ...]:
        """A sequence-to-sequence run can both translate and chat; it is offered as a chatbot when it was trained
        on dialogue (earlier turns as context, or the same language on both sides) and as a translator otherwise,
        so a request that names no model reaches the right one."""
        d = self.dcfg
        src, tgt = d.source_lang.lower(), d.target_lang.lower()
        dialogue = d.context_turns > 0 or (src != "" and src == tgt)
        return ("chat",) if dialogue else ("translate",)

    def describe(self) -> dict[str, Any]:
        d, m = self.dcfg, self.mcfg
        return {
            "source_lang": d.source_lang,
            "target_lang": d.target_lang,
            "beam": m.beam,
            "context_turns": d.context_turns,
            "replies": m.replies,
            "top_k": m.top_k,
            "temperature": m.temperature,
            "attention": m.attention_kind,
            "reply_decoding": m.reply_decoding,
        }

    # -- model and training -----------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        m = self.mcfg
        assert self.src_vocab is not None and self.tgt_vocab is not None
        return Seq2Seq(
            len(self.src_vocab),
            len(self.tgt_vocab),
            m.embedding,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            bidirectional=m.bidirectional,
            attention=m.attention_kind,
            attention_size=m.attention_size,
            input_feed=m.input_feed,
            dropout=m.dropout,
            tie=m.tie,
            init_scale=m.init_scale,
        )

    def _src_lengths(self, split: str) -> np.ndarray:
        return np.array([len(s) for s in self.data[split].src], dtype=np.int64)

    def _order(self, epoch: int) -> list[np.ndarray]:
        lengths, seed = self._src_lengths("train"), self.config.train.seed
        return bucketed_batches(
            epoch_permutation(lengths.size, seed, epoch),
            lengths,
            self.config.train.batch_size,
            self.dcfg.bucket,
            seed,
            epoch,
        )

    def num_train_batches(self, epoch: int) -> int:
        return -(-len(self.data["train"].src) // self.config.train.batch_size)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        tr = self.data["train"]
        p = self.dcfg.source_punct_dropout
        for b, idx in enumerate(self._order(epoch)):
            if b < start:
                continue
            src = [tr.src[i] for i in idx]
            if p > 0 and self._punct_ids is not None and self._punct_ids.numel():
                g = torch.Generator().manual_seed(
                    derive_seed(self.config.train.seed, epoch, b, purpose=Purpose.INPUT_NOISE)
                )
                drop = (torch.rand(len(src), generator=g) < p).tolist()
                punct = set(self._punct_ids.tolist())
                src = [[t for t in s if t not in punct] or s if dr else s for s, dr in zip(src, drop)]
            batch = make_batch(src, [tr.tgt[i] for i in idx], idx)
            batch.epoch, batch.number = epoch, b
            yield batch

    def teacher_forcing(self, epoch: int, number: int) -> float:
        m = self.mcfg
        if m.teacher_forcing_epochs <= 0:
            return m.teacher_forcing
        progress = (epoch + number / max(self.num_train_batches(epoch), 1)) / m.teacher_forcing_epochs
        return m.teacher_forcing + (m.teacher_forcing_final - m.teacher_forcing) * min(progress, 1.0)

    def _to(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        dev = self.device
        return to_device(batch.src, dev), batch.src_len, to_device(batch.tgt_in, dev), to_device(batch.tgt_out, dev)

    def train_step(self, model: nn.Module, batch: Batch) -> tuple[Tensor, int]:
        src, src_len, tgt_in, tgt_out = self._to(batch)
        ratio = self.teacher_forcing(batch.epoch, batch.number)
        g = torch.Generator().manual_seed(
            derive_seed(self.config.train.seed, batch.epoch, batch.number, purpose=Purpose.DECODER)
        )
        feats, _ = model(src, src_len, tgt_in, teacher_forcing=ratio, generator=g)  # (T, B, D)
        mask = tgt_out != PAD_ID
        count = int(mask.sum())
        k = self.mcfg.sampled_softmax
        if k and k < model.out.weight.size(0):
            if self._probs is None:
                probs = log_uniform_probs(model.out.weight.size(0))
                probs[PAD_ID] = probs[GO_ID] = 0.0  # never targets
                self._probs = probs / probs.sum()
            h = model.project(feats[mask])  # (N, D)
            loss = sampled_softmax_loss(h, model.out.weight, model.out.bias, tgt_out[mask], k, self._probs, g)
            return loss, count
        logits = model.logits(feats)
        logits = logits.view(-1, logits.size(-1)).float()  # (tokens, vocab)
        return softmax_cross_entropy(logits, tgt_out.view(-1), ignore_index=PAD_ID), count

    # -- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def _loss(self, model: nn.Module, split: str) -> tuple[float, int]:
        data = self.data[split]
        total = torch.zeros((), dtype=torch.float64)
        count = 0
        for idx in length_sorted_chunks(self._src_lengths(split), self.eval_batch_size):
            batch = make_batch([data.src[i] for i in idx], [data.tgt[i] for i in idx], idx)
            src, src_len, tgt_in, tgt_out = self._to(batch)
            feats, _ = model(src, src_len, tgt_in)
            logits = model.logits(feats).float()
            total += (
                F.cross_entropy(
                    logits.view(-1, logits.size(-1)), tgt_out.view(-1), ignore_index=PAD_ID, reduction="sum"
                )
                .double()
                .cpu()
            )
            count += int((tgt_out != PAD_ID).sum())
        return float(total) / max(count, 1), count

    def references(self, split: str) -> tuple[list[list[int]], list[list[str]]]:
        """Distinct sources of a split and, for each, every reference translation it has there."""
        data = self.data[split]
        index: dict[tuple[int, ...], int] = {}
        sources: list[list[int]] = []
        refs: list[list[str]] = []
        for s, r in zip(data.src, data.refs):
            k = index.setdefault(tuple(s), len(sources))
            if k == len(sources):
                sources.append(s)
                refs.append([])
            if r not in refs[k]:
                refs[k].append(r)
        return sources, refs

    def score(self, hyps: list[list[Hypothesis]], refs: list[list[str]]) -> tuple[float, float]:
        texts = [self.detokenize(h[0].tokens) for h in hyps]
        lc = self.dcfg.lowercase
        return corpus_bleu(texts, refs, lowercase=lc), corpus_chrf(texts, refs, lowercase=lc)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.data:
            self.prepare((split,))
        model.eval()
        loss, tokens = self._loss(model, split)
        sources, refs = self.references(split)
        cap = self.dcfg.valid_bleu_sentences
        if split != "test" and cap and len(sources) > cap:  # an evenly spread subset (the file may be sorted)
            pick = np.linspace(0, len(sources) - 1, cap).round().astype(np.int64)
            sources, refs = [sources[i] for i in pick], [refs[i] for i in pick]
        out: dict[str, float] = {"loss": loss, "ppl": perplexity(loss), "tokens": tokens}
        greedy = self.decode(model, sources, "greedy")
        out["bleu_greedy"], out["chrf_greedy"] = self.score(greedy, refs)
        if split == "test":
            beam = self.mcfg.beam
            best = self.decode(model, sources, "beam", beam) if beam > 1 else greedy
            out["bleu"], out["chrf"] = self.score(best, refs)
            out["beam"] = beam
        out["sentences"] = len(sources)
        out["references"] = sum(len(r) for r in refs)
        return out

    def evaluate_data(self, model: nn.Module, data: Any, folder: Path) -> dict[str, float]:
        """The test metrics (BLEU with beam search and greedy, chrF, loss) on new pairs: a file laid out like the
        run's training file (its data.source_column / data.target_column), or (source, target) pairs in memory.
        Every pair counts (no length filter); a source's references are all its targets in the data."""
        assert self.src_vocab is not None and self.tgt_vocab is not None
        d = self.dcfg
        path = self.data_file(data, folder, "pairs.tsv")
        columns = (d.source_column, d.target_column) if isinstance(data, os.PathLike) else (0, 1)
        src, tgt, refs, lines = [], [], [], []
        for p in read_pairs(path, *columns):
            a, b = self.source_tokens([p.source]), self.target_tokens(p.target)
            if a and b:
                src.append(encode(self.src_vocab, a))
                tgt.append(encode(self.tgt_vocab, b))
                refs.append(normalize(p.target, lowercase=False, accents=not self.strips("target")))
                lines.append(p.line)
        if not src:
            raise UserError(f"{path}: no pairs with words on both sides")
        self.data["test"] = Split(src, tgt, refs, lines)  # this task is the evaluation's own (Run.evaluate)
        return self.evaluate(model, "test")

    def describe_loss(self, loss: float) -> dict[str, float]:
        return {"ppl": perplexity(loss)}

    def format_metrics(self, metrics: dict[str, float]) -> str:
        keys = [k for k in (self.metric, "bleu", "bleu_greedy", "chrf", "loss") if k in metrics]
        keys = list(dict.fromkeys(keys))
        return " ".join(f"{k} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))

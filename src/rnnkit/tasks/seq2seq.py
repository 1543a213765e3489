"""Sequence to sequence: translation (Spanish -> English with attention) and a chatbot, one task.

Data: ``source<TAB>target[<TAB>...]`` lines (``data.source_column`` / ``data.target_column``, 0-based), e.g. the
Tatoeba Spanish-English pairs (English in column 0) or a dialogue corpus of (utterance, reply) lines. Pairs are
split train/valid/test by source sentence (``rnnkit.data.parallel.grouped_split``); the split is saved in every
checkpoint and reused by ``rnnkit eval``, so test sentences are never trained on, even if the code that draws
splits changes. Pairs longer than ``data.max_length`` tokens on either side are dropped from every split (text
classification's ``data.truncate`` cuts texts instead: a classifier keeps every example).

Selection metric (``model.select``): ``bleu`` = corpus BLEU of greedy decoding on at most
``data.valid_bleu_sentences`` validation sources (``bleu_greedy``); it tracks what we care about better than the
loss, which keeps falling after BLEU has peaked. ``loss`` = the teacher-forced validation loss (for the chatbot,
whose references are one reply among many possible ones).

Evaluation on ``test`` decodes every test source with beam search (``model.beam``) and greedily, and reports
corpus BLEU and chrF (sacrebleu, detokenised, case-insensitive when ``data.lowercase``), with all the
translations a source sentence has in the split as its references.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import MAX_COUNT, MAX_SIZE, ConfigError, RunConfig, key
from rnnkit.data.parallel import (
    EOS_ID,
    GO_ID,
    PAD_ID,
    SEP,
    SPANISH,
    SPECIALS,
    SPLIT_CODES,
    UNK_ID,
    Batch,
    Pair,
    Tokenizer,
    build_vocab,
    display_case,
    encode,
    grouped_split,
    length_sorted_chunks,
    make_batch,
    normalize,
    pad_batch,
    read_pairs,
)
from rnnkit.data.sampling import bucketed_batches, epoch_permutation
from rnnkit.data.splits import digest
from rnnkit.data.text import find_data_file
from rnnkit.data.vocab import Vocabulary
from rnnkit.decode.beam import Hypothesis, _mask_logp, _trim, beam_search, greedy_search, sample_search
from rnnkit.decode.sampling import SamplingOptions, filter_logits
from rnnkit.decode.stream import Stream, StreamBatch
from rnnkit.errors import UserError
from rnnkit.metrics import perplexity
from rnnkit.metrics.bleu import corpus_bleu, corpus_chrf
from rnnkit.models.seq2seq import ATTENTIONS, Seq2Seq, cat_decoder_states
from rnnkit.ops.device import to_device
from rnnkit.ops.loss import softmax_cross_entropy
from rnnkit.seeds import Purpose, derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import MEMORY_DIR, Task

ACCENT_MODES = {
    "auto": "the source when it is Spanish (data.source_lang)",
    "source": "the source side",
    "target": "the target side",
    "both": "both sides",
    "none": "neither",
}
TOKENIZERS = {
    "word": "words and punctuation",
    "sentencepiece": "learned subwords (the optional sentencepiece package; data.subword_vocab pieces per side)",
}
ATTENTION_KINDS = {
    "bahdanau": "additive (Bahdanau et al. 2015)",
    "dot": "dot product (Luong et al. 2015)",
    "general": "bilinear (Luong et al. 2015)",
    "none": "no attention: the encoder's final state only",
}
assert set(ATTENTION_KINDS) == set(ATTENTIONS)
SELECTS = {
    "bleu": "greedy validation BLEU",
    "loss": "teacher-forced validation loss (one reference among many possible ones, e.g. a chatbot)",
}
REPLY_DECODINGS = {"sample": "top-k sampling", "beam": "beam search", "greedy": "greedy"}
ENGLISH = ("", "en", "eng", "english")  # an unnamed target language is taken as English for display only
_PRONOUN_I = re.compile(r"\bi\b")


@dataclass
class Seq2SeqData:
    path: list[str] = fields.path(
        ["spa-eng/spa.txt.gz"],
        "the file of source<TAB>target[<TAB>...] lines, "
        "relative to --data-dir (or absolute); .gz is read transparently",
        one=True,
    )
    source_column: int = key(
        0,
        "0-based column of the source (the Tatoeba file is English<TAB>Spanish, so spa->eng reads 1 and 0)",
        ge=0,
        le=1000,
    )
    target_column: int = key(1, "0-based column of the target", ge=0, le=1000)
    source_lang: str = key("", 'source language code, e.g. "spa" (informs data.strip_accents = "auto")')
    target_lang: str = key("", 'target language code ("eng", or empty: English, for display case)')
    lowercase: bool = fields.lowercase(True)
    strip_accents: str = key(
        "auto", "remove accents (cómo -> como) on, in training and inference alike", choices=ACCENT_MODES
    )
    tokenizer: str = key("word", "how text becomes tokens", choices=TOKENIZERS)
    subword_vocab: int = key(8000, "sentencepiece: pieces per side", ge=8, le=MAX_COUNT)
    max_length: int = key(
        15,
        "tokens per side (without <go>/<eos>): longer pairs are dropped from every split",
        ge=1,
        le=MAX_COUNT,
        special={0: "no limit"},
    )
    min_count: int = fields.min_count(1)
    max_vocab: int = fields.max_vocab("per side: the vocabulary's size limit (most frequent first, specials included)")
    max_pairs: int = key(
        0, "read only the first N pairs of the file (quick experiments)", ge=1, le=MAX_COUNT, special={0: "all"}
    )
    valid_fraction: float = fields.fraction(
        0.05, "share of source sentences held out for validation (a source and all its translations fall in one split)"
    )
    test_fraction: float = fields.fraction(0.05, "share of source sentences held out for testing")
    seed: int = fields.split_seed()
    bucket: int = fields.bucket(20)
    valid_bleu_sentences: int = key(
        1000, "validation BLEU on at most this many sources (greedy)", ge=1, le=MAX_COUNT, special={0: "all"}
    )
    context_turns: int = key(
        0, "dialogues: prepend this many earlier turns (chained lines) to the source", ge=0, le=100
    )
    source_punct_dropout: float = key(
        0.0, "training: share of sources shown without punctuation (users omit ¿?)", ge=0, lt=1
    )

    RENAMED: ClassVar[dict[str, str]] = {"pairs": "data.path", "eval_batch_size": "train.eval_batch_size"}


@dataclass
class Seq2SeqModel(fields.RecurrentKeys):
    embedding: int = fields.embedding(100)
    hidden: int | list[int] = fields.hidden(256)
    layers: int = fields.layers(1)
    bidirectional: bool = fields.bidirectional(False, "encoder: read the source in both directions")
    attention: str = key("general", "attention kind", choices=ATTENTION_KINDS)
    attention_size: int = fields.attention_size("bahdanau: size of the scoring layer")
    input_feed: bool = key(False, "Luong input feeding (dot/general; Bahdanau always feeds its context)")
    dropout: float = fields.dropout()
    tie: bool = key(False, "share the target embedding with the output layer")
    init_scale: float = fields.init_scale(0.1)
    teacher_forcing: float = key(1.0, "training: probability of feeding the true previous word...", ge=0, le=1)
    teacher_forcing_final: float = key(1.0, "...moving linearly to this value...", ge=0, le=1)
    teacher_forcing_epochs: float = key(
        0.0, "...over this many epochs", gt=0, le=MAX_COUNT, special={0: "constant model.teacher_forcing"}
    )
    sampled_softmax: int = key(
        0, "training loss over this many sampled classes", ge=2, le=MAX_COUNT, special={0: "full softmax"}
    )
    select: str = key("bleu", "what selects best.pt", choices=SELECTS)
    beam: int = key(5, "beam size for test evaluation and `rnnkit translate` (1 = greedy)", ge=1, le=1000)
    length_penalty: float = key(0.6, "GNMT length penalty alpha (0 = none)", ge=0, le=100)
    decode_length: int = key(0, "most output tokens", ge=1, le=MAX_SIZE, special={0: "2 x source length + 10"})
    ban_unk: bool = key(False, "never output <unk>")
    replies: int = key(1, "chat: candidate replies per prompt", ge=1, le=100)
    reply_decoding: str = key("sample", "chat: how replies are decoded", choices=REPLY_DECODINGS)
    top_k: int = key(3, "chat sampling: among the k most likely words", ge=1, le=MAX_COUNT, special={0: "all"})
    temperature: float = key(1.0, "chat sampling: temperature (0 = greedy)", ge=0, le=1000)


def log_uniform_probs(n: int) -> Tensor:
    """P(k) = log((k + 2) / (k + 1)) / log(n + 1): Zipf-like, for a vocabulary sorted by frequency."""
    k = torch.arange(n, dtype=torch.float64)
    return (torch.log1p(1.0 / (k + 1)) / np.log(n + 1)).float()


def sampled_softmax_loss(
    features: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    num_sampled: int,
    probs: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean sampled-softmax loss (Jean et al. 2015): the true class against ``num_sampled`` classes shared by the
    batch, drawn from ``probs`` (log-uniform), each logit corrected by -log(expected count), accidental hits
    removed. features (N, D), weight (V, D), targets (N,)."""
    draws = torch.multinomial(probs, num_sampled, replacement=True, generator=generator)
    sampled = torch.unique(draws).to(features.device)  # (K,)
    expected = -torch.expm1(num_sampled * torch.log1p(-probs.clamp(max=1 - 1e-7))).to(features.device)  # (V,)
    log_q = torch.log(expected.clamp(min=1e-12))
    true_logit = (features * weight[targets]).sum(-1) - log_q[targets]  # (N,)
    samp_logit = features @ weight[sampled].t() - log_q[sampled]  # (N, K)
    if bias is not None:
        true_logit = true_logit + bias[targets]
        samp_logit = samp_logit + bias[sampled]
    samp_logit = samp_logit.masked_fill(sampled.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([true_logit.unsqueeze(1), samp_logit], 1).float()
    return F.cross_entropy(logits, torch.zeros_like(targets))


@dataclass
class Split:
    src: list[list[int]]
    tgt: list[list[int]]
    refs: list[str]  # the target text (normalised, detokenised form), one per pair
    lines: list[int]


@register
class Seq2SeqTask(Task[Seq2SeqData, Seq2SeqModel]):
    name = "seq2seq"
    metric = "bleu_greedy"
    higher_is_better = True
    services = ("translate", "chat")
    default_eval_batch_size = 256

    @classmethod
    def check_config(cls, config: RunConfig[Seq2SeqData, Seq2SeqModel]) -> None:
        m = config.model
        fields.check_recurrent(m)
        if m.attention == "dot" and m.bidirectional:
            raise ConfigError(
                "model.attention",
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
            "attention": m.attention,
            "reply_decoding": m.reply_decoding,
        }

    # -- text -------------------------------------------------------------------------------------
    def strips(self, side: str) -> bool:
        mode = self.dcfg.strip_accents
        if mode == "auto":
            return side == "source" and self.dcfg.source_lang.lower() in SPANISH
        return mode in (side, "both")

    def norm(self, text: str, side: str) -> str:
        return normalize(text, self.dcfg.lowercase, accents=not self.strips(side))

    def source_tokens(self, turns: Sequence[str]) -> list[str]:
        """Tokens of a source: the utterance, after up to ``context_turns`` earlier turns joined by ``<sep>``."""
        assert self.src_tok is not None
        d = self.dcfg
        *context, utterance = turns
        toks = self.src_tok.tokens(self.norm(utterance, "source"))
        if d.context_turns and context:
            ctx: list[str] = []
            for turn in context[-d.context_turns :]:
                ctx += self.src_tok.tokens(self.norm(turn, "source")) + [SEP]
            if d.max_length:
                ctx = ctx[-(d.max_length + 1) * d.context_turns :]
            toks = ctx + toks
        return toks

    def target_tokens(self, text: str) -> list[str]:
        assert self.tgt_tok is not None
        return self.tgt_tok.tokens(self.norm(text, "target"))

    def detokenize(self, ids: Sequence[int]) -> str:
        assert self.tgt_vocab is not None and self.tgt_tok is not None
        return self.tgt_tok.detokenize([self.tgt_vocab.itos[i] for i in ids])

    # -- data -------------------------------------------------------------------------------------
    def _read(self) -> tuple[list[Pair], list[list[str]]]:
        d = self.dcfg
        path = find_data_file(d.path[0], self.data_dir, "data.path")
        pairs = read_pairs(path, d.source_column, d.target_column, d.max_pairs)
        turns: list[list[str]] = []
        for i, p in enumerate(pairs):  # chained dialogue: line i's utterance is line i-1's reply
            t = [p.source]
            j = i
            while (
                d.context_turns
                and len(t) <= d.context_turns
                and j > 0
                and pairs[j - 1].target == pairs[j].source
                and pairs[j - 1].line == pairs[j].line - 1
            ):
                j -= 1
                t.insert(0, pairs[j].source)
            turns.append(t)
        dig = digest(
            "\n".join(f"{p.source}\t{p.target}" for p in pairs),
            str(d.source_column),
            str(d.target_column),
            str(d.max_pairs),
        )
        self.data_digest = dig
        if self._saved_digest is not None and dig != self._saved_digest:
            raise UserError(
                f"{path}: the data differs from what this run was trained on (digest {dig} vs "
                f"{self._saved_digest}), so its saved train/valid/test split does not apply; "
                f"use the training data (--data-dir)"
            )
        return pairs, turns

    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """(source, target) pairs, a dict of "source"/"target" columns or a DataFrame with them ->
        a source<TAB>target file."""
        from rnnkit.data.memory import text_pairs, write_tsv

        write_tsv(folder / "pairs.tsv", text_pairs(data, "source", "target"))
        return {"data.path": [f"{MEMORY_DIR}/pairs.tsv"], "data.source_column": 0, "data.target_column": 1}

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        d = self.dcfg
        pairs, turns = self._read()
        if self.codes is None:
            keys = [
                self.norm(p.source, "source")
                if not d.context_turns
                else "\x1f".join(self.norm(t, "source") for t in tt)
                for p, tt in zip(pairs, turns)
            ]
            self.codes = grouped_split(keys, {"valid": d.valid_fraction, "test": d.test_fraction}, d.seed)
        elif self.codes.size != len(pairs):
            raise UserError(f"data.path: {len(pairs)} pairs, but the run's saved split covers {self.codes.size}")
        need = set(splits)
        fresh = self.src_vocab is None
        if fresh:
            need.add("train")
            if self.src_tok is None:
                train_idx = np.flatnonzero(self.codes == SPLIT_CODES["train"])
                sents = [pairs[i] for i in train_idx]
                self.src_tok = Tokenizer.train(
                    d.tokenizer, [self.norm(p.source, "source") for p in sents], d.subword_vocab
                )
                self.tgt_tok = Tokenizer.train(
                    d.tokenizer, [self.norm(p.target, "target") for p in sents], d.subword_vocab
                )
        tokens: dict[str, tuple[list[list[str]], list[list[str]], list[int]]] = {}
        for s in need:
            idx = np.flatnonzero(self.codes == SPLIT_CODES[s])
            src, tgt, keep = [], [], []
            for i in idx:
                a = self.source_tokens(turns[i])
                b = self.target_tokens(pairs[i].target)
                n_utt = len(self.source_tokens([pairs[i].source])) if d.context_turns else len(a)
                if not a or not b or (d.max_length and (n_utt > d.max_length or len(b) > d.max_length)):
                    continue
                src.append(a)
                tgt.append(b)
                keep.append(int(i))
            if not keep:
                raise UserError(
                    f"data.path: no {s} pairs of at most data.max_length={d.max_length} tokens "
                    f"(raise data.max_length or the {s} fraction)"
                )
            tokens[s] = (src, tgt, keep)
        if fresh:
            src, tgt, _ = tokens["train"]
            extra = (SEP,) if d.context_turns else ()
            self.src_vocab = build_vocab(src, d.min_count, d.max_vocab, extra)
            self.tgt_vocab = build_vocab(tgt, d.min_count, d.max_vocab)
        assert self.src_vocab is not None and self.tgt_vocab is not None and self.tgt_tok is not None
        for s in splits:
            src, tgt, keep = tokens[s]
            refs = [normalize(pairs[i].target, lowercase=False, accents=not self.strips("target")) for i in keep]
            self.data[s] = Split(
                [encode(self.src_vocab, t) for t in src],
                [encode(self.tgt_vocab, t) for t in tgt],
                refs,
                [pairs[i].line for i in keep],
            )
        self._punct_ids = torch.tensor(
            [i for i, t in enumerate(self.src_vocab.itos) if i > 3 and t != SEP and not any(c.isalnum() for c in t)],
            dtype=torch.long,
        )

    def split_lines(self, split: str) -> list[int]:
        """1-based line numbers of the data file in ``split`` (after the length filter)."""
        if split not in self.data:
            self.prepare((split,))
        return list(self.data[split].lines)

    def artifacts(self) -> dict[str, Any]:
        assert self.src_vocab is not None and self.tgt_vocab is not None and self.codes is not None
        assert self.src_tok is not None and self.tgt_tok is not None

        def proto(tok: Tokenizer) -> Tensor:
            return (
                torch.frombuffer(bytearray(tok.model), dtype=torch.uint8)
                if tok.model
                else torch.zeros(0, dtype=torch.uint8)
            )

        return {
            "src_vocab": self.src_vocab.to_list(),
            "tgt_vocab": self.tgt_vocab.to_list(),
            "tokenizer": self.src_tok.kind,
            "src_model": proto(self.src_tok),
            "tgt_model": proto(self.tgt_tok),
            "split": torch.from_numpy(self.codes.astype(np.uint8)),
            "digest": self.data_digest,
        }

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        kind = artifacts["tokenizer"]

        def tok(t: Tensor) -> Tokenizer:
            return Tokenizer(kind, bytes(t.cpu().numpy().tobytes()) if t.numel() else None)

        self.src_tok, self.tgt_tok = tok(artifacts["src_model"]), tok(artifacts["tgt_model"])
        self.src_vocab = Vocabulary(list(artifacts["src_vocab"]), unk="<unk>")
        self.tgt_vocab = Vocabulary(list(artifacts["tgt_vocab"]), unk="<unk>")
        self.codes = artifacts["split"].cpu().numpy().astype(np.uint8)
        self._saved_digest = artifacts["digest"]

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        assert self.src_vocab is not None and self.tgt_vocab is not None and self.codes is not None
        if saved.get("digest") != self.data_digest:
            raise UserError(
                f"the data differs from what this run was trained on (digest {self.data_digest} vs "
                f"{saved.get('digest')}); resume with the same data"
            )
        same = (
            self.src_vocab.to_list() == list(saved["src_vocab"])
            and self.tgt_vocab.to_list() == list(saved["tgt_vocab"])
            and np.array_equal(self.codes, saved["split"].cpu().numpy())
        )
        if not same:
            raise UserError(
                "the training data gives a different split or vocabulary than the checkpoint's; "
                "resume with the data and data.* settings the run was trained with"
            )

    def placeholder_artifacts(self) -> dict[str, Any]:
        words = list(SPECIALS) + [f"w{i}" for i in range(30)]
        empty = torch.zeros(0, dtype=torch.uint8)
        return {
            "src_vocab": words,
            "tgt_vocab": words,
            "tokenizer": "word",
            "src_model": empty,
            "tgt_model": empty,
            "split": empty,
            "digest": "",
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
            attention=m.attention,
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
            raise UserError(f"--beam must be >= 1, got {beam}")
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
            raise UserError(f"--replies must be >= 1, got {n}")
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
            raise UserError(f"--replies must be >= 1, got {n}")
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
            t = _PRONOUN_I.sub("I", t)
        return display_case(t)

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

    def describe_loss(self, loss: float) -> dict[str, float]:
        return {"ppl": perplexity(loss)}

    def format_metrics(self, metrics: dict[str, float]) -> str:
        keys = [k for k in (self.metric, "bleu", "bleu_greedy", "chrf", "loss") if k in metrics]
        keys = list(dict.fromkeys(keys))
        return " ".join(f"{k} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))


class _ReplyStream(Stream):
    """A chat request: ``2n`` sampled rows (one for greedy), and up to 4 rounds until ``n`` distinct replies -
    exactly ``sample_search`` / ``greedy_search`` step by step, with its own generator."""

    def __init__(
        self,
        task: Seq2SeqTask,
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

"""Pairs of sentences as the sequence-to-sequence task reads them: text, tokens, splits, vocabularies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.config import RunConfig
from rnnkit.data.parallel import (
    SEP,
    SPANISH,
    SPECIALS,
    SPLIT_CODES,
    Pair,
    Tokenizer,
    build_vocab,
    encode,
    grouped_split,
    normalize,
    read_pairs,
)
from rnnkit.data.splits import digest
from rnnkit.data.text import find_data_file
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import UserError
from rnnkit.tasks.base import MEMORY_DIR


@dataclass
class Split:
    src: list[list[int]]
    tgt: list[list[int]]
    refs: list[str]  # the target text (normalised, detokenised form), one per pair
    lines: list[int]


class Seq2SeqCorpus:
    """The task's text and data: normalisation and tokens per side, reading the pairs file, the split by source
    sentence, vocabularies and tokenizers, and their artifacts (a mixin of ``Seq2SeqTask``: it reads the task's
    ``dcfg``, ``data_dir`` and ``config``)."""

    # the task's state, made empty by Seq2SeqTask.__init__ and filled here (prepare, load_artifacts)
    src_tok: Tokenizer | None
    tgt_tok: Tokenizer | None
    src_vocab: Vocabulary | None
    tgt_vocab: Vocabulary | None
    codes: np.ndarray | None  # split code per pair of the file
    data_digest: str | None
    _saved_digest: str | None
    data: dict[str, Split]
    _punct_ids: Tensor | None

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
            if d.max_pair_tokens:
                ctx = ctx[-(d.max_pair_tokens + 1) * d.context_turns :]
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
                f"use the training data (data_dir=...)"
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
            self.codes = grouped_split(keys, {"valid": d.valid_fraction, "test": d.test_fraction}, d.split_seed)
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
                if not a or not b or (d.max_pair_tokens and (n_utt > d.max_pair_tokens or len(b) > d.max_pair_tokens)):
                    continue
                src.append(a)
                tgt.append(b)
                keep.append(int(i))
            if not keep:
                raise UserError(
                    f"data.path: no {s} pairs of at most data.max_pair_tokens={d.max_pair_tokens} tokens "
                    f"(raise data.max_pair_tokens or the {s} fraction)"
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

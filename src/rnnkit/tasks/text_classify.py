"""Text classification: labelled lines -> words -> embedding -> (bi)LSTM/GRU -> pooling -> label.

Data: one or more files of ``label<TAB>text`` (``data.label_column = 0``) or ``text<TAB>label`` (1), combined,
split into train/valid/test by a stratified draw that is a pure function of the data and ``data.split_seed`` (identical
texts always share a split). ``data.format = "aclimdb"`` reads the Large Movie Review Dataset's own layout instead
(``data.path``: aclImdb_v1.tar.gz or its directory): its train/test split is kept and the validation share is
carved off train. The vocabulary comes from the training split only. Batches are padded to their
longest sequence and the recurrent stack sees each sequence's true length, so padding changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from rnnkit.config import MAX_COUNT, RunConfig, key
from rnnkit.data.labelled_text import PAD, UNK, Example, read_labelled, tokenize
from rnnkit.data.splits import digest
from rnnkit.data.text import find_data_file
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import UserError
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.ops.device import to_device
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import MEMORY_DIR
from rnnkit.tasks.classify_common import ClassificationTask

TRUNCATE_SIDES = {
    "post": "the end: keep the first data.truncate tokens",
    "pre": "the start: keep the last data.truncate tokens (Keras pad_sequences' default)",
}
FORMATS = {
    "lines": "label<TAB>text (or text<TAB>label) lines, one file or several combined",
    "aclimdb": "the aclImdb archive or directory ({train,test}/{pos,neg}/*.txt; its own test split)",
}


@dataclass
class TextClassifyData:
    path: list[str] = fields.path(
        ["sms-spam/SMSSpamCollection"], "files of labelled lines, relative to --data-dir (or absolute), combined"
    )
    label_column: int = key(
        0,
        "where the label is: 0 = label<TAB>text (split on the first tab), 1 = text<TAB>label (split on the last tab)",
        ge=0,
        le=1,
    )
    label_names: dict[str, str] = key({}, 'rename classes, e.g. {"0" = "negative"}')
    max_classes: int = key(100, "more distinct labels than this means the label column holds text", ge=2, le=MAX_COUNT)
    lowercase: bool = fields.lowercase(True)
    digits: bool = key(False, "map every digit to 0 (numbers of one shape share a token)")
    min_count: int = fields.min_count(1)
    max_vocab: int = fields.max_vocab()
    truncate: int = key(
        0,
        "keep N tokens of a text (longer texts are cut at data.truncate_side, never dropped)",
        ge=1,
        le=MAX_COUNT,
        special={0: "keep every token"},
    )
    truncate_side: str = key("post", "which end of a text longer than data.truncate is cut", choices=TRUNCATE_SIDES)
    format: str = key("lines", "how the data files are laid out", choices=FORMATS)
    word_dropout: float = fields.word_dropout()
    valid_fraction: float = fields.fraction(0.1, "share of the examples held out for validation (stratified)")
    test_fraction: float = fields.fraction(0.1, "share of the examples held out for testing (stratified)")
    split_seed: int = fields.split_seed()
    balance: str = fields.balance()
    bucket: int = fields.bucket(20)

    RENAMED: ClassVar[dict[str, str]] = {
        "max_length": "data.truncate",
        "eval_batch_size": "train.eval_batch_size",
        "seed": "data.split_seed",
    }


@dataclass
class TextClassifyModel(fields.RecurrentKeys):
    embedding: int = fields.embedding(64)
    hidden: int | list[int] = fields.hidden(64)
    layers: int = fields.layers(1)
    bidirectional: bool = fields.bidirectional(True)
    dropout: float = fields.dropout()
    pooling: str = key("max", "how the recurrent outputs over time become one vector", choices=fields.POOLINGS)
    attention_size: int = fields.attention_size("attention pooling: size of the scoring layer")

    RENAMED: ClassVar[dict[str, str]] = {"attention": "model.attention_size"}


@register
class TextClassifyTask(ClassificationTask[TextClassifyData, TextClassifyModel]):
    name = "text-classify"
    default_eval_batch_size = 256

    @classmethod
    def check_config(cls, config: RunConfig[TextClassifyData, TextClassifyModel]) -> None:
        fields.check_recurrent(config.model)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vocab: Vocabulary | None = None
        self.ids: dict[str, list[Tensor]] = {}
        self.texts: dict[str, list[str]] = {}
        self._lengths: dict[str, np.ndarray] = {}

    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """(text, label) pairs, a dict of "text"/"label" columns or a DataFrame with those columns -> a
        label<TAB>text file; labels are taken as given (no label_names renaming)."""
        from rnnkit.data.memory import text_pairs, write_tsv

        rows = text_pairs(data, "text", "label")
        write_tsv(folder / "examples.tsv", [(label, text) for text, label in rows])
        return {"data.path": [f"{MEMORY_DIR}/examples.tsv"], "data.label_column": 0, "data.label_names": {}}

    def labelled_inputs(self, data: Any, folder: Path) -> tuple[list[Any], list[str]]:
        """A labelled text file laid out like the run's (data.label_column, data.label_names), or in memory."""
        from rnnkit.data.labelled_text import read_labelled

        d = self.dcfg
        path = self.data_file(data, folder, "examples.tsv")
        given = isinstance(data, os.PathLike)
        examples = read_labelled(path, d.label_column if given else 0, d.max_classes, keys={})  # the run's layout
        names = d.label_names if given else {}
        return [e.text for e in examples], [names.get(e.label, e.label) for e in examples]

    def _tokens(self, text: str) -> list[str]:
        return self._cut(tokenize(text, self.dcfg.lowercase, self.dcfg.digits))

    def _cut(self, toks: list[str]) -> list[str]:
        n = self.dcfg.truncate
        if n <= 0 or len(toks) <= n:
            return toks
        return toks[-n:] if self.dcfg.truncate_side == "pre" else toks[:n]

    def read_examples(self) -> tuple[list[Example], str]:
        d = self.dcfg
        self._fixed_test: np.ndarray | None = None  # examples the data set itself puts in its test split
        if d.format == "aclimdb":
            from rnnkit.data.aclimdb import read_aclimdb

            if len(d.path) != 1:
                raise UserError(f"data.path: format 'aclimdb' reads one archive or directory, got {len(d.path)} paths")
            path = find_data_file(d.path[0], self.data_dir, "data.path", allow_dir=True)
            parts = read_aclimdb(path)
            examples = parts["train"] + parts["test"]
            self._fixed_test = np.arange(len(examples)) >= len(parts["train"])
            return examples, digest(*(f"{e.label}\t{e.text}" for e in examples), "aclimdb")
        if d.format != "lines":
            raise UserError(f"data.format: expected 'lines' or 'aclimdb', got {d.format!r}")
        if not d.path:
            raise UserError('data.path is not set; point it at a label<TAB>text file (overrides={"data.path": FILE})')
        examples: list[Example] = []
        raw: list[bytes] = []
        for i, name in enumerate(d.path):
            path = find_data_file(name, self.data_dir, "data.path" if len(d.path) == 1 else f"data.path[{i}]")
            examples += read_labelled(path, d.label_column, d.max_classes)
            raw.append(path.read_bytes())
        for e in examples:
            e.label = d.label_names.get(e.label, e.label)
        return examples, digest(*raw, str(d.label_column), str(sorted(d.label_names.items())))

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        d = self.dcfg
        examples, dig = self.read_examples()
        self.check_digest(dig, ", ".join(d.path))
        labels = sorted({e.label for e in examples})
        if len(labels) < 2:
            raise UserError(f"{', '.join(d.path)}: only one class ({labels[0]!r}); a classifier needs two or more")
        self.set_labels(labels)
        index = {lab: i for i, lab in enumerate(labels)}
        y = np.array([index[e.label] for e in examples], dtype=np.int64)
        full = [tokenize(e.text, d.lowercase, d.digits) for e in examples]
        # identical texts never straddle splits; "identical" up to case, spacing and digits (templated spam that
        # differs only in a phone number is one message), whatever the tokeniser options: the split must not
        # move when data.lowercase or data.digits does, or two runs could not be compared on one test set
        groups = [" ".join(tokenize(e.text, lowercase=True, digits=True)) for e in examples]
        tokens = [self._cut(t) for t in full]
        if self._fixed_test is not None:  # the data set's own test split; validation carved off its train split
            pool = np.flatnonzero(~self._fixed_test)
            sub = self.split_indices(y[pool], {"valid": d.valid_fraction}, [groups[i] for i in pool])
            parts = {"train": pool[sub["train"]], "valid": pool[sub["valid"]], "test": np.flatnonzero(self._fixed_test)}
        else:
            parts = self.split_indices(y, {"valid": d.valid_fraction, "test": d.test_fraction}, groups)
        if self.vocab is None:
            self.choose_from_data(len(parts["train"]), np.array([len(t) for t in tokens]))
            train_tokens = (t for i in parts["train"] for t in tokens[i])
            self.vocab = Vocabulary.build(
                train_tokens, specials=(PAD, UNK), min_count=d.min_count, max_size=d.max_vocab, unk=UNK
            )
        for s in splits:
            idx = parts[s]
            self.targets[s] = y[idx]
            self.texts[s] = [examples[i].text for i in idx]
            self.ids[s] = [self._encode(tokens[i]) for i in idx]
            self._lengths.pop(s, None)
        self.finish_prepare()

    def choose_from_data(self, n: int, lengths: np.ndarray) -> None:
        """Defaults for the keys the user left unset, from the training split's size (rnnkit.tasks.auto): Adam
        at the shipped recipes' rate, a model that grows with the data, and a budget of epochs (at least ~300
        optimiser steps for a tiny set, at most 30 epochs) cut short by early stopping on validation, so a
        small data set trains for seconds to minutes, never for 24 steps and never for ten minutes."""
        c = self.choices
        c.about = f"{n} training texts, median {int(np.median(lengths)) if lengths.size else 0} tokens"
        bs = c.choose("train.batch_size", int(min(32, max(8, n // 10))), "32, or a tenth of a small data set")
        c.choose("optim.name", "adam", "Adam")
        c.choose("optim.lr", 2e-3, "Adam at the text recipes' rate")
        big = n >= 20_000
        c.choose("model.embedding", 128 if big else 64, f"{'20,000+' if big else 'under 20,000'} texts")
        c.choose("model.hidden", 128 if big else 64, f"{'20,000+' if big else 'under 20,000'} texts")
        c.choose("model.dropout", 0.3, "regularises a model this size")
        if c.free("train.max_epochs"):  # the budget: a user who set the epochs keeps their early stopping too
            per_epoch = max(1, -(-n // bs))
            epochs = int(min(30, max(5, -(-300 // per_epoch))))
            c.choose("train.max_epochs", epochs, f"{epochs * per_epoch} optimiser steps at most")
            c.choose("train.early_stop", 5, "5 validations without improvement")

    def _encode(self, tokens: list[str]) -> Tensor:
        assert self.vocab is not None
        ids = self.vocab.encode(tokens)
        return ids if ids.numel() else torch.tensor([self.vocab.unk_index])  # nothing readable: one <unk>

    def artifacts(self) -> dict[str, Any]:
        assert self.vocab is not None
        return {**self.common_artifacts(), "vocab": self.vocab.to_list()}

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        self.load_common_artifacts(artifacts)
        self.vocab = Vocabulary(list(artifacts["vocab"]), unk=UNK)

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        super().check_artifacts(saved)
        assert self.vocab is not None
        if self.vocab.to_list() != list(saved["vocab"]):
            raise UserError(
                f"the training data gives a different vocabulary than the checkpoint's "
                f"({len(self.vocab)} vs {len(saved['vocab'])} words); resume with the same data"
            )

    def placeholder_artifacts(self) -> dict[str, Any]:
        return {"labels": ["a", "b"], "vocab": [PAD, UNK] + [f"w{i}" for i in range(30)]}

    def make_model(self) -> nn.Module:
        m = self.mcfg
        assert self.vocab is not None
        return SequenceClassifier(
            self.num_classes,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            vocab_size=len(self.vocab),
            embedding=m.embedding,
            bidirectional=m.bidirectional,
            dropout=m.dropout,
            pooling=m.pooling,
            padding_idx=0,
            attention_size=m.attention_size,
        )

    def _pad(self, seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
        lengths = torch.tensor([s.numel() for s in seqs], dtype=torch.long)
        return to_device(pad_sequence(seqs, padding_value=0), self.device), lengths  # (seq, batch); lengths: CPU

    def make_batch(self, split: str, idx: np.ndarray) -> tuple[Tensor, Tensor | None]:
        ids = self.ids[split]
        return self._pad([ids[i] for i in idx])

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        p = self.dcfg.word_dropout
        if p:
            x, lengths, y = batch
            assert self.vocab is not None  # the global RNG draws the noise, so exact resume still holds
            x = x.masked_fill((torch.rand(x.shape, device=x.device) < p) & (x != 0), self.vocab.unk_index)
            batch = (x, lengths, y)
        return super().train_step(model, batch)

    def example_lengths(self, split: str) -> np.ndarray | None:
        if split not in self._lengths:
            self._lengths[split] = np.array([t.numel() for t in self.ids[split]], dtype=np.int64)
        return self._lengths[split]

    def eval_order(self, split: str) -> np.ndarray:
        return np.argsort(self.example_lengths(split), kind="stable")  # similar lengths batch together

    def encode_inputs(self, inputs: list[str]) -> tuple[Tensor, Tensor | None]:
        return self._pad([self._encode(self._tokens(t)) for t in inputs])

    def example_texts(self, split: str) -> list[str]:
        if split not in self.texts:
            self.prepare((split,))
        return self.texts[split]

"""Text classification: labelled lines -> words -> embedding -> (bi)LSTM/GRU -> pooling -> label.

Data: one or more files of ``label<TAB>text`` (``data.label_column = 0``) or ``text<TAB>label`` (1), combined,
split into train/valid/test by a stratified draw that is a pure function of the data and ``data.seed`` (identical
texts always share a split). The vocabulary comes from the training split only. Batches are padded to their
longest sequence and the recurrent stack sees each sequence's true length, so padding changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.labelled_text import PAD, UNK, Example, read_labelled, tokenize
from rnnkit.data.splits import digest
from rnnkit.data.text import find_data_file
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import UserError
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.tasks import register
from rnnkit.tasks.classify_common import ClassificationTask
from rnnkit.train.device import to_device


@dataclass
class TextClassifyData:
    # files relative to --data-dir (or absolute), combined; `--set data.path=FILE` gives one file
    path: list[str] = field(default_factory=lambda: ["sms-spam/SMSSpamCollection"])
    label_column: int = 0  # 0: label<TAB>text (split on the first tab) | 1: text<TAB>label (split on the last tab)
    label_names: dict[str, str] = field(default_factory=dict)  # rename classes, e.g. {"0" = "negative"}
    max_classes: int = 100  # more distinct labels than this means the label column holds text
    lowercase: bool = True
    digits: bool = False  # map every digit to 0 (numbers of one shape share a token)
    min_count: int = 1  # training-split words seen fewer times become <unk>
    max_vocab: int = 0  # 0 = no limit
    max_length: int = 0  # keep the first N tokens of a text; 0 = all
    word_dropout: float = 0.0  # training only: replace input words by <unk> with this probability
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0  # the split; train.seed orders batches and initialises the model
    balance: str = "none"  # none | weights (class-weighted loss) | sampler (class-balanced sampling)
    bucket: int = 20  # sort runs of this many batches by length (less padding); 0 = plain random batches
    eval_batch_size: int = 256


@dataclass
class TextClassifyModel:
    cell: str = "lstm"  # lstm | gru | rnn_tanh | rnn_relu | peephole_lstm | layernorm_lstm (scratch)
    backend: str = "fused"
    embedding: int = 64
    hidden: int = 64
    layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0
    pooling: str = "max"  # last | mean | max | attention
    attention: int = 0  # attention pooling: size of the scoring layer (0 = the RNN's output size)


@register
class TextClassifyTask(ClassificationTask):
    name = "text-classify"
    DataConfig = TextClassifyData
    ModelConfig = TextClassifyModel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.vocab: Vocabulary | None = None
        self.ids: dict[str, list[Tensor]] = {}
        self.texts: dict[str, list[str]] = {}
        self._lengths: dict[str, np.ndarray] = {}

    @property
    def dcfg(self) -> TextClassifyData:
        return self.config.data

    def _tokens(self, text: str) -> list[str]:
        toks = tokenize(text, self.dcfg.lowercase, self.dcfg.digits)
        return toks[: self.dcfg.max_length] if self.dcfg.max_length > 0 else toks

    def read_examples(self) -> tuple[list[Example], str]:
        d = self.dcfg
        if not d.path:
            raise UserError("data.path is not set; point it at a label<TAB>text file with --set data.path=FILE")
        examples: list[Example] = []
        raw: list[bytes] = []
        for i, name in enumerate(d.path):
            path = find_data_file(name, self.data_dir, "data.path" if len(d.path) == 1 else f"data.path[{i}]")
            examples += read_labelled(path, d.label_column, d.max_classes)
            raw.append(path.read_bytes())
        if not isinstance(d.label_names, dict) or not all(isinstance(v, str) for v in d.label_names.values()):
            raise UserError(f"data.label_names: expected a table of label = name, got {d.label_names!r}")
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
        tokens = [t[: d.max_length] for t in full] if d.max_length > 0 else full
        parts = self.split_indices(y, {"valid": d.valid_fraction, "test": d.test_fraction}, groups)
        if self.vocab is None:
            train_tokens = (t for i in parts["train"] for t in tokens[i])
            self.vocab = Vocabulary.build(train_tokens, specials=(PAD, UNK), min_count=d.min_count,
                                          max_size=d.max_vocab, unk=UNK)
        for s in splits:
            idx = parts[s]
            self.targets[s] = y[idx]
            self.texts[s] = [examples[i].text for i in idx]
            self.ids[s] = [self._encode(tokens[i]) for i in idx]
            self._lengths.pop(s, None)
        self.finish_prepare()

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
            raise UserError(f"the training data gives a different vocabulary than the checkpoint's "
                            f"({len(self.vocab)} vs {len(saved['vocab'])} words); resume with the same data")

    def build_model(self) -> nn.Module:
        m: TextClassifyModel = self.config.model
        assert self.vocab is not None
        try:
            return SequenceClassifier(self.num_classes, m.hidden, m.layers, cell=m.cell, backend=m.backend,
                                      vocab_size=len(self.vocab), embedding=m.embedding,
                                      bidirectional=m.bidirectional, dropout=m.dropout, pooling=m.pooling,
                                      padding_idx=0, attention=m.attention)
        except ValueError as e:
            raise UserError(f"model: {e}") from None

    def _pad(self, seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
        lengths = torch.tensor([s.numel() for s in seqs], dtype=torch.long)
        return to_device(pad_sequence(seqs, padding_value=0), self.device), lengths  # (seq, batch); lengths: CPU

    def make_batch(self, split: str, idx: np.ndarray) -> tuple[Tensor, Tensor | None]:
        ids = self.ids[split]
        return self._pad([ids[i] for i in idx])

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        p = self.dcfg.word_dropout
        if p:
            if not 0 <= p < 1:
                raise UserError(f"data.word_dropout: expected a probability in [0, 1), got {p}")
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


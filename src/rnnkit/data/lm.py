"""Language-model corpora and the batching of Zaremba et al. (2014).

The token stream is cut into ``batch`` parallel columns and read ``bptt`` steps at a time; the hidden state is
carried from one chunk to the next and detached, which is truncated back-propagation through time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.data.text import split_lines
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import UserError
from rnnkit.seeds import derive_seed

EOS = "<eos>"
UNK = "<unk>"
IGNORE = -100  # target index that cross_entropy skips (padding at the end of evaluation columns)


_WORD_OR_PUNCT = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str, level: str, lowercase: bool = False, punctuation: bool = False) -> list[str]:
    """Word level: whitespace tokens plus ``<eos>`` at each line end (Mikolov/Zaremba); with ``punctuation``
    punctuation marks become tokens of their own. Char level: every character, newlines included."""
    if lowercase:
        text = text.lower()
    if level == "char":
        return list(text)
    if level != "word":
        raise UserError(f"data.level: expected 'word' or 'char', got {level!r}")
    tokens: list[str] = []
    for line in split_lines(text):
        words = _WORD_OR_PUNCT.findall(line) if punctuation else line.split()
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    return tokens


def detokenize(tokens: list[str], level: str) -> str:
    if level == "char":
        return "".join(tokens)
    return " ".join("\n" if t == EOS else t for t in tokens).replace(" \n ", "\n").replace(" \n", "\n")


def build_vocab(tokens: list[str], level: str, min_count: int = 1, max_size: int = 0) -> Vocabulary:
    specials = (UNK, EOS) if level == "word" else ()
    return Vocabulary.build(
        tokens, specials=specials, min_count=min_count, max_size=max_size, unk=UNK if level == "word" else None
    )


def batchify(ids: Tensor, batch: int) -> Tensor:
    """(N,) -> (N // batch, batch): each column a contiguous slice of the stream; the remainder is dropped."""
    n = ids.size(0) // batch
    if n < 2:
        raise UserError(
            f"corpus too small: {ids.size(0)} tokens cannot fill {batch} columns of 2+ tokens; lower train.batch_size"
        )
    return ids[: n * batch].view(batch, n).t().contiguous()  # (n, batch)


@dataclass
class StreamBatches:
    """Fixed-length TBPTT chunks over a batchified stream: (input, target), each (bptt, batch)."""

    data: Tensor  # (steps, batch)
    bptt: int

    def __len__(self) -> int:
        return (self.data.size(0) - 1) // self.bptt

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[tuple[Tensor, Tensor]]:
        for b in range(start, len(self)):
            i = b * self.bptt
            yield self.data[i : i + self.bptt], self.data[i + 1 : i + 1 + self.bptt]


def eval_columns(ids: Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """Every token of a split predicted exactly once: inputs/targets (steps, batch), targets padded with IGNORE.

    Unlike ``batchify`` nothing is dropped, so perplexity covers the whole split.
    """
    n = ids.size(0) - 1  # number of predictions
    batch = max(1, min(batch, n))
    steps = -(-n // batch)
    inputs = torch.zeros(batch * steps, dtype=torch.long)
    targets = torch.full((batch * steps,), IGNORE, dtype=torch.long)
    inputs[:n] = ids[:-1]
    targets[:n] = ids[1:]
    return inputs.view(batch, steps).t().contiguous(), targets.view(batch, steps).t().contiguous()


def window_starts(n_tokens: int, window: int, seed: int, epoch: int) -> Tensor:
    """Shuffled starts of every (window -> next token) example, reproducible from (seed, epoch)."""
    count = n_tokens - window
    if count < 1:
        raise UserError(f"corpus too small for data.window={window}: only {n_tokens} tokens")
    g = torch.Generator().manual_seed(derive_seed(seed, epoch))
    return torch.randperm(count, generator=g)

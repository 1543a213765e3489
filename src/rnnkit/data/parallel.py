"""Parallel text for sequence to sequence: ``source<TAB>target[<TAB>...]`` pairs, normalisation, tokenisation,
a grouped train/valid/test split, vocabularies (words or learned subwords) and length-bucketed batches.

Normalisation (``normalize``) keeps accents (``¿Cómo te llamas?`` stays ``¿cómo te llamas?``), folds case and
separates punctuation into tokens of its own. ``strip_accents`` is a separate step applied to the *source* side
of Spanish (``data.strip_accents = "auto"``), in training and at inference alike: people type ``Como te llamas``
and ``Hablas espanol``, and a model trained on accented text would read ``como`` ("like", "I eat") and an
unknown ``espanol``. Stripping the source makes accented and unaccented input the same token sequence. The cost
is a few merged homographs (si/sí, el/él, que/qué, esta/está, tu/tú, solo/sólo, mas/más), which the encoder
tells apart from context (¿...? marks the questions, word order the rest); the target side is never stripped by
default, so an English->Spanish model still writes accents.

The split groups pairs by their normalised source sentence: Tatoeba lists one sentence with several
translations, and a test sentence whose twin sits in train would measure memory, not translation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.data.text import read_text
from rnnkit.data.vocab import Vocabulary
from rnnkit.errors import UserError

PAD, UNK, GO, EOS = "<pad>", "<unk>", "<go>", "<eos>"
SEP = "<sep>"  # between dialogue turns when a chatbot reads context
SPECIALS = (PAD, UNK, GO, EOS)
PAD_ID, UNK_ID, GO_ID, EOS_ID = 0, 1, 2, 3
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}

SPANISH = ("spa", "es", "spanish")
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_ATTACH_LEFT = set(".,!?;:%)]}…")
_ATTACH_RIGHT = set("¿¡([{")


# -- text -----------------------------------------------------------------------------------------
def strip_accents(text: str) -> str:
    """``¿Cómo está, señor?`` -> ``¿Como esta, senor?`` (combining marks removed; ¿ ¡ and punctuation kept)."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def normalize(text: str, lowercase: bool = True, accents: bool = True) -> str:
    """Unicode NFC, case folded (``lowercase``), accents kept unless ``accents`` is False, spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    if lowercase:
        text = text.lower()
    if not accents:
        text = strip_accents(text)
    return " ".join(text.split())


def word_tokens(text: str) -> list[str]:
    """Words (with inner apostrophes: ``what's``, ``don't``) and punctuation marks as separate tokens."""
    return _TOKEN.findall(text)


def detokenize_words(tokens: Sequence[str]) -> str:
    """Join word tokens as text: no space before ``. , ! ? ; :``, none after ``¿ ¡ (``."""
    out: list[str] = []
    glue = False
    for t in tokens:
        if out and not glue and t not in _ATTACH_LEFT:
            out.append(" ")
        out.append(t)
        glue = t in _ATTACH_RIGHT
    return "".join(out)


def display_case(text: str) -> str:
    """Capitalise the first letter (outputs of a case-folded model read like sentences)."""
    for i, c in enumerate(text):
        if c.isalpha():
            return text[:i] + c.upper() + text[i + 1 :]
    return text


# -- reading --------------------------------------------------------------------------------------
@dataclass
class Pair:
    source: str
    target: str
    line: int  # 1-based line in the file


def read_pairs(path: Path, source_column: int = 0, target_column: int = 1, max_pairs: int = 0) -> list[Pair]:
    """Every non-blank line of a tab-separated file as a (source, target) pair; errors name file and line."""
    for name, col in (("data.source_column", source_column), ("data.target_column", target_column)):
        if col < 0:
            raise UserError(f"{name} must be >= 0 (0-based column), got {col}")
    if source_column == target_column:
        raise UserError(
            f"data.source_column and data.target_column are both {source_column}; they must name different columns"
        )
    text = read_text(path)  # empty file, binary data, invalid UTF-8 -> UserError with the line
    pairs: list[Pair] = []
    need = max(source_column, target_column) + 1
    # split on \n only: str.splitlines() also breaks at U+0085, U+2028 ... which occur inside real sentences
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) == 1:
            raise UserError(f"{path}: line {n}: no tab; expected source<TAB>target (tab-separated columns)")
        if len(fields) < need:
            col, name = (
                (source_column, "data.source_column")
                if source_column >= len(fields)
                else (target_column, "data.target_column")
            )
            raise UserError(
                f"{path}: line {n}: {len(fields)} columns, but {name}={col} (0-based) needs "
                f"{col + 1}; set data.source_column / data.target_column to columns 0..{len(fields) - 1}"
            )
        src, tgt = fields[source_column].strip(), fields[target_column].strip()
        if not src or not tgt:
            which = "source" if not src else "target"
            col = source_column if not src else target_column
            raise UserError(f"{path}: line {n}: empty {which} (column {col})")
        pairs.append(Pair(src, tgt, n))
        if max_pairs and len(pairs) >= max_pairs:
            break
    if not pairs:
        raise UserError(f"{path}: no sentence pairs")
    return pairs


# -- the split ------------------------------------------------------------------------------------
def grouped_split(keys: Sequence[str], fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split codes (0 train, 1 valid, 2 test) per example, whole groups of equal ``keys`` at a time.

    Groups are shuffled with ``seed`` and dealt to test, then valid, until each holds its share of the
    *examples*; the rest is train. A pure function of (keys, fractions, seed): the same data and seed always
    give the same split, and no key is in two splits.
    """
    for name, f in fractions.items():
        if not 0 <= f < 0.5:
            raise UserError(f"data.{name}_fraction must be in [0, 0.5), got {f}")
    first: dict[str, int] = {}
    group_of = np.empty(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        group_of[i] = first.setdefault(k, len(first))
    sizes = np.bincount(group_of, minlength=len(first))
    order = np.random.default_rng(seed).permutation(len(first))
    code_of_group = np.zeros(len(first), dtype=np.uint8)
    n = len(keys)
    start = 0
    for name in ("test", "valid"):
        want = int(round(fractions.get(name, 0.0) * n))
        if want <= 0:
            continue
        cum = np.cumsum(sizes[order[start:]])
        take = int(np.searchsorted(cum, want)) + 1  # groups until the share is reached
        take = min(take, len(order) - start - 1)  # always leave training data
        code_of_group[order[start : start + take]] = SPLIT_CODES[name]
        start += take
    return code_of_group[group_of]


# -- tokenisers -----------------------------------------------------------------------------------
class Tokenizer:
    """Normalised text <-> tokens for one side: words, or sentencepiece subwords learned on the train split."""

    def __init__(self, kind: str = "word", model: bytes | None = None) -> None:
        if kind not in ("word", "sentencepiece"):
            raise UserError(f"data.tokenizer: expected 'word' or 'sentencepiece', got {kind!r}")
        self.kind = kind
        self.model = model
        self._sp: Any = None
        if kind == "sentencepiece" and model is not None:
            self._sp = _load_sentencepiece(model)

    def tokens(self, text: str) -> list[str]:
        if self.kind == "word":
            return word_tokens(text)
        if self._sp is None:
            raise RuntimeError("sentencepiece tokenizer used before training")
        # split punctuation first so the subword model never glues "?" onto a word
        return self._sp.encode(" ".join(word_tokens(text)), out_type=str)

    def detokenize(self, tokens: Sequence[str]) -> str:
        if self.kind == "word":
            return detokenize_words(tokens)
        text = self._sp.decode_pieces(list(tokens)) if tokens else ""
        return detokenize_words(text.split())

    @classmethod
    def train(cls, kind: str, sentences: Sequence[str], vocab_size: int) -> Tokenizer:
        """Words need no training; sentencepiece learns a unigram model (one thread, unshuffled: deterministic)."""
        if kind == "word":
            return cls("word")
        spm = _import_sentencepiece()
        import io

        buf = io.BytesIO()
        text = [" ".join(word_tokens(s)) for s in sentences]
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(text),
                model_writer=buf,
                vocab_size=vocab_size,
                model_type="unigram",
                character_coverage=1.0,
                pad_id=-1,
                unk_id=0,
                bos_id=-1,
                eos_id=-1,
                num_threads=1,
                minloglevel=2,
                hard_vocab_limit=False,
                input_sentence_size=2_000_000,
                shuffle_input_sentence=False,
            )
        except RuntimeError as e:
            raise UserError(
                f"sentencepiece could not learn a {vocab_size}-piece vocabulary: "
                f"{str(e).splitlines()[0]}; lower data.subword_vocab"
            ) from None
        return cls("sentencepiece", buf.getvalue())


def _import_sentencepiece() -> Any:
    try:
        import sentencepiece as spm
    except ImportError:
        raise UserError(
            'data.tokenizer = "sentencepiece" needs the optional package sentencepiece: '
            'pip install sentencepiece (or use data.tokenizer = "word")'
        ) from None
    return spm


def _load_sentencepiece(model: bytes) -> Any:
    spm = _import_sentencepiece()
    return spm.SentencePieceProcessor(model_proto=model)


def build_vocab(
    token_lists: Sequence[Sequence[str]], min_count: int = 1, max_size: int = 0, extra: Sequence[str] = ()
) -> Vocabulary:
    """``<pad> <unk> <go> <eos>`` (indices 0-3), ``extra`` specials, then tokens by descending frequency."""
    specials = SPECIALS + tuple(extra)
    return Vocabulary.build(
        (t for toks in token_lists for t in toks), specials=specials, min_count=min_count, max_size=max_size, unk=UNK
    )


def encode(vocab: Vocabulary, tokens: Sequence[str]) -> list[int]:
    stoi, unk = vocab.stoi, vocab.unk_index
    return [stoi.get(t, unk) for t in tokens]


# -- batches --------------------------------------------------------------------------------------
@dataclass
class Batch:
    src: Tensor  # (S, B) source ids, PAD after each length
    src_len: Tensor  # (B,) on the CPU
    tgt_in: Tensor  # (T, B): <go> y1 .. yn
    tgt_out: Tensor  # (T, B): y1 .. yn <eos>, PAD beyond
    index: Tensor  # (B,) example indices within the split
    epoch: int = 0
    number: int = 0  # batch index within the epoch (seeds noise and teacher-forcing coins)


def pad_batch(seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """(L, B) ids padded with PAD, and (B,) lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((max(int(lengths.max()), 1), len(seqs)), PAD_ID, dtype=torch.long)
    for j, s in enumerate(seqs):
        if s:
            out[: len(s), j] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


def make_batch(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], index: Sequence[int]) -> Batch:
    s, s_len = pad_batch(src)
    t_in, _ = pad_batch([[GO_ID, *t] for t in tgt])
    t_out, _ = pad_batch([[*t, EOS_ID] for t in tgt])
    return Batch(s, s_len, t_in, t_out, torch.as_tensor(list(index), dtype=torch.long))


def length_sorted_chunks(lengths: Sequence[int], size: int) -> Iterator[np.ndarray]:
    """Indices in order of length, ``size`` at a time (evaluation: little padding, order restored by caller)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for i in range(0, order.size, size):
        yield order[i : i + size]

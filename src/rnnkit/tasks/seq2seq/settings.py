"""The sequence-to-sequence task's [data] and [model] sections: every key, declared once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from rnnkit.config import MAX_COUNT, MAX_SIZE, key
from rnnkit.models.seq2seq import ATTENTIONS
from rnnkit.tasks import fields

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
PRONOUN_I = re.compile(r"\bi\b")  # "i" as a word: written "I" in English replies


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
    max_pair_tokens: int = key(
        15,
        "the most tokens a pair's source and target may each have (without <go>/<eos>): longer pairs are dropped "
        "from every split",
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
    split_seed: int = fields.split_seed()
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

    RENAMED: ClassVar[dict[str, str]] = {
        "pairs": "data.path",
        "eval_batch_size": "train.eval_batch_size",
        "max_length": "data.max_pair_tokens",
        "seed": "data.split_seed",
    }


@dataclass
class Seq2SeqModel(fields.RecurrentKeys):
    embedding: int = fields.embedding(100)
    hidden: int | list[int] = fields.hidden(256)
    layers: int = fields.layers(1)
    bidirectional: bool = fields.bidirectional(False, "encoder: read the source in both directions")
    attention_kind: str = key("general", "how the decoder attends to the source", choices=ATTENTION_KINDS)
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

    RENAMED: ClassVar[dict[str, str]] = {"attention": "model.attention_kind"}

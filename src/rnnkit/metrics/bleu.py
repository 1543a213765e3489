"""Corpus BLEU and chrF with sacrebleu, on detokenised text (sacrebleu tokenises both sides itself: 13a).

References may vary in number per sentence (a Tatoeba sentence with three translations has three references);
sacrebleu takes them as parallel streams padded with None.
"""

from __future__ import annotations

from collections.abc import Sequence

from rnnkit.errors import UserError


def _sacrebleu():  # noqa: ANN202 - the module
    try:
        import sacrebleu
    except ImportError:
        raise UserError("BLEU needs the package sacrebleu: pip install sacrebleu") from None
    return sacrebleu


def _streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    width = max((len(r) for r in references), default=1)
    return [[r[i] if i < len(r) else None for r in references] for i in range(max(width, 1))]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], lowercase: bool = False) -> float:
    """Corpus BLEU (0-100) of ``hypotheses[i]`` against the references ``references[i]`` (one or more each)."""
    if len(hypotheses) != len(references):
        raise ValueError("one list of references per hypothesis")
    if not hypotheses:
        return 0.0
    bleu = _sacrebleu().metrics.BLEU(lowercase=lowercase)
    return float(bleu.corpus_score(list(hypotheses), _streams(references)).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]], lowercase: bool = False) -> float:
    """Corpus chrF (0-100; character n-gram F-score, Popovic 2015)."""
    if not hypotheses:
        return 0.0
    chrf = _sacrebleu().metrics.CHRF(lowercase=lowercase)
    return float(chrf.corpus_score(list(hypotheses), _streams(references)).score)

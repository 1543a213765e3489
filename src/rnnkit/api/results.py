"""What the Python API's predictions return: one documented type per kind of answer, the same for every input
(a forecast is a pandas DataFrame: ``Run.forecast``).

They are ``TypedDict``s - plain dicts at run time (printable, JSON-ready, what ``rnnkit ... --json`` prints) with
their keys and value types declared for type checkers and for the reader.
"""

from __future__ import annotations

from typing import Any, TypedDict


class _PredictionBase(TypedDict):
    label: str  # the most likely class
    probability: float  # its probability
    probabilities: dict[str, float]  # every class's, in the order of the run's labels


class Prediction(_PredictionBase, total=False):
    """One classification (``Run.classify``, ``Run.predict`` of a classifier)."""

    text: str  # the input, for text classifiers


class Translation(TypedDict):
    """One translation with its details (``Run.translate(..., details=True)``)."""

    source: str  # the sentence as given
    translation: str  # in display case
    source_tokens: list[str]  # the sentence as the model read it
    target_tokens: list[str]  # the output tokens, one per row of ``attention``
    unknown: list[str]  # source tokens the model never saw in training (read as <unk>)
    score: float | None  # log-probability (divided by the length penalty with beam search)
    attention: Any  # a (target, source) torch.Tensor of weights (rows sum to 1), or None without attention


__all__ = ["Prediction", "Translation"]

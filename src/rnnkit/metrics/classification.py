"""Classification metrics, computed one way everywhere: accuracy, per-class precision/recall/F1, macro F1 and the
confusion matrix (plain numpy, no scikit-learn).

Conventions: the confusion matrix is ``[true][predicted]``; a class with no predictions has precision 0, one with
no examples has recall 0, and F1 is 0 whenever precision + recall is 0 (scikit-learn's ``zero_division=0``).
Macro F1 averages F1 over every class of the task, also those absent from the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """(classes, classes) int64 counts; row = true class, column = predicted class."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def scores_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray | float]:
    """accuracy, macro_f1 and per-class precision / recall / f1 / support arrays from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = cm.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()) if f1.size else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
    }


def classification_report(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Everything `rnnkit eval` reports for a classifier, as plain JSON-able data.

    ``precision``/``recall``/``f1``/``support`` are dicts label -> value; ``recall`` is also each class's own
    accuracy. ``confusion`` holds ``labels`` and ``matrix`` (rows true, columns predicted).
    """
    labels = [str(x) for x in labels]
    cm = confusion_matrix(y_true, y_pred, len(labels))
    s = scores_from_confusion(cm)
    per = {k: {lab: float(v) for lab, v in zip(labels, s[k])} for k in ("precision", "recall", "f1")}
    return {
        "accuracy": s["accuracy"],
        "macro_f1": s["macro_f1"],
        **per,
        "support": {lab: int(v) for lab, v in zip(labels, s["support"])},
        "confusion": {"labels": labels, "matrix": cm.tolist()},
    }


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Any, title: str = "") -> None:
    """A confusion-matrix PNG: counts in each cell, colour by row-normalised share (per-class recall)."""
    from rnnkit.figures import figure, save_png

    cm = np.asarray(matrix, dtype=np.float64)
    share = _safe_div(cm, cm.sum(1, keepdims=True))
    n = len(labels)
    size = max(4.0, 0.6 * n + 2.5)
    fig = figure((size + 1, size))
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
                fontsize=9,
            )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_png(fig, path, dpi=90)

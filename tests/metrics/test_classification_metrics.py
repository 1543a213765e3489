"""Classification metrics agree with scikit-learn's on random and edge-case predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion

from rnnkit.metrics.classification import classification_report, confusion_matrix, plot_confusion


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    k = 4
    y = rng.integers(0, k, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
    labels = ["a", "b", "c", "d"]
    r = classification_report(y, p, labels)
    assert r["confusion"]["matrix"] == sk_confusion(y, p, labels=range(k)).tolist()
    assert r["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert r["macro_f1"] == pytest.approx(f1_score(y, p, average="macro", labels=range(k), zero_division=0))
    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=range(k), zero_division=0)
    for i, lab in enumerate(labels):
        assert r["precision"][lab] == pytest.approx(prec[i])
        assert r["recall"][lab] == pytest.approx(rec[i])
        assert r["f1"][lab] == pytest.approx(f1[i])
        assert r["support"][lab] == sup[i]


def test_absent_and_never_predicted_classes_score_zero():
    r = classification_report([0, 0, 1, 1], [0, 0, 0, 0], ["ham", "spam", "other"])
    assert r["accuracy"] == 0.5
    assert r["precision"]["spam"] == 0 and r["recall"]["spam"] == 0 and r["f1"]["spam"] == 0
    assert r["support"]["other"] == 0 and r["f1"]["other"] == 0
    assert r["macro_f1"] == pytest.approx((2 * 0.5 * 1 / 1.5) / 3)  # macro over every class of the task
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)


def test_confusion_png(tmp_path):
    path = tmp_path / "cm.png"
    plot_confusion([[5, 1], [0, 4]], ["ham", "spam"], path, "t")
    assert path.read_bytes()[:4] == b"\x89PNG" and not list(tmp_path.glob("*.tmp.png"))

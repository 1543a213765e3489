"""What text and numeric-sequence classification share: stratified splits, class balancing, batching order,
the loss, the evaluation report and prediction.

Metric: ``macro_f1`` selects best.pt and drives early stopping. On balanced sets (sentiment, HAR, digits) it
moves with accuracy; on imbalanced ones (SMS spam: 13% spam) accuracy rewards ignoring the small class (always
"ham" scores 87% accuracy but 0.46 macro F1), while macro F1 weighs every class equally.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.sampling import bucketed_batches, epoch_permutation, epoch_sample
from rnnkit.data.splits import stratified_split
from rnnkit.errors import UserError
from rnnkit.metrics.classification import classification_report, plot_confusion
from rnnkit.ops.device import to_device
from rnnkit.tasks.base import Task

CD = TypeVar("CD")
CM = TypeVar("CM")


class ClassificationTask(Task[CD, CM]):
    """A many-to-one classifier over examples held per split; subclasses read data and build batches."""

    metric: ClassVar[str] = "macro_f1"
    higher_is_better: ClassVar[bool] = True
    count_unit: ClassVar[str] = "examples"
    services: ClassVar[tuple[str, ...]] = ("classify",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels: list[str] | None = None
        self.targets: dict[str, np.ndarray] = {}  # split -> (n,) int64 class indices
        self.data_digest: str | None = None  # of the data the split was drawn from
        self._saved_digest: str | None = None  # from a checkpoint's artifacts
        self.class_weights: Tensor | None = None

    # -- hooks for subclasses ---------------------------------------------------------------------
    def make_batch(self, split: str, idx: np.ndarray) -> tuple[Tensor, Tensor | None]:
        """(inputs on self.device, lengths or None) for the examples ``idx`` of ``split``."""
        raise NotImplementedError

    def encode_inputs(self, inputs: list[str]) -> tuple[Tensor, Tensor | None]:
        """User inputs (text, or numbers as text) -> a batch, for `rnnkit classify`."""
        raise NotImplementedError

    def describe_input(self) -> str:
        """How a user writes one input, for numeric inputs ("" for text)."""
        return ""

    def describe(self) -> dict[str, Any]:
        fmt = self.describe_input()
        return {
            "labels": list(self.labels or []),
            "input": "sequence" if fmt else "text",
            **({"input_format": fmt} if fmt else {}),
        }

    # -- shared data helpers ----------------------------------------------------------------------
    @property
    def balance(self) -> str:
        return self.config.data.balance  # type: ignore[attr-defined]

    def split_indices(
        self,
        labels: np.ndarray,
        fractions: dict[str, float],
        groups: list[Any] | None = None,
    ) -> dict[str, np.ndarray]:
        return stratified_split(labels, fractions, self.config.data.split_seed, groups)  # type: ignore[attr-defined]

    def check_digest(self, digest: str, source: str) -> None:
        self.data_digest = digest
        if self._saved_digest is not None and digest != self._saved_digest:
            raise UserError(
                f"{source}: the data differs from what this run was trained on (digest {digest} vs "
                f"{self._saved_digest}), so its train/valid/test split cannot be reproduced; "
                f"evaluate with the training data (data_dir=...)"
            )

    def set_labels(self, labels: list[str]) -> None:
        if self.labels is not None and list(labels) != self.labels:
            raise UserError(f"the data's classes {labels} differ from the run's {self.labels}")
        self.labels = list(labels)

    def finish_prepare(self) -> None:
        if "train" not in self.targets:
            return
        counts = np.bincount(self.targets["train"], minlength=len(self.labels or []))
        test_only = getattr(self, "test_only", set())  # classes only a given test file has (a warning said so)
        missing = [lab for lab, c in zip(self.labels or [], counts) if c == 0 and lab not in test_only]
        if missing:
            raise UserError(f"no training examples of class(es) {missing}; add data or lower the held-out fractions")
        trained = counts > 0
        w = np.zeros(len(counts))  # "balanced": each class contributes equally to the loss
        w[trained] = counts.sum() / (trained.sum() * counts[trained])
        self.class_weights = torch.tensor(w, dtype=torch.float32, device=self.device)

    @property
    def num_classes(self) -> int:
        assert self.labels is not None
        return len(self.labels)

    def common_artifacts(self) -> dict[str, Any]:
        assert self.labels is not None
        sizes = {s: int(t.size) for s, t in self.targets.items()}
        return {"labels": list(self.labels), "data_digest": self.data_digest or "", "split_sizes": sizes}

    def load_common_artifacts(self, artifacts: dict[str, Any]) -> None:
        self.labels = list(artifacts["labels"])
        self._saved_digest = artifacts.get("data_digest") or None

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        if list(saved.get("labels", [])) != self.labels:
            raise UserError(
                f"the training data gives classes {self.labels}, the checkpoint has {saved.get('labels')}; "
                f"resume with the data the run was trained on"
            )
        if saved.get("data_digest") and saved["data_digest"] != self.data_digest:
            raise UserError(
                "the training data differs from the checkpoint's (another file or seed); resume with "
                "the data the run was trained on"
            )

    # -- training ---------------------------------------------------------------------------------
    def num_train_batches(self, epoch: int) -> int:
        return -(-int(self.targets["train"].size) // self.config.train.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Training example indices for one epoch, a function of (train.seed, epoch) only."""
        y, seed = self.targets["train"], self.config.train.seed
        if self.balance == "sampler":  # draw with replacement, each class equally likely
            assert self.class_weights is not None
            return epoch_sample(self.class_weights.cpu().double()[torch.from_numpy(y)].numpy(), seed, epoch)
        return epoch_permutation(y.size, seed, epoch)

    def example_lengths(self, split: str) -> np.ndarray | None:
        """Per-example lengths when they vary (text), for bucketing; None for fixed-length sequences."""
        return None

    def batch_plan(self, epoch: int) -> list[np.ndarray]:
        """The epoch's batches (example indices), a function of (train.seed, epoch) only; bucketed by length
        with ``data.bucket`` > 0 when examples vary in length (rnnkit.data.sampling.bucketed_batches)."""
        return bucketed_batches(
            self.epoch_order(epoch),
            self.example_lengths("train"),
            self.config.train.batch_size,
            getattr(self.config.data, "bucket", 0),
            self.config.train.seed,
            epoch,
        )

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        plan = self.batch_plan(epoch)
        for b in range(start, len(plan)):
            idx = plan[b]
            x, lengths = self.make_batch("train", idx)
            yield x, lengths, to_device(torch.from_numpy(self.targets["train"][idx]), self.device)

    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, int]:
        x, lengths, y = batch
        weight = self.class_weights if self.balance == "weights" else None
        return F.cross_entropy(model(x, lengths), y, weight=weight), int(y.numel())

    # -- evaluation -------------------------------------------------------------------------------
    def eval_order(self, split: str) -> np.ndarray:
        return np.arange(self.targets[split].size)

    @torch.inference_mode()
    def predict_split(self, model: nn.Module, split: str) -> tuple[np.ndarray, float]:
        """(predicted class per example, summed unweighted cross-entropy) over a whole split."""
        if split not in self.targets:
            self.prepare((split,))
        model.eval()
        y = self.targets[split]
        pred = np.empty(y.size, dtype=np.int64)
        order, bs = self.eval_order(split), self.eval_batch_size
        total = 0.0
        for i in range(0, order.size, bs):
            idx = order[i : i + bs]
            x, lengths = self.make_batch(split, idx)
            logits = model(x, lengths).float()
            total += float(F.cross_entropy(logits, torch.from_numpy(y[idx]).to(logits.device), reduction="sum"))
            pred[idx] = logits.argmax(-1).cpu().numpy()
        return pred, total

    def evaluate(self, model: nn.Module, split: str) -> dict[str, Any]:
        pred, total = self.predict_split(model, split)
        y = self.targets[split]
        if y.size == 0:
            raise UserError(f"the {split} split is empty; raise data.{split}_fraction or add data")
        return self.metrics_of(y, pred, total)

    def labelled_inputs(self, data: Any, folder: Path) -> tuple[list[Any], list[str]]:
        """New labelled data (a file of the task's format, or what ``write_data`` takes) as (inputs as
        ``classify`` takes them, labels); see ``Task.evaluate_data``."""
        raise UserError(f"task {self.name!r} cannot score new data yet")

    @torch.inference_mode()
    def evaluate_data(self, model: nn.Module, data: Any, folder: Path) -> dict[str, Any]:
        """``evaluate``'s report on new labelled examples, encoded as ``classify`` encodes its inputs."""
        assert self.labels is not None
        inputs, labels = self.labelled_inputs(data, folder)
        unknown = sorted(set(labels) - set(self.labels))
        if unknown:
            raise UserError(f"data: label(s) {unknown} are not among the run's classes {self.labels}")
        if not inputs:
            raise UserError("data: no examples")
        model.eval()
        y = np.array([self.labels.index(lab) for lab in labels], dtype=np.int64)
        pred = np.empty(y.size, dtype=np.int64)
        total, bs = 0.0, self.eval_batch_size
        for i in range(0, y.size, bs):
            x, lengths = self.encode_inputs(inputs[i : i + bs])
            logits = model(x, lengths).float()
            total += float(F.cross_entropy(logits, torch.from_numpy(y[i : i + bs]).to(logits.device), reduction="sum"))
            pred[i : i + bs] = logits.argmax(-1).cpu().numpy()
        return self.metrics_of(y, pred, total)

    def metrics_of(self, y: np.ndarray, pred: np.ndarray, total: float) -> dict[str, Any]:
        """The report of predictions ``pred`` against classes ``y`` (summed cross-entropy ``total``)."""
        assert self.labels is not None
        report = classification_report(y, pred, self.labels)
        return {
            "loss": total / y.size,
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "examples": int(y.size),
            "f1": report["f1"],
            "precision": report["precision"],
            "recall": report["recall"],
            "class_accuracy": dict(report["recall"]),
            "support": report["support"],
            "confusion": report["confusion"],
            "balance": self.balance,
        }

    def format_metrics(self, metrics: dict[str, Any]) -> str:
        parts = [
            f"{k} {metrics[k]:.4f}"
            for k in ("accuracy", "macro_f1", "loss")
            if isinstance(metrics.get(k), (int, float))
        ]
        f1 = metrics.get("f1")
        if isinstance(f1, dict) and len(f1) <= 6:
            parts.append("f1 " + " ".join(f"{lab}={v:.3f}" for lab, v in f1.items()))
        return "  ".join(parts)

    def write_report(self, model: nn.Module, split: str, run_dir: Path) -> tuple[dict[str, Any], Path]:
        """Evaluate ``split`` and draw its confusion matrix into ``run_dir/confusion_<split>.png``."""
        metrics = self.evaluate(model, split)
        png = Path(run_dir) / f"confusion_{split}.png"
        title = f"{self.config.recipe} {split}: accuracy {metrics['accuracy']:.2%}, macro F1 {metrics['macro_f1']:.3f}"
        plot_confusion(metrics["confusion"]["matrix"], metrics["confusion"]["labels"], png, title)
        return metrics, png

    # -- prediction -------------------------------------------------------------------------------
    @torch.inference_mode()
    def classify(self, model: nn.Module, inputs: list[str]) -> list[dict[str, Any]]:
        """Label, its probability and every class's probability for each input."""
        assert self.labels is not None
        model.eval()
        out: list[dict[str, Any]] = []
        bs = self.eval_batch_size
        for i in range(0, len(inputs), bs):
            chunk = inputs[i : i + bs]
            x, lengths = self.encode_inputs(chunk)
            probs = torch.softmax(model(x, lengths).float(), dim=-1).cpu()
            for text, p in zip(chunk, probs):
                k = int(p.argmax())
                out.append(
                    {
                        **({"text": text} if isinstance(text, str) else {}),  # numbers (sequences): no text to echo
                        "label": self.labels[k],
                        "probability": float(p[k]),
                        "probabilities": {lab: float(v) for lab, v in zip(self.labels, p)},
                    }
                )
        return out

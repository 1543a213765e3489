"""The interface every task implements, so one trainer, tuner and server drive them all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnkit.config import RunConfig
from rnnkit.errors import UserError


class Task(ABC):
    """Data + model + loss + metrics + decoding for one kind of problem.

    The trainer calls, in order: ``prepare()`` (read data, build vocabularies), ``build_model()``, then per epoch
    ``begin_epoch()`` and ``train_step()`` over ``train_batches()``, and ``evaluate()`` on held-out splits.
    Everything needed to use a trained model without its training data (vocabulary, label names, scalers) is
    returned by ``artifacts()`` and stored in every checkpoint; it must be plain data (lists, dicts, numbers,
    strings, tensors) so checkpoints load with ``weights_only=True``.
    """

    name: ClassVar[str]
    DataConfig: ClassVar[type]
    ModelConfig: ClassVar[type]
    metric: ClassVar[str] = "loss"  # selects best.pt, drives early stopping, plateau schedules and the tuner
    higher_is_better: ClassVar[bool] = False
    count_unit: ClassVar[str] = "tokens"  # what train_step's count measures (shown as <unit>/s)

    def __init__(self, config: RunConfig, data_dir: Path | None, device: torch.device) -> None:
        self.config = config
        # an explicit --data-dir, or None: files come from the data cache (rnnkit.datasets.resolve)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.device = device

    # -- data -------------------------------------------------------------------------------------
    @abstractmethod
    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        """Read the named splits. With artifacts already loaded (inference, resume) reuse their vocabulary."""

    def artifacts(self) -> dict[str, Any]:
        return {}

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        """Adopt a checkpoint's artifacts (before ``prepare`` at inference time)."""

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        """On resume: raise UserError if the data now gives different artifacts (e.g. another vocabulary)."""

    # -- model and training -----------------------------------------------------------------------
    @abstractmethod
    def build_model(self) -> nn.Module: ...

    @abstractmethod
    def num_train_batches(self, epoch: int) -> int: ...

    @abstractmethod
    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Any]:
        """Batches of one epoch from index ``start``; the order depends only on (train.seed, epoch)."""

    def begin_epoch(self, model: nn.Module, epoch: int) -> None:
        """Reset per-epoch state (an LM's carried hidden state)."""

    @abstractmethod
    def train_step(self, model: nn.Module, batch: Any) -> tuple[Tensor, ...]:
        """Forward one batch in training mode; return (mean loss to backpropagate, count of units trained).

        A third element, when present, is the loss to log instead of the first (e.g. the plain NLL when the
        objective adds regularisers such as AR/TAR), so perplexities stay honest.
        """

    def lr_factor(self, batch: Any) -> float:
        """Scale of the learning rate for this batch (an LM with variable BPTT lengths scales by length / bptt)."""
        return 1.0

    def shard(self, rank: int, world: int) -> None:
        """Distributed training: restrict training data to this rank's share (called before ``prepare``).

        A task supports data-parallel training by overriding this so that the ranks' shares, averaged, give
        the single-process gradient of the global batch; the default refuses.
        """
        if world > 1:
            raise UserError(f"task {self.name!r} does not support distributed training yet (--nproc 1)")

    def loss_scale(self) -> float:
        """Factor applied to the mean loss before backpropagation (the logged loss stays the mean).

        Lets a recipe reproduce set-ups whose objective is a sum rather than a mean (Zaremba et al. sum the
        per-step losses over time), without changing how losses and perplexities are reported.
        """
        return 1.0

    def loop_state(self) -> dict[str, Any]:
        """State carried between batches (an LM's hidden state) that exact resume must restore."""
        return {}

    def load_loop_state(self, state: dict[str, Any]) -> None:
        pass

    # -- evaluation -------------------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Metrics over a whole split (always including ``loss`` and ``self.metric``)."""

    def splits(self) -> tuple[str, ...]:
        return ("valid", "test")

    def describe_loss(self, loss: float) -> dict[str, float]:
        """Extra figures derived from a mean training loss, for progress bars (an LM shows perplexity)."""
        return {}

    def format_metrics(self, metrics: dict[str, float]) -> str:
        keys = [self.metric] + [k for k in metrics if k not in (self.metric, "loss")][:3]
        return " ".join(f"{k} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))

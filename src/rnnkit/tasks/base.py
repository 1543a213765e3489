"""The interface every task implements, so one trainer, tuner and server drive them all."""

from __future__ import annotations

import os
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn

from rnnkit.cells import select
from rnnkit.config import RunConfig
from rnnkit.errors import UserError, is_file
from rnnkit.ops.device import allocation_guard
from rnnkit.tasks.auto import Choices

D = TypeVar("D")  # the task's [data] dataclass
M = TypeVar("M")  # the task's [model] dataclass

# What a trained run can answer (rnnkit.predict, the CLI verbs and the server's /v1/<service> routes).
SERVICES = ("generate", "translate", "chat", "classify", "forecast")
# The folder of a run directory that in-memory data is written into (Task.write_data), and its config paths' prefix
MEMORY_DIR = "data"


class Task(ABC, Generic[D, M]):
    """Data + model + loss + metrics + decoding for one kind of problem.

    A task is declared as ``class MyTask(Task[MyData, MyModel])``: the two dataclasses become ``DataConfig`` and
    ``ModelConfig`` (the recipe's [data] and [model] sections) and ``self.dcfg`` / ``self.mcfg`` are typed.

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
    services: ClassVar[tuple[str, ...]] = ()  # of SERVICES: what a trained run answers (methods it implements)
    loss_terms: ClassVar[frozenset[str]] = frozenset()  # [optim] loss terms the objective uses (e.g. ar, tar)
    default_eval_batch_size: ClassVar[int] = 256  # train.eval_batch_size = 0 means this

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = typing.get_args(base)
            if len(args) == 2 and all(isinstance(a, type) for a in args):
                cls.DataConfig, cls.ModelConfig = args  # type: ignore[misc]
        unknown = set(cls.services) - set(SERVICES)
        if unknown:
            raise TypeError(f"{cls.__name__}.services: unknown service(s) {sorted(unknown)}; known: {SERVICES}")

    def __init__(self, config: RunConfig[D, M], data_dir: Path | None, device: torch.device) -> None:
        self.config = config
        # an explicit --data-dir, or None: files come from the data cache (rnnkit.datasets.resolve)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.device = device
        # the values prepare() chose from the data for keys the user left unset (rnnkit.tasks.auto): the run
        # set-up prints them once and records them (config.toml holds the values, run.json's "chosen" why)
        self.choices = Choices(config)
        # the fast backend's implementation policy, resolved once for the run (train.recurrence, or the
        # environment's override) and attached to every model this task builds
        self.recurrence = select.resolve(config.train.recurrence)

    @property
    def dcfg(self) -> D:
        return self.config.data

    @property
    def mcfg(self) -> M:
        return self.config.model

    @property
    def eval_batch_size(self) -> int:
        return self.config.train.eval_batch_size or self.default_eval_batch_size

    @classmethod
    def check_config(cls, config: RunConfig[D, M]) -> None:
        """Rules between keys that the declarations cannot say (raise ``rnnkit.config.ConfigError(key, why)``).

        Called when a configuration is resolved, before any data is read, so a bad combination fails at once.
        """

    # -- data -------------------------------------------------------------------------------------
    @abstractmethod
    def prepare(self, splits: tuple[str, ...] = ("train", "valid", "test")) -> None:
        """Read the named splits. With artifacts already loaded (inference, resume) reuse their vocabulary."""

    @classmethod
    def write_data(cls, data: Any, folder: Path, config: RunConfig[D, M]) -> dict[str, Any]:
        """Write in-memory ``data`` (``rnnkit.train(..., data=...)``) into ``folder`` (``RUN/data``) in this task's
        own file format and return the ``[data]`` overrides that point the configuration at those files (paths
        ``data/NAME``: a run with materialised data reads its data.* paths from its own directory). ``config`` is
        the run's configuration before the overrides (the user's settings, e.g. held-out fractions, stay).

        Why files: resume, evaluation and serving must work long after the Python objects are gone. The readers
        that check every file then check these too. A task that takes no in-memory data keeps this default."""
        raise UserError(
            f"task {cls.name!r} reads its data from files only (data.* settings); in-memory data "
            f"(data=...) is taken by text-classify, sequence-classify, forecast, seq2seq and lm"
        )

    @classmethod
    def write_test_data(cls, data: Any, folder: Path, config: RunConfig[D, M]) -> dict[str, Any]:
        """Write an in-memory test split (``rnnkit.train(..., test_data=...)``) beside ``write_data``'s files and
        return the ``[data]`` overrides that make it the test split. A task without a test file of its own refuses."""
        raise UserError(f"task {cls.name!r} takes no test_data=; it holds out a test share of data= itself")

    def artifacts(self) -> dict[str, Any]:
        return {}

    def load_artifacts(self, artifacts: dict[str, Any]) -> None:
        """Adopt a checkpoint's artifacts (before ``prepare`` at inference time)."""

    def check_artifacts(self, saved: dict[str, Any]) -> None:
        """On resume: raise UserError if the data now gives different artifacts (e.g. another vocabulary)."""

    def placeholder_artifacts(self) -> dict[str, Any] | None:
        """Artifacts of a plausible shape (a few placeholder words, two labels...) so that ``build_model`` runs
        without reading data: ``rnnkit train --check`` builds the model from them. None: the task cannot."""
        return None

    # -- model and training -----------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        """The task's model for its configuration and artifacts.

        The model's own argument checks (ValueError) and allocation failures (sizes too large for memory) become
        one-line UserErrors here, so no task has to repeat that.
        """
        with allocation_guard(self.model_summary()):
            try:
                model = self.make_model()
            except ValueError as e:
                raise UserError(f"model: {e}") from None
        select.attach(model, self.recurrence)
        return model

    @abstractmethod
    def make_model(self) -> nn.Module:
        """Build the model (called by ``build_model``)."""

    def model_summary(self) -> str:
        """The sizes that decide a model's memory, for error messages: ``model.hidden=..., model.layers=...``."""
        m = self.config.model
        keys = [k for k in ("embedding", "hidden", "layers", "attention_size") if hasattr(m, k)]
        return ", ".join(f"model.{k}={getattr(m, k)}" for k in keys)

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
            raise UserError(
                f"task {self.name!r} does not support distributed training yet; train in one process (nproc=... 1)"
            )

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

    # -- new data ---------------------------------------------------------------------------------
    def evaluate_data(self, model: nn.Module, data: Any, folder: Path) -> dict[str, Any]:
        """``evaluate``'s metrics on new labelled data, preprocessed with the run's artifacts (vocabulary, labels,
        scalers: loaded before this is called, on a task of its own so the run's splits stay as they were).

        ``data`` is a path (``os.PathLike``) to a file in the task's own format, or in-memory data in any form
        ``write_data`` takes (what ``rnnkit.train(data=...)`` takes); ``folder`` is a scratch directory for it.
        ``Run.evaluate(data=...)`` and ``rnnkit eval RUN --data FILE`` call it. A task that reads in-memory data
        implements it (``data_file`` turns both forms into a file); the default says the task cannot."""
        raise UserError(f"task {self.name!r} cannot score new data yet; evaluate the run's own splits (valid, test)")

    def data_file(self, data: Any, folder: Path, name: str) -> Path:
        """``data`` as one file of the task's format: a path as given (checked), or in-memory data written by
        ``write_data`` into ``folder`` (``name``: the file it writes there)."""
        if isinstance(data, os.PathLike):
            path = Path(data)
            if not is_file(path, "data"):
                raise UserError(f"data: file not found: {path}")
            return path
        type(self).write_data(data, folder, self.config)
        return folder / name

    def describe_loss(self, loss: float) -> dict[str, float]:
        """Extra figures derived from a mean training loss, for progress bars (an LM shows perplexity)."""
        return {}

    def format_metrics(self, metrics: dict[str, float]) -> str:
        keys = [self.metric] + [k for k in metrics if k not in (self.metric, "loss")][:3]
        return " ".join(f"{k} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))

    def summary_note(self) -> str | None:
        """One line for the end of training, after the final evaluation (a forecaster losing to a baseline), or
        None: kept in the summary as ``note`` and printed by ``rnnkit train``."""
        return None

    # -- serving ----------------------------------------------------------------------------------
    def served(self) -> tuple[str, ...]:
        """What a run is *for*: the services a server offers it under (default: all it can do)."""
        return self.services

    def describe(self) -> dict[str, Any]:
        """Plain facts a client needs to form requests (labels, input format, horizon, decoding defaults);
        the server's model listing and `rnnkit.predict.describe` show them."""
        return {}

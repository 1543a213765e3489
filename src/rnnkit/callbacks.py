"""Callbacks: code of yours that sees every record of a training run and may stop it.

A callback is any callable taking one record - the dict written to ``metrics.jsonl``:

* a training window: ``{"step", "epoch", "loss", "lr", "tokens_per_s", ...}`` every ``train.log_every`` steps;
* a validation: ``{"split": "valid", "step", "epoch", "loss", <the task's metrics>}`` (at each epoch end, every
  ``train.eval_every`` steps, and when a budget stops the run mid-epoch), handed over once ``best.pt`` is up to
  date;
* the final test evaluation: ``{"split": "test", ...}``.

Returning ``True`` stops training cleanly, exactly like a ``max_steps`` stop: the step finishes, the model is
validated (unless it just was) and ``last.pt`` is saved; the summary's ``stopped`` is ``"callback"`` and the run
resumes from there like any other. Anything else (None, False) lets it go on. A callback that raises stops the run
too, without losing work: the step it saw is finished and saved to ``last.pt`` (no further callback is called),
then the exception is raised - a ``KeyboardInterrupt`` is taken as Ctrl-C (the summary's ``stopped`` is
``"interrupted"``, ``rnnkit train`` exits 130).

State across resume: rnnkit checkpoints its own state, not your callback's. A callback object may define
``on_train_begin(info)``; it is called once before training with ``info`` = {"run", "task", "metric",
"higher_is_better", "step", "epoch", "records"}, where ``records`` are the run's records so far (empty for a new
run; a resumed run's history up to its checkpoint). A stateful callback rebuilds its state from them, and then
decides on a resumed run exactly as it would have in one uninterrupted run. ``EarlyStopping`` does that.

    run = rnnkit.train("sms-spam", callbacks=[rnnkit.callbacks.EarlyStopping(patience=3),
                                              lambda r: print(r["step"], r["loss"])])
"""

from __future__ import annotations

import math
from typing import Any

from rnnkit.errors import UserTypeError, UserValueError

_HIGHER = ("acc", "f1", "bleu", "chrf", "precision", "recall")  # metric names that improve upward


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` validations.

    Args:
        metric: the validation record's key to watch; None = the task's own metric (ppl for a language model,
            macro_f1 for a classifier, rmse for a forecaster, bleu_greedy for seq2seq).
        patience: validations without an improvement before stopping (>= 1).
        min_delta: an improvement must beat the best by more than this (in the metric's units).
        mode: "min", "max", or "auto": the task's direction for its own metric; otherwise "max" for accuracy,
            F1, BLEU, chrF, precision and recall, "min" for anything else (loss, ppl, rmse ...).

    Its state (``best``, ``best_step``, ``wait``, ``stopped_step``) is rebuilt from the run's validation records
    when a run resumes (``on_train_begin``), so a resumed run stops where an uninterrupted one would have. It counts
    every validation record, ``train.eval_every`` ones included.

    This is rnnkit's one early-stopping mechanism: ``train.early_stop = N`` in a recipe (or ``--set``) is this
    callback on the task's metric with ``patience=N``, run by the trainer itself (the summary then says
    ``stopped: "early_stop"``, and a resume with nothing left to do says so); pass one yourself to watch another
    metric or set ``min_delta``. Either way ``best.pt`` keeps the best validated model.
    """

    def __init__(
        self, metric: str | None = None, patience: int = 5, min_delta: float = 0.0, mode: str = "auto"
    ) -> None:
        call = "EarlyStopping"  # a bad argument: a UserTypeError / UserValueError naming it, as the API's are
        if metric is not None and not isinstance(metric, str):
            raise UserTypeError("metric", f"must be a str or None, got {type(metric).__name__}", call)
        if not isinstance(patience, int) or isinstance(patience, bool):
            raise UserTypeError("patience", f"must be an int, got {type(patience).__name__} ({patience!r})", call)
        if patience < 1:
            raise UserValueError("patience", f"must be >= 1, got {patience!r}", call)
        if not isinstance(min_delta, (int, float)) or isinstance(min_delta, bool):
            raise UserTypeError("min_delta", f"must be a number, got {type(min_delta).__name__}", call)
        if not math.isfinite(min_delta) or min_delta < 0:
            raise UserValueError("min_delta", f"must be a finite number >= 0, got {min_delta!r}", call)
        if mode not in ("auto", "min", "max"):
            raise UserValueError("mode", f"must be 'auto', 'min' or 'max', got {mode!r}", call)
        self.metric, self.patience, self.min_delta, self.mode = metric, patience, float(min_delta), mode
        self._higher: bool | None = None if mode == "auto" else mode == "max"
        self.best: float | None = None
        self.best_step: int | None = None
        self.wait = 0
        self.stopped_step: int | None = None

    def on_train_begin(self, info: dict[str, Any]) -> None:
        """Learn the task's metric and direction, and replay a resumed run's validations."""
        if self.metric is None:
            self.metric = str(info["metric"])
        if self._higher is None:
            self._higher = (
                bool(info["higher_is_better"])
                if self.metric == info.get("metric")
                else any(h in self.metric.lower() for h in _HIGHER)
            )
        self.best, self.best_step, self.wait, self.stopped_step = None, None, 0, None
        for record in info.get("records", ()):
            self._see(record)

    def _see(self, record: dict[str, Any]) -> bool:
        if record.get("split") != "valid":
            return False
        if self.metric is None:
            self.metric = "loss"
        if self._higher is None:
            self._higher = any(h in self.metric.lower() for h in _HIGHER)
        value = record.get(self.metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            improved = False
        elif self.best is None:
            improved = True
        else:
            improved = value > self.best + self.min_delta if self._higher else value < self.best - self.min_delta
        if improved:
            self.best, self.best_step, self.wait = float(value), int(record.get("step", 0)), 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_step = int(record.get("step", 0))
            return True
        return False

    def __call__(self, record: dict[str, Any]) -> bool:
        return self._see(record)

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(metric={self.metric!r}, patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r})"
        )


__all__ = ["EarlyStopping"]

"""The training loop shared by every task.

Exact resume is the design constraint: everything that influences the next loss is either derived from
(seed, epoch, batch index) or stored in ``last.pt`` - model, optimiser, schedule, the RNG states (dropout), the
task's carried state (an LM's hidden state), the position in the epoch and the logging accumulators. Resuming
after a kill -9 therefore reproduces the losses of an uninterrupted run bit for bit.

``best.pt`` is never made worse, whatever stopped the run and however often it resumes: every checkpoint records
the best validation metric and the step of the model in ``best.pt`` (``loop.best``, ``loop.best_step``, and
``best`` for readers), a stop by a budget validates *before* the final ``last.pt``, so the resumed run knows that
best, and ``best.pt`` is replaced only by a strictly better validated model. On resume the trainer also reads
``best.pt`` itself: it may be newer than ``last.pt`` (a kill between the two saves) or from a version that saved
``last.pt`` first, and it is then the bar to beat. Validation leaves the random streams as it found them, so
when and how often a run validates never changes its training losses.

Callbacks (``Trainer(callbacks=[...])``, see rnnkit.callbacks) see every record as it is written to
metrics.jsonl - each training window and each validation - and stop the run cleanly by returning True: the loop
finishes the step, validates (unless it just did) and saves ``last.pt``, exactly as a ``--max-steps`` stop does
(stop reason ``callback``), so the run resumes from there like any other. Records are written (and callbacks
called) by rank 0 alone; under data-parallel training rank 0's decision reaches every rank with the other stop
flags. A callback with an ``on_train_begin(info)`` method is told about the run first, including the records a
resumed run already has, so a stateful callback (early stopping) decides as it would have in one uninterrupted run.

The same loop runs mixed precision (``train.precision``: autocast around the forward pass, a GradScaler for
fp16, see precision.py) and data-parallel training (``dist``: every rank runs this loop on its shard; rank 0
alone writes files; the few collectives happen at the same steps on every rank, see rnnkit.distributed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.callbacks import EarlyStopping
from rnnkit.config import RunConfig
from rnnkit.distributed import SINGLE, DistContext
from rnnkit.errors import TrainingDiverged, UserError
from rnnkit.seeds import Purpose, derive_seed
from rnnkit.tasks.base import Task
from rnnkit.train.checkpoint import FORMAT, check_task, load_checkpoint, load_weights, save_atomic
from rnnkit.train.optim import Schedule, build_optimizer, set_lr
from rnnkit.train.plots import plot_curves
from rnnkit.train.precision import Precision
from rnnkit.train.progress import Progress
from rnnkit.train.rundir import RunDir
from rnnkit.version import __version__


@dataclass
class LoopState:
    step: int = 0  # optimiser steps done, across resumes
    epoch: int = 0  # current epoch (0-based)
    batch: int = 0  # next batch index within the epoch
    best: float | None = None  # best validation metric so far: the metric of the model in best.pt
    best_step: int | None = None  # the step at which that model was validated (and best.pt written)
    elapsed: float = 0.0  # training seconds, across resumes
    finished: bool = False
    # logging window, kept so a resumed run logs the same averages as an uninterrupted one
    acc_loss: Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    acc_steps: int = 0
    acc_count: int = 0


@dataclass
class _FitPass:
    """What one ``fit`` call tracks besides the checkpointed LoopState: its clock, counts, the current learning rate
    and log window, the last validation, and why it stops."""

    t_start: float
    params: list[Tensor]  # the trained parameters (clipped together)
    stop_reason: str = ""
    interrupted: bool = False
    valid_metrics: dict[str, float] = field(default_factory=dict)
    total_count: int = 0  # units trained in this call (this rank)
    lr: float = 0.0
    t_window: float = 0.0
    scaled_lr: bool = False  # the last batch's lr was scaled (variable BPTT)
    n_batches: int = 0  # of the current epoch
    callback_failed: bool = False  # a callback raised (on rank 0; every rank knows): stop without validating


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    # .cpu(): a checkpoint loaded with map_location=cuda moves these byte tensors too; RNG states live on the CPU
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


class Trainer:
    def __init__(
        self,
        task: Task,
        config: RunConfig,
        run: RunDir,
        device: torch.device,
        progress: Progress | None = None,
        echo: bool = True,
        callbacks: Sequence[Callable[[dict[str, Any]], Any]] = (),
        dist: DistContext | None = None,
    ) -> None:
        self.task, self.config, self.run, self.device = task, config, run, device
        self.dist = dist or SINGLE
        # called with every record written to metrics.jsonl (a validation's once best.pt is up to date); True
        # stops the run cleanly (stop reason "callback"); an exception (the tuner's optuna.TrialPruned) aborts it
        self.callbacks = list(callbacks)
        self._callback_stop = False
        self._early_stop = False  # train.early_stop's patience ran out at the last validation
        # an exception a callback raised: kept until the step ends, where the loop stops as a max_steps stop does
        # (last.pt saved, so no work is lost), then raised (a KeyboardInterrupt: a Ctrl-C stop, exit status 130)
        self._callback_error: BaseException | None = None
        # train.early_stop: rnnkit.callbacks.EarlyStopping on the task's metric, the one early-stopping mechanism; fed
        # each validation on every rank (the figures are rank 0's, broadcast), rebuilt from the records on resume.
        # Made in setup, after the task's prepare(): a task may choose train.early_stop from its data.
        self.early_stopping: EarlyStopping | None = None
        self.progress = progress or Progress(enabled=False)
        self.echo = echo
        self.state = LoopState()
        self.notes: list[str] = []  # things the user should hear about (a stale lock taken over, nothing to do)
        self._disk_best: tuple[float, int] | None = None  # best.pt's (metric, step) when it is the bar to beat
        self._validated_step = -1
        self.tb: Any = None
        self.model: nn.Module
        self.train_model: nn.Module  # the model, or its DistributedDataParallel wrapper
        self.optimizer: torch.optim.Optimizer
        self.schedule: Schedule
        self.precision: Precision

    # -- set-up -----------------------------------------------------------------------------------
    def setup(self, resume: bool) -> None:
        """Take the run directory's lock (rank 0), build task, model and optimiser, and restore ``last.pt`` when
        resuming. The lock is held until ``fit`` returns or ``close`` is called."""
        self._lock_run()
        try:
            self._setup(resume)
        except BaseException:
            self.close()
            raise

    def _lock_run(self) -> None:
        if self.dist.is_main and not self.run.locked:
            note = self.run.lock()
            if note:
                self.notes.append(note)

    def wrap_up(self) -> None:
        """After ``fit`` ended by an exception (a pruned trial, divergence, a callback's error): close the event
        files and draw the curves of what was recorded, as a normal end would. Never raises."""
        if self.tb is not None:
            with contextlib.suppress(Exception):
                self.tb.close()
            self.tb = None
        with contextlib.suppress(Exception):
            if self.dist.is_main and self.run.metrics_file.is_file():
                self._plot()

    def close(self) -> None:
        """Release the run directory (idempotent)."""
        while self.run.locked:
            self.run.unlock()

    def _setup(self, resume: bool) -> None:
        cfg = self.config
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True)
        seed_everything(cfg.train.seed)
        if self.dist.enabled:
            self.task.shard(self.dist.rank, self.dist.world)
        ckpt = load_checkpoint(self.run.last, self.device) if resume else None
        if ckpt is not None:
            check_task(ckpt, self.task.name, self.run.last)
        self.task.prepare()  # rebuilt from the data, then compared with the checkpoint's artifacts
        if ckpt is not None:
            self.task.check_artifacts(ckpt["artifacts"])
        early = cfg.train.early_stop  # as the task's prepare() may have chosen it
        self.early_stopping = EarlyStopping(patience=early) if early else None
        self.model = self.task.build_model().to(self.device)
        self.optimizer = build_optimizer(cfg.optim, self.model)
        self.schedule = Schedule(cfg.optim, cfg.train.max_epochs)
        self.precision = Precision(cfg.train.precision, self.device, self.task.recurrence)
        if self.dist.rank > 0:  # same initial weights (built above from the seed), own dropout masks
            self._seed_rank(0)
        if ckpt is not None:
            self._restore(ckpt)
            self._read_best_on_disk()
        self.train_model = self.dist.wrap(self.model, self.device)
        self._begin_callbacks()

    def _begin_callbacks(self) -> None:
        """Tell callbacks that want to know (``on_train_begin``) about the run, and what it has done so far; the
        early stopping of ``train.early_stop`` rebuilds its count from the records on every rank."""
        hooks = [cb.on_train_begin for cb in self.callbacks if callable(getattr(cb, "on_train_begin", None))]
        if not hooks and self.early_stopping is None:
            return
        s = self.state
        records = self.run.read_metrics() if s.step and self.dist.is_main else []
        if self.early_stopping is not None and self.dist.enabled:
            records = self.dist.broadcast_object(records)
        info = {
            "run": str(self.run.path),
            "task": self.task.name,
            "metric": self.task.metric,
            "higher_is_better": self.task.higher_is_better,
            "step": s.step,
            "epoch": s.epoch,
            "records": records,
        }
        if self.early_stopping is not None:
            self.early_stopping.on_train_begin(info)
        if self.dist.is_main:
            for hook in hooks:
                hook(info)

    def _seed_rank(self, step: int) -> None:
        """Ranks > 0 draw their own random numbers (dropout masks); rank 0 keeps the single-process stream."""
        seed = derive_seed(self.config.train.seed, self.dist.rank, step, purpose=Purpose.RANK)
        random.seed(seed)
        torch.manual_seed(seed)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        load_weights(
            self.model,
            ckpt["model"],
            self.run.last,
            self.run.config_file,
            "resume without changing model.* (and config.toml as it was written)",
        )
        if hasattr(self.model, "rnn") and hasattr(self.model.rnn, "flatten_parameters"):
            self.model.rnn.flatten_parameters()
        try:
            self._restore_state(ckpt)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:  # plain data someone changed
            raise UserError(
                f"{self.run.last}: cannot restore the training state ({type(e).__name__}: "
                f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else '?'}); the checkpoint was changed "
                f"after rnnkit wrote it, or the optimiser settings (optim.*) were"
            ) from None
        if self.dist.is_main:
            self.run.truncate_metrics(self.state.step)

    def _restore_state(self, ckpt: dict[str, Any]) -> None:
        """Optimiser, schedule, loop position, random streams and the task's carried state from ``ckpt``."""
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.precision.load_state_dict(ckpt.get("scaler", {}))
        loop = dict(ckpt["loop"])
        loop.pop("evals_since_best", None)  # kept by rnnkit before 0.2; early stopping counts from the records now
        loop["acc_loss"] = loop["acc_loss"].to(torch.float64)
        if self.dist.enabled:  # the saved window is global: rank 0 carries it, summed back over ranks at the flush
            loop["acc_loss"] = (
                loop["acc_loss"] * self.dist.world if self.dist.is_main else torch.zeros_like(loop["acc_loss"])
            )
            loop["acc_count"] = loop["acc_count"] if self.dist.is_main else 0
        self.state = LoopState(**loop)
        self.state.finished = False
        ranks = ckpt.get("rng_ranks")
        if self.dist.enabled and ranks and len(ranks) == self.dist.world:
            _set_rng_state(ranks[self.dist.rank])  # same number of processes: exact resume
        else:
            _set_rng_state(ckpt["rng"])
            if self.dist.rank > 0:
                self._seed_rank(self.state.step)
        self.task.load_loop_state(ckpt["task_loop"])

    def _read_best_on_disk(self) -> None:
        """Make ``best.pt`` the bar to beat where ``last.pt`` does not know it (see the module docstring)."""
        record = None
        if self.dist.is_main and self.run.best.is_file():
            try:
                best = load_checkpoint(self.run.best, "cpu", mmap=True)
            except UserError as e:
                raise UserError(f"{e}; move it away to resume (the next validation writes a new best.pt)") from None
            check_task(best, self.task.name, self.run.best)
            value = best.get("metrics", {}).get(self.task.metric, best["loop"].get("best"))
            if isinstance(value, (int, float)) and math.isfinite(value):
                record = (float(value), int(best["loop"]["step"]))
        record = self.dist.broadcast_object(record)  # every rank decides "improved" alike
        if record is None:
            return
        s, (value, step) = self.state, record
        if step <= s.step and (s.best is None or self._beats(value, s.best)):
            s.best, s.best_step = value, step  # a last.pt saved before this best.pt was (older versions did)
        elif s.best == value and s.best_step is None:
            s.best_step = step
        if s.best is None or self._beats(value, s.best):
            # newer than last.pt: the replayed steps must beat it to replace it; the loop's own record of its
            # best stays as an uninterrupted run's, so early stopping decides alike
            self._disk_best = record

    # -- checkpoints and records ------------------------------------------------------------------
    def _checkpoint(self, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        """Everything needed to resume; distributed, a collective (call it on every rank, save on rank 0)."""
        if hasattr(self, "_t_start"):
            self._tick()
        loop = dataclasses.asdict(self.state)
        loop["acc_loss"] = loop["acc_loss"].cpu()  # checkpoints hold CPU tensors only
        rng = _rng_state()
        extra: dict[str, Any] = {}
        if self.dist.enabled:  # global state only, so any number of processes can resume it
            acc_loss, acc_count = self.dist.all_reduce_sum([float(self.state.acc_loss), float(self.state.acc_count)])
            loop["acc_loss"] = torch.tensor(acc_loss / self.dist.world, dtype=torch.float64)
            loop["acc_count"] = int(acc_count)
            extra = {"world_size": self.dist.world, "rng_ranks": self.dist.all_gather_object(rng)}
        return {
            "format": FORMAT,
            "rnnkit_version": __version__,
            "task": self.task.name,
            "best": self._best_record(),
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.precision.state_dict(),
            "loop": loop,
            "rng": rng,
            "task_loop": self.task.loop_state(),
            "artifacts": self.task.artifacts(),
            "metrics": metrics or {},
            **extra,
        }

    def _best_record(self) -> dict[str, Any]:
        """The best validation so far and which checkpoint holds it, for readers of any checkpoint (the trainer
        itself reads loop.best and loop.best_step)."""
        value, step = self._disk_best or (self.state.best, self.state.best_step)
        return {
            "metric": self.task.metric,
            "value": value,
            "step": step,
            "checkpoint": self.run.best.name if step is not None else None,
        }

    def save_last(self) -> None:
        # never replace a good checkpoint with weights a diverging step has already ruined
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            self._diverged("the weights became NaN/inf")
        ckpt = self._checkpoint()
        if self.dist.is_main:
            save_atomic(ckpt, self.run.last)

    def _diverged(self, what: str) -> None:
        s = self.state
        where = (
            f"the last good checkpoint is {self.run.last}"
            if self.run.last.is_file()
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged: {what} at step {s.step} (epoch {s.epoch + 1}); {where}; "
            f"lower optim.lr or set optim.clip"
        )

    def _tick(self) -> None:
        self.state.elapsed = self._elapsed0 + time.perf_counter() - self._t_start

    def _log(self, record: dict[str, Any], notify: bool = True) -> None:
        if not self.dist.is_main:
            return
        self.run.append_metrics(record)
        if notify:
            self._notify(record)
        if self.config.train.tensorboard:
            if self.tb is None:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(log_dir=str(self.run.tensorboard))
            prefix = record.get("split", "train")
            for k, v in record.items():
                if k not in ("step", "epoch", "split") and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(f"{prefix}/{k}", v, record.get("step", 0))

    def _notify(self, record: dict[str, Any]) -> None:
        """Hand ``record`` to every callback (rank 0); one returning True asks the loop to stop. One that raises
        stops the run too: the exception is raised once the step is done and last.pt saved (see ``_fit``); no
        callback hears of anything after it."""
        if not self.dist.is_main or self._callback_error is not None:
            return
        for cb in self.callbacks:
            try:
                if cb(dict(record)) is True:
                    self._callback_stop = True
            except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt included: the user wants out, saved
                self._callback_error = e
                self._callback_stop = True
                return

    def _flush_window(self, lr: float, wall: float) -> float | None:
        s = self.state
        if s.acc_steps == 0:
            return None
        acc_loss, acc_count = float(s.acc_loss), s.acc_count
        if self.dist.enabled:  # every rank logs (and checks for divergence on) the global mean
            acc_loss, total = self.dist.all_reduce_sum([acc_loss, float(acc_count)])
            acc_loss, acc_count = acc_loss / self.dist.world, int(total)
        loss = acc_loss / s.acc_steps
        record = {
            "step": s.step,
            "epoch": s.epoch + s.batch / max(self.task.num_train_batches(s.epoch), 1),
            "loss": loss,
            "lr": lr,
            "tokens_per_s": acc_count / max(wall, 1e-9),
        }
        record.update({k: v for k, v in self.task.describe_loss(loss).items()})
        self._log(record)
        s.acc_loss = torch.zeros((), dtype=torch.float64)
        s.acc_steps = s.acc_count = 0
        if not math.isfinite(loss):
            self._diverged(f"loss is {loss}")
        return loss

    def _beats(self, value: float, other: float) -> bool:
        return value > other if self.task.higher_is_better else value < other

    def _better(self, value: float) -> bool:
        """Strictly better than the best so far (a tie or a NaN never replaces best.pt)."""
        best = self.state.best
        if not math.isfinite(value):
            return False
        return best is None or self._beats(value, best)

    def _eval_weights(self) -> contextlib.AbstractContextManager[Any]:
        """The weights to evaluate and keep as best.pt: NT-ASGD's running average once it averages."""
        averaged = getattr(self.optimizer, "averaged", None)
        return averaged() if averaged is not None else contextlib.nullcontext()

    def validate(self) -> tuple[dict[str, float], bool]:
        s = self.state
        rng = _rng_state()
        with self._eval_weights():
            # in fp32 (no autocast), on rank 0 alone; the other ranks take its figures so they decide alike
            metrics = self.task.evaluate(self.model, "valid") if self.dist.is_main else None
            metrics = self.dist.broadcast_object(metrics)
            _set_rng_state(rng)  # validating never shifts the training's random streams
            self._validated_step = s.step
            record = {"split": "valid", "step": s.step, "epoch": s.epoch, **metrics}
            self._log(record, notify=False)  # callbacks hear of it once best.pt is up to date (below)
            value = metrics[self.task.metric]
            improved = self._better(value)  # the loop's own record, as in an uninterrupted run (early stopping)
            if improved:
                s.best, s.best_step = value, s.step
            # best.pt may hold a model at least this good already, saved after the last.pt this run resumed from
            if improved and (self._disk_best is None or self._beats(value, self._disk_best[0])):
                self._disk_best = None
                ckpt = self._checkpoint(metrics)
                if self.dist.is_main:
                    save_atomic(ckpt, self.run.best)
        self._notify(record)
        if self.early_stopping is not None and self.early_stopping(record):  # every rank: the same figures
            self._early_stop = True
        return metrics, improved

    # -- the loop ---------------------------------------------------------------------------------
    def nothing_to_do(self) -> tuple[str, str] | None:
        """(stop reason, message) when the run has already reached its budget, so that fit() must not take a
        single step (a resume with --max-steps at or below the run's step, all epochs done, stopped early)."""
        cfg, s = self.config.train, self.state
        if cfg.max_steps and s.step >= cfg.max_steps:
            return "max_steps", (
                f"{self.run.path} is at step {s.step} and train.max_steps (max_steps=...) is "
                f"{cfg.max_steps}: nothing to train; raise it to train on"
            )
        if s.epoch >= cfg.max_epochs:
            return "max_epochs", (
                f"{self.run.path} has trained all {s.epoch} epochs of train.max_epochs "
                f"(max_epochs=...) = {cfg.max_epochs}: nothing to train; raise it to train on"
            )
        early = self.early_stopping
        if early is not None and early.wait >= early.patience:
            n = early.wait
            return "early_stop", (
                f"{self.run.path} stopped early ({n} validation{'s' if n != 1 else ''} without "
                f"improvement, train.early_stop = {cfg.early_stop}): nothing to train; raise "
                f"train.early_stop to train on"
            )
        return None

    def fit(self) -> dict[str, Any]:
        """Train until a budget (steps, time, epochs), early stopping or Ctrl-C stops it; returns the summary.
        Releases the run directory when it returns."""
        self._lock_run()
        try:
            idle = self.nothing_to_do()
            if idle is not None:
                return self._idle_summary(*idle)
            return self._fit()
        finally:
            self.close()

    def _idle_summary(self, reason: str, note: str) -> dict[str, Any]:
        """What a run that had nothing left to do reports: its best validation and the test figures already
        measured, read back without evaluating or writing anything."""
        s = self.state
        self.notes.append(note)
        summary: dict[str, Any] = {
            "run": str(self.run.path),
            "stopped": reason,
            "step": s.step,
            "epoch": s.epoch,
            "wall_s": 0.0,
            f"{self.task.count_unit}_per_s": 0.0,
            "valid": {},
            "note": note,
        }
        if self.dist.is_main and self.run.best.is_file():
            best = load_checkpoint(self.run.best, "cpu", mmap=True)
            summary["valid_best"] = best.get("metrics", {})
            tests = [
                r for r in self.run.read_metrics() if r.get("split") == "test" and r.get("step") == best["loop"]["step"]
            ]
            if tests:
                summary["test"] = {k: v for k, v in tests[-1].items() if k not in ("split", "step", "epoch")}
        return summary

    def _fit(self) -> dict[str, Any]:
        """The training proper, in steps: epochs of optimiser steps until a stop (``_epoch``, ``_step``), the work
        of a stop mid-epoch saved (``_stop_mid_epoch``), then the summary (``_summary``)."""
        cfg, s = self.config.train, self.state
        self._t_start = time.perf_counter()
        self._elapsed0 = s.elapsed
        fit = _FitPass(t_start=self._t_start, params=[p for p in self.model.parameters() if p.requires_grad])
        with self._signals(fit):
            while s.epoch < cfg.max_epochs and not fit.stop_reason:
                self._epoch(fit)
            if not fit.stop_reason:
                fit.stop_reason = "max_epochs"
            if fit.stop_reason in ("max_steps", "max_time", "interrupted", "callback", "early_stop") and s.batch > 0:
                self._stop_mid_epoch(fit)
            if fit.interrupted or isinstance(self._callback_error, KeyboardInterrupt):  # all is saved: stop now
                fit.stop_reason = "interrupted"
            s.finished = fit.stop_reason in ("max_epochs", "early_stop")
        if self._callback_error is not None and not isinstance(self._callback_error, KeyboardInterrupt):
            raise self._callback_error  # last.pt holds the work up to here: the run resumes from it
        return self._summary(fit)

    @contextlib.contextmanager
    def _signals(self, fit: _FitPass) -> Iterator[None]:
        """Ctrl-C (and torchrun's SIGTERM) finish the step, save and stop (``fit.interrupted``); a second Ctrl-C
        aborts at once. The handlers are the process's while training, then restored."""

        def on_sigint(signum: int, frame: Any) -> None:
            if fit.interrupted:
                raise KeyboardInterrupt
            fit.interrupted = True

        def on_sigterm(signum: int, frame: Any) -> None:
            fit.interrupted = True

        old_int = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
        old_term = signal.signal(signal.SIGTERM, on_sigterm) if _main_thread() and self.dist.enabled else None
        try:
            yield
        finally:
            self.progress.close()
            if old_int is not None:
                signal.signal(signal.SIGINT, old_int)
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)

    def _epoch(self, fit: _FitPass) -> None:
        """The rest of the current epoch: its batches until it ends or a stop, then (if it ended) the epoch's
        validation, the schedule's and early stopping's decisions, and last.pt."""
        s, task = self.state, self.task
        fit.n_batches = task.num_train_batches(s.epoch)
        if s.batch == 0:
            task.begin_epoch(self.model, s.epoch)
        fit.lr = self.schedule.lr(s.epoch, s.step)
        set_lr(self.optimizer, fit.lr)
        self.progress.start_epoch(s.epoch, fit.n_batches, s.batch)
        self.model.train()
        fit.t_window = time.perf_counter()
        fit.scaled_lr = False
        for batch in task.train_batches(s.epoch, s.batch):
            self._step(fit, batch)
            fit.stop_reason = self._stop_reason(fit)
            if fit.stop_reason:
                break
        self.progress.close()
        if s.batch < fit.n_batches:  # stopped mid-epoch
            return
        self._flush_window(fit.lr, time.perf_counter() - fit.t_window)
        fit.valid_metrics, _ = self.validate()
        self.schedule.observe(fit.valid_metrics[task.metric], task.higher_is_better)
        observe = getattr(self.optimizer, "observe", None)  # NT-ASGD's averaging trigger
        switched = observe is not None and observe(fit.valid_metrics[task.metric], task.higher_is_better)
        if switched and self.echo and self.dist.is_main:
            self.progress.write(f"epoch {s.epoch + 1}: validation stalled, averaging weights (ASGD)")
        s.epoch += 1
        s.batch = 0
        self._echo_epoch(fit.valid_metrics, fit.lr, fit.total_count, time.perf_counter() - fit.t_start)
        if self._early_stop:
            fit.stop_reason = "early_stop"
        elif self.dist.stop_flags([self._callback_stop], [])[0][0]:  # the epoch's validation
            fit.stop_reason = "callback"
        self._tick()
        self.save_last()
        self._plot()

    def _step(self, fit: _FitPass, batch: Any) -> None:
        """One optimiser step on ``batch``, with what falls due after it: a log window, a checkpoint, a
        validation."""
        cfg, s, task = self.config.train, self.state, self.task
        warmup = self.config.optim.warmup_steps
        if warmup and s.step < warmup:
            fit.lr = self.schedule.lr(s.epoch, s.step)
            set_lr(self.optimizer, fit.lr)
        factor = task.lr_factor(batch)  # variable BPTT: lr x length / bptt
        if factor != 1.0 or fit.scaled_lr:
            set_lr(self.optimizer, fit.lr * factor)
            fit.scaled_lr = factor != 1.0
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            out = task.train_step(self.train_model, batch)
        loss, count = out[0], out[1]
        scale = task.loss_scale()
        self.precision.backward(loss * scale if scale != 1.0 else loss)
        self.precision.step(self.optimizer, fit.params, self.config.optim.clip)
        s.step += 1
        s.batch += 1
        # summed where the loss lives (a 0-dim CPU start adds to a CUDA loss): no host sync per step, only when a
        # window is logged or checkpointed
        s.acc_loss = s.acc_loss + (out[2] if len(out) > 2 else loss).detach().double()
        s.acc_steps += 1
        s.acc_count += count
        fit.total_count += count
        if s.step % cfg.log_every == 0:
            now = time.perf_counter()
            shown = self._flush_window(fit.lr, now - fit.t_window)
            fit.t_window = now
            if shown is not None:
                self.progress.update(
                    0, loss=f"{shown:.3f}", **{k: f"{v:.1f}" for k, v in task.describe_loss(shown).items()}
                )
        self.progress.update(1)
        if cfg.checkpoint_every and s.step % cfg.checkpoint_every == 0:
            self.save_last()
        if cfg.eval_every and s.step % cfg.eval_every == 0 and s.batch < fit.n_batches:
            fit.valid_metrics, _ = self.validate()
            self.model.train()

    def _stop_reason(self, fit: _FitPass) -> str:
        """Why to stop after this step ('' to go on): Ctrl-C, a callback, the step budget, the time budget. Under
        data-parallel training rank 0's clock and callbacks decide, and a Ctrl-C on any rank stops all."""
        cfg, s = self.config.train, self.state
        time_up = bool(cfg.max_time and time.perf_counter() - fit.t_start >= cfg.max_time)
        stop_now, asked = fit.interrupted, self._callback_stop
        failed, quit_ = self._callback_error is not None, isinstance(self._callback_error, KeyboardInterrupt)
        if self.dist.enabled:  # (a callback runs on rank 0: what it did reaches every rank here)
            (time_up, asked, failed, quit_), (stop_now,) = self.dist.stop_flags(
                [time_up, asked, failed, quit_], [stop_now]
            )
        fit.callback_failed = failed
        if stop_now or quit_:
            return "interrupted"
        if asked:
            return "callback"
        if self._early_stop:  # a validation every train.eval_every steps ran out of patience
            return "early_stop"
        if cfg.max_steps and s.step >= cfg.max_steps:
            return "max_steps"
        if time_up:
            return "max_time"
        return ""

    def _stop_mid_epoch(self, fit: _FitPass) -> None:
        """A stop mid-epoch: validate so best.pt reflects this work (not on Ctrl-C: the user wants out; not after a
        callback raised), then save where we are - after the validation, so last.pt knows the best a resume must
        beat."""
        self._flush_window(fit.lr, time.perf_counter() - fit.t_window)
        if fit.stop_reason != "interrupted" and not fit.callback_failed and self._validated_step != self.state.step:
            fit.valid_metrics, _ = self.validate()
        self._tick()
        self.save_last()
        self._plot()

    def _summary(self, fit: _FitPass) -> dict[str, Any]:
        """What the training did (what ``rnnkit train --json`` prints); with a test evaluation of best.pt when the
        run ends normally."""
        s, task = self.state, self.task
        wall = time.perf_counter() - fit.t_start
        total_count = fit.total_count * self.dist.world  # every rank trains an equal share
        summary: dict[str, Any] = {
            "run": str(self.run.path),
            "stopped": fit.stop_reason,
            "step": s.step,
            "epoch": s.epoch,
            "wall_s": round(wall, 2),
            f"{task.count_unit}_per_s": round(total_count / max(wall, 1e-9), 1),
            "valid": fit.valid_metrics,
        }
        if self.dist.enabled:
            summary["processes"] = self.dist.world
        if fit.stop_reason == "interrupted":
            summary["resume"] = f"rnnkit train --resume {self.run.path}"
        elif self.config.train.eval_test and "test" in task.splits() and self.dist.is_main and self.run.best.is_file():
            summary["valid_best"], summary["test"] = self.evaluate_best()
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()
            self.tb = None
        self._plot()
        if self._callback_error is not None and not isinstance(self._callback_error, KeyboardInterrupt):
            raise self._callback_error  # raised by a callback told of the test evaluation (all is saved)
        return summary

    def evaluate_best(self) -> tuple[dict[str, float], dict[str, float]]:
        """Load best.pt into the model and evaluate it on test (the figure a paper would report)."""
        best = load_checkpoint(self.run.best, self.device)
        load_weights(self.model, best["model"], self.run.best, self.run.config_file)
        test = self.task.evaluate(self.model, "test")
        if hasattr(self.task, "write_report"):  # e.g. a classifier's confusion-matrix PNG
            self.task.write_report(self.model, "test", self.run.path)
        self._log({"split": "test", "step": best["loop"]["step"], "epoch": best["loop"]["epoch"], **test})
        return best.get("metrics", {}), test

    def _echo_epoch(self, metrics: dict[str, float], lr: float, count: int, wall: float) -> None:
        if not self.echo or not self.dist.is_main:
            return
        s = self.state
        rate = count * self.dist.world / max(wall, 1e-9)
        self.progress.write(
            f"epoch {s.epoch}/{self.config.train.max_epochs}  step {s.step}  lr {lr:.4g}  "
            f"valid {self.task.format_metrics(metrics)}  {rate:,.0f} {self.task.count_unit}/s"
        )

    def _plot(self) -> None:
        if not self.dist.is_main:
            return
        try:
            plot_curves(self.run.read_metrics(), self.run.curves, self.task.metric, title=self.config.recipe)
        except Exception as e:  # a plotting problem must never cost a training run
            self.progress.write(f"warning: could not draw {self.run.curves}: {e}")

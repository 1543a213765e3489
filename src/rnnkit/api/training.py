"""``rnnkit.train``, ``rnnkit.load``, ``rnnkit.tune``, ``rnnkit.recipes``, ``rnnkit.check``: the library's front door.

These functions are what the CLI verbs call (the verbs only parse arguments and print), so a script, a notebook
and the command line train and evaluate through the same code - the run set-up itself lives one layer down, in
``rnnkit.runs.setup``, where the tuner and ``diagnose`` use it too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.api import arguments as arg
from rnnkit.api.run import PathLike, Run
from rnnkit.config import MAX_COUNT, MAX_SEED, Overrides
from rnnkit.errors import ArgumentError, UserError, UserTypeError, UserValueError

Callback = Callable[[dict[str, Any]], Any]


class WorkersFailed(UserError):
    """Distributed training stopped on a user error that its workers already reported (one line each)."""

    reported = True


def _overrides(call: str, overrides: Mapping[str, Any] | None, **budget: Any) -> Overrides:
    """The configuration overrides of a call: ``overrides`` (an ``Overrides`` from the CLI keeps its origins)
    plus the budget arguments, each checked as the CLI checks its option (``max_steps=0`` is an error, as
    ``--max-steps 0`` is) and remembered under the name the user typed, for error messages."""
    from rnnkit.config import split_key

    out = Overrides()
    if overrides is not None and not isinstance(overrides, Mapping):
        raise UserTypeError(
            "overrides", f"must be a dict of 'section.key': value, got {type(overrides).__name__}", call
        )
    for k, v in (overrides or {}).items():
        if not isinstance(k, str):
            raise UserTypeError("overrides", f"keys are 'section.key' strings, got {k!r}", call)
        try:
            split_key(k)
        except UserError as e:
            raise UserValueError("overrides", str(e), call) from None
        out.put(k, v, getattr(overrides, "origins", {}).get(k, f"overrides[{k!r}] = {v!r}"))
    rules: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
        "max_steps": (arg.integer, {"ge": 1, "le": MAX_COUNT}),
        "max_time": (arg.number, {"gt": 0}),
        "max_epochs": (arg.integer, {"ge": 1, "le": MAX_COUNT}),
        "seed": (arg.integer, {"ge": 0, "le": MAX_SEED}),
        "device": (
            arg.text,
            {"pattern": r"auto|cpu|cuda|cuda:\d+|mps", "pattern_doc": "auto, cpu, cuda, cuda:N or mps"},
        ),
    }
    for name, value in budget.items():
        if value is None:
            continue
        check, rule = rules[name]
        check(call, name, value, **rule)
        out.put(f"train.{name}", value, f"{name}={value!r}")
    return out


def _recipe(call: str, recipe: Any) -> None:
    if recipe is not None and not isinstance(recipe, (str, os.PathLike)):
        raise UserTypeError(
            "recipe", f"must be a recipe name, a task name or a path, got {type(recipe).__name__}", call
        )


def train(
    recipe: str | PathLike | None = None,
    *,
    data: Any = None,
    test_data: Any = None,
    data_dir: PathLike | None = None,
    out: PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    max_time: float | None = None,
    max_epochs: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    resume: PathLike | None = None,
    nproc: int | None = None,
    worker_args: Sequence[str] = (),
) -> Run:
    """Train a recipe (or a task on your own data) into a run directory, or resume one; returns the ``Run``.

    Why a run directory: everything a run produces - resolved configuration, metrics, checkpoints, curves - is
    written to files (``RUN/config.toml``, ``metrics.jsonl``, ``checkpoints/``), so it can be resumed exactly,
    evaluated, served and exported later by any process, exactly as ``rnnkit train`` runs are.

    Args:
        recipe: a shipped recipe (``"ptb-small"``, see ``rnnkit.recipes()``), a path to a recipe's .toml file,
            or a task name (``"text-classify"``, ``"forecast"``, ...: that task's defaults). Not needed with
            ``resume``.
        data: your data, in place of the recipe's files (the recipe's other settings stay): a list of
            ``(text, label)`` pairs, a dict of ``"text"``/``"label"`` columns or a pandas DataFrame with those
            columns (text classification); a pandas Series or DataFrame indexed by time, or a list/array of
            numbers (forecasting); ``(X, y)`` with X of shape (examples, steps, channels) (sequence
            classification); ``(source, target)`` pairs (seq2seq); a text or a list of lines (language model).
            It is written into ``RUN/data/`` in the task's file format (recorded in run.json), so the run never
            needs the Python object again.
        test_data: a test split of your own, in ``data``'s form (sequence classification: ``(X_test,
            y_test)``), used untouched as the test split instead of a share held out of ``data``.
        data_dir: a directory the recipe's data paths are relative to, for your own copies of the files
            (default None: each registered data set comes from rnnkit's cache, fetched and verified once, see
            ``rnnkit.datasets``; a resumed run uses what it was trained with).
        out: the new run's directory (default ``runs/RECIPE-YYYYmmdd-HHMMSS``); refused if it holds a trained run.
        overrides: configuration values, ``{"model.hidden": 650, "optim.lr": 0.5}`` - any key of the recipe's
            four sections (see docs/config.md); checked like a recipe's.
        max_steps: stop after this many optimiser steps in total (across resumes); >= 1.
        max_time: stop after this many seconds of this call.
        max_epochs: the number of epochs (train.max_epochs).
        seed: the run's seed (initialisation, dropout, batch order).
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N" or "mps".
        callbacks: callables given every record written to metrics.jsonl (training windows, validations);
            one returning True stops training cleanly, like a max_steps stop (see ``rnnkit.callbacks``, e.g.
            ``EarlyStopping``).
        progress: None shows a progress bar where one can be drawn (a notebook widget in Jupyter, a bar on a
            terminal) and a line per epoch; True forces the bar; False is silent.
        resume: a run directory to continue from its last checkpoint, bit for bit as if it had not stopped
            (``Run.resume`` does this for a Run).
        nproc: data-parallel training on this many local processes (torchrun underneath; not with ``data`` or
            ``callbacks``). Under torchrun, leave it out: every process calls ``train`` alike.
        worker_args: with ``nproc``, extra ``rnnkit train`` flags for the worker processes, whose rank 0 prints
            the summary (the CLI passes its ``--json`` / ``--quiet``); ``progress=False`` adds ``--quiet``.

    Returns:
        ``rnnkit.Run``: ``run.summary`` (how it stopped, best validation, test figures), ``run.metrics``,
        ``run.evaluate(...)``, ``run.classify(...)`` and the other predictions, ``run.resume(...)``.

    Raises:
        rnnkit.errors.UserError: anything you can fix (a bad value, missing data), as one line naming the
        file, line or key. KeyboardInterrupt after Ctrl-C (the checkpoint is saved first).

    Example::

        import rnnkit
        run = rnnkit.train("sms-spam", max_steps=200, out="runs/spam")
        run.summary["test"]["accuracy"]
        run.classify(["WINNER!! Claim your prize now", "see you at lunch"])
        run = rnnkit.train("text-classify", data=[("great film", "pos"), ("dull", "neg"), ...],
                           overrides={"model.hidden": 32}, callbacks=[rnnkit.callbacks.EarlyStopping(patience=3)])
    """
    from rnnkit.distributed import env_world
    from rnnkit.runs.setup import TrainRequest, train_run

    call = "train"
    _recipe(call, recipe)
    arg.directory(call, "data_dir", data_dir, none=True)
    arg.path(call, "out", out, none=True, reachable=True)
    arg.path(call, "resume", resume, none=True, reachable=True)
    if callbacks is None:
        callbacks = ()
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        raise UserTypeError("callbacks", f"must be a list of callables, got {type(callbacks).__name__}", call)
    for i, cb in enumerate(callbacks):
        arg.function(call, f"callbacks[{i}]", cb, none=False)
    if progress is not None:
        arg.flag(call, "progress", progress)
    arg.integer(call, "nproc", nproc, none=True, ge=1, le=MAX_COUNT)
    if isinstance(worker_args, (str, bytes)) or not all(isinstance(a, str) for a in worker_args):
        raise UserTypeError("worker_args", "must be a list of str (command-line flags)", call)
    req = TrainRequest(
        recipe=recipe,
        out=out,
        resume=resume,
        data_dir=data_dir,
        overrides=_overrides(
            call, overrides, max_steps=max_steps, max_time=max_time, max_epochs=max_epochs, seed=seed, device=device
        ),
        data=data,
        test_data=test_data,
        callbacks=list(callbacks),
        progress=progress,
    )
    if nproc is not None and nproc > 1 and env_world()[1] == 1:
        return _launch(req, nproc, progress, worker_args)
    try:
        result = train_run(req)
    except ArgumentError as e:  # an argument found wrong once the run directory was read (out=, recipe=)
        raise e.within(call) from None
    return Run(
        result.run.path,
        summary=result.summary,
        notes=result.notes,
        rank=result.rank,
        data_dir=data_dir if data_dir is not None else None,
    )


def _launch(req: Any, nproc: int, progress: bool | None, worker_args: Sequence[str]) -> Run:
    """``nproc`` local worker processes (torchrun) running ``rnnkit train`` with this request's arguments."""
    import tomli_w

    from rnnkit.distributed.launch import launch_local
    from rnnkit.runs.setup import check_launch

    out = check_launch(req, nproc)
    argv = ["train"] + ([str(req.recipe)] if req.recipe is not None and req.resume is None else [])
    if req.data_dir is not None:
        argv += ["--data-dir", os.fspath(req.data_dir)]
    argv += ["--resume", out] if req.resume is not None else ["--out", out]
    for k, v in req.overrides.items():
        if isinstance(v, dict):
            raise UserError(f"overrides[{k!r}]: a table cannot be passed to worker processes; put it in a recipe")
        argv += ["--set", f"{k}={tomli_w.dumps({'v': v})[4:].strip()}"]
    flags = list(worker_args) + (["--quiet"] if progress is False and "--quiet" not in worker_args else [])
    rc = launch_local(nproc, argv + flags)
    if rc == 130:
        raise KeyboardInterrupt
    if rc == 2:
        raise WorkersFailed("distributed training stopped on the error above")
    if rc != 0:
        raise RuntimeError(f"distributed training failed (exit status {rc}); see the workers' output above")
    done = Run(out)
    done.launched = True  # the workers reported (rank 0 printed the summary)
    return done


def load(path: PathLike, checkpoint: str = "best", device: str = "auto", data_dir: PathLike | None = None) -> Run:
    """Open a run directory - finished or stopped, trained by ``rnnkit.train``, the CLI or the tuner.

    Args:
        path: the run directory (it holds config.toml).
        checkpoint: "best" (the best validated model; falls back to last.pt before any validation) or "last".
        device: where the model runs: "auto", "cpu", "cuda", ...
        data_dir: where the run's data.* paths are read for ``evaluate`` (default: where it was trained).

    The model is loaded on first use. Example::

        run = rnnkit.load("runs/spam")
        run.evaluate("test")          # == rnnkit eval runs/spam --split test --json
    """
    return Run(path, checkpoint=checkpoint, device=device, data_dir=data_dir)


def recipes() -> list[dict[str, str]]:
    """The shipped recipes: ``[{"name": "ptb-small", "description": "..."}, ...]`` (``rnnkit recipes --json``)."""
    from rnnkit.tasks.recipes import list_recipes

    return [{"name": n, "description": d} for n, d in list_recipes()]


def check(
    recipe: str | PathLike | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    resume: PathLike | None = None,
    data_dir: PathLike | None = None,
) -> dict[str, Any]:
    """Check a configuration without training (``rnnkit train --check``): every value is validated and the model
    is built on the meta device (no memory, no data read, nothing written). Returns {"recipe", "task", "ok",
    "model", "parameters", "config"}: ``parameters`` counts the trainable parameters of that model (None where the
    task cannot build one without data); sizes the data decides (a vocabulary, the labels) are placeholders there,
    a few tokens or two labels. A bad value raises UserError naming the key."""
    from rnnkit.runs.setup import TrainRequest, check_request

    _recipe("check", recipe)
    arg.path("check", "resume", resume, none=True, reachable=True)
    arg.directory("check", "data_dir", data_dir, none=True)
    return check_request(
        TrainRequest(recipe=recipe, resume=resume, data_dir=data_dir, overrides=_overrides("check", overrides))
    )


@dataclass
class Study:
    """A hyperparameter search (``rnnkit.tune``): its summary and where its trials are."""

    out: Path  # the study directory: study.db and trials/NNNN (each a run directory)
    summary: dict[str, Any] = field(default_factory=dict)  # best_value, best_params, best_trial, best_run, counts
    storage: str | None = None
    name: str | None = None

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.summary.get("best_params") or {})

    @property
    def best_value(self) -> float | None:
        return self.summary.get("best_value")

    def best_run(self) -> Run | None:
        """The best complete trial's run directory, as a Run (None before any trial completed)."""
        path = self.summary.get("best_run")
        return Run(path) if path else None

    def report(self, plots: bool = True, plots_dir: PathLike | None = None) -> dict[str, Any]:
        """What ``rnnkit tune report --json`` prints: every trial, the best configuration, and the PNGs
        (optimisation history, importances, ...) written into ``plots_dir`` (default: the study directory)."""
        return tune_report(self.storage or str(self.out), study=self.name, plots=plots, plots_dir=plots_dir)


def tune(
    recipe: str,
    *,
    space: PathLike | Mapping[str, Any],
    trials: int,
    out: PathLike | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    storage: str | None = None,
    study: str | None = None,
    timeout: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    max_time: float | None = None,
    device: str | None = None,
    data_dir: PathLike | None = None,
    seed: int | None = None,
    baseline: bool = False,
    resume: bool = False,
    total_trials: int | None = None,
    startup_trials: int | None = None,
    pruner_startup: int | None = None,
    pruner_warmup: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> Study:
    """Search a recipe's configuration with Optuna; every trial is an ordinary run directory trained like
    ``rnnkit.train``, scored by the task's validation metric. Returns a ``Study``.

    Why a study directory: the study lives in ``OUT/study.db`` (or a shared ``storage`` database), so a search
    cut by a kill continues where it stopped when called again, and several workers can share one.

    Args:
        recipe: the recipe to tune (name or .toml path).
        space: the search space: a TOML file, or the same tables as a dict, e.g.
            ``{"model.hidden": {"type": "int", "low": 8, "high": 64, "step": 8},
            "optim.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}}``.
        trials: the number of trials the study holds when done (all calls and workers together).
        out: the study directory (default ``runs/tune-RECIPE``).
        sampler: "tpe", "random", "grid" or "gp". pruner: "median", "halving", "hyperband" or "none".
        storage: a database URL shared by workers (default: SQLite OUT/study.db). study: its name.
        timeout: start no new trial after this many seconds.
        overrides: configuration values fixed in every trial. max_steps, max_time, device: each trial's.
        data_dir: as for ``train``. seed: the sampler's seed.
        baseline: run the recipe's own values of the searched keys as a trial first.
        resume: require an existing study. total_trials: stop once the study holds this many complete +
            pruned trials. startup_trials, pruner_startup, pruner_warmup: the sampler's and pruner's warm-up.
        echo: called with one line per trial (default: silent).

    Example::

        study = rnnkit.tune("sms-spam", space={"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2,
                            "log": True}}, trials=8, max_steps=300, out="runs/tune-spam")
        study.best_params, study.best_run().evaluate("valid")
    """
    from rnnkit.tune.study import TuneOptions, run_study

    call = "tune"
    _recipe(call, recipe)
    if recipe is None:
        raise UserTypeError("recipe", "must be a recipe name or a path, got None", call)
    if not isinstance(space, Mapping):
        arg.path(call, "space", space)
    budget = _overrides(call, overrides, max_steps=max_steps, max_time=max_time, device=device)
    arg.integer(call, "trials", trials, ge=0, le=MAX_COUNT)
    arg.path(call, "out", out, none=True, reachable=True)
    arg.choice(call, "sampler", sampler, ("grid", "random", "tpe", "gp"))
    arg.choice(call, "pruner", pruner, ("none", "median", "halving", "hyperband"))
    arg.text(call, "storage", storage, none=True)
    arg.text(call, "study", study, none=True)
    arg.number(call, "timeout", timeout, none=True, gt=0)
    arg.directory(call, "data_dir", data_dir, none=True)
    arg.integer(call, "seed", seed, none=True, ge=0, le=MAX_SEED)
    arg.flag(call, "baseline", baseline)
    arg.flag(call, "resume", resume)
    for name, value in (
        ("total_trials", total_trials),
        ("startup_trials", startup_trials),
        ("pruner_startup", pruner_startup),
        ("pruner_warmup", pruner_warmup),
    ):
        arg.integer(call, name, value, none=True, ge=0, le=MAX_COUNT)
    arg.function(call, "echo", echo)
    space_arg: Any = os.fspath(space) if not isinstance(space, Mapping) else {}
    if isinstance(space, Mapping):  # {"optim.lr": {...}} as the TOML file's [optim.lr] table: {"optim": {"lr": ...}}
        for key, table in space.items():
            section, dot, name = str(key).partition(".")
            if dot and isinstance(table, Mapping) and "type" in table:
                space_arg.setdefault(section, {})[name] = dict(table)
            else:
                space_arg[str(key)] = table
    opts = TuneOptions(
        recipe=recipe,
        space=space_arg,
        trials=trials,
        sampler=sampler,
        pruner=pruner,
        storage=storage,
        study=study,
        out=os.fspath(out) if out is not None else None,
        timeout=timeout,
        overrides=dict(budget),
        data_dir=os.fspath(data_dir) if data_dir else None,
        seed=seed,
        baseline=baseline,
        resume=resume,
        total_trials=total_trials,
        startup_trials=startup_trials,
        pruner_startup=pruner_startup,
        pruner_warmup=pruner_warmup,
        echo=echo,
    )
    summary = run_study(opts)
    return Study(Path(summary["out"]), summary, storage=storage, name=summary.get("study"))


def tune_report(
    target: PathLike, study: str | None = None, plots: bool = True, plots_dir: PathLike | None = None
) -> dict[str, Any]:
    """A study's trials, best configuration and plots (``rnnkit tune report --json``); ``target`` is the study
    directory or a database URL."""
    from rnnkit.tune.report import report

    if not isinstance(target, (str, os.PathLike)) or not os.fspath(target):
        raise UserTypeError("target", "must be a study directory or a database URL", "tune_report")
    arg.text("tune_report", "study", study, none=True)
    arg.flag("tune_report", "plots", plots)
    arg.path("tune_report", "plots_dir", plots_dir, none=True)
    return report(os.fspath(target), study, os.fspath(plots_dir) if plots_dir is not None else None, plots=plots)


def gradient_flow(
    cells: Sequence[str] = ("rnn_tanh", "lstm", "gru"),
    steps: int = 100,
    hidden: int = 64,
    seed: int = 0,
    plot: PathLike | None = "gradient-flow.png",
) -> dict[str, Any]:
    """How far back a gradient reaches (``rnnkit diagnose gradients``): ``||dL/dh_t||`` of a last-step loss for
    each cell, step by step; drawn into ``plot`` unless None. Returns {cell: [norm per step], "plot": path}."""
    from rnnkit.cells import registry
    from rnnkit.diagnose.gradients import gradient_flow as flow
    from rnnkit.diagnose.gradients import plot_gradient_flow
    from rnnkit.figures import output_file

    call = "gradient_flow"
    _, names = arg.texts(call, "cells", cells) if cells else (False, [])
    bad = [c for c in names if c not in registry.names()]
    if not names:
        raise UserValueError("cells", f"names no cell; choose from {', '.join(registry.names())}", call)
    if bad:
        raise UserValueError(
            "cells", f"unknown cell(s) {', '.join(bad)}; choose from {', '.join(registry.names())}", call
        )
    arg.integer(call, "steps", steps, ge=2, le=100_000)
    arg.integer(call, "hidden", hidden, ge=1, le=65_536)
    arg.integer(call, "seed", seed, ge=0, le=MAX_SEED)
    if plot is not None:
        output_file(arg.path(call, "plot", plot), "plot", call)
    result: dict[str, Any] = dict(flow(cells=tuple(names), steps=steps, hidden=hidden, seed=seed))
    if plot is not None:
        plot_gradient_flow(result, plot)
        return {"plot": os.fspath(plot), **result}
    return result

"""The one run set-up: everything between "train this" and the Trainer's first step, written once.

``rnnkit.train`` (and so ``rnnkit train``), the tuner's trials and ``diagnose --data-sizes``' copies all start
their runs here, so they choose the device, resolve ``train.precision = "auto"``, lock the run directory, build
the task and the Trainer and write ``config.toml`` / ``run.json`` / ``summary.json`` the same way. The order
matters and is kept: the Trainer's set-up (the run directory's lock, the data, the checkpoint checked against
the configuration) runs *before* config.toml and run.json are (re)written, so a refused start or resume leaves
the run directory exactly as it was.

run.json (one schema, ``RUN_JSON_SCHEMA``) - how the run was started; a resume updates it:
    schema, recipe, task, data_dir (the directory data.* paths were read from, or null: rnnkit's data cache),
    data {field: {path, from, dataset, ...}} (where each data file came from: rnnkit.datasets.resolve),
    device, processes, threads, precision (what ran), precision_requested, precision_reason,
    recurrence {policy, from, configured} (train.recurrence as resolved: "from" says whether the configuration or
    the RNNKIT_RECURRENCE environment variable set it),
    rnnkit, torch, python, started (first start, ISO time), updated (last start), command (the CLI's argv or null),
    materialised (in-memory data written into RUN/data; see rnnkit.runs.memory) - only when data= was given,
    tune {study, trial, params} - tuner trials only; data_size_of, train_fraction - diagnose copies only.
summary.json - the summary of the run's last training invocation (what ``rnnkit train --json`` prints).
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit import datasets
from rnnkit.config import RunConfig
from rnnkit.datasets import data_dir_option
from rnnkit.errors import UserError, UserValueError, is_file
from rnnkit.paths import recipes_dir
from rnnkit.runs import memory
from rnnkit.runs.load import run_data_dir
from rnnkit.tasks import Task, get_task, task_names
from rnnkit.tasks.recipes import config_from_dict, load_recipe, reresolve
from rnnkit.train.rundir import RunDir

RUN_JSON_SCHEMA = 1
Callback = Callable[[dict[str, Any]], Any]


@dataclass
class TrainRequest:
    """What to train: a new run (``recipe``, ``out``) or a resumed one (``resume``), and how."""

    recipe: str | Path | RunConfig | None = None  # recipe name, .toml path, a task name (its defaults), a config
    out: str | Path | None = None  # new run: its directory (default runs/RECIPE-TIMESTAMP)
    resume: str | Path | None = None  # the run directory to continue
    data_dir: str | Path | None = None  # where data.* paths are read (default: recorded, or rnnkit's data cache)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # section.key -> value (an Overrides keeps origins)
    data: Any = None  # in-memory data, written into RUN/data (rnnkit.runs.memory)
    test_data: Any = None  # an in-memory test split, written beside it
    callbacks: Sequence[Callback] = ()  # see rnnkit.callbacks
    progress: bool | None = None  # None: a bar where one can be drawn and a line per epoch; False: silent
    meta: Mapping[str, Any] = field(default_factory=dict)  # extra run.json keys (tuner trial, diagnose copy)
    command: list[str] | None = None  # the command line that started it, for run.json


@dataclass
class TrainResult:
    run: RunDir
    config: RunConfig
    task: Task
    summary: dict[str, Any]
    notes: list[str]  # things to tell the user (a stale lock taken over, nothing left to train)
    rank: int = 0  # this process's rank (distributed); only rank 0 wrote the run directory
    best: float | None = None  # the best validation metric of the run (the loop's record)


def resolve_recipe(recipe: str | Path | RunConfig, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """A recipe (shipped name or .toml path) - or a task name, meaning that task's defaults, or a resolved
    configuration - resolved with ``overrides``. Recipes win over task names (``parity`` is both)."""
    if isinstance(recipe, RunConfig):
        return config_from_dict(recipe.to_dict(), f"recipe {recipe.recipe}", overrides)
    name = str(recipe)
    if (
        Path(name).suffix == ".toml"
        or is_file(name, "recipe")
        or (recipes_dir() / f"{name}.toml").is_file()
        or name not in task_names()
    ):
        return load_recipe(name, overrides)
    return config_from_dict({"task": name, "recipe": name}, f"task {name}", overrides)


def default_out(recipe: str) -> Path:
    return Path("runs") / f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"


def _command() -> list[str] | None:
    """The CLI's argv when this process is ``rnnkit ...`` or ``python -m rnnkit ...``, else None (the API)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and (argv0.name == "rnnkit" or argv0.parent.name == "rnnkit"):
        return sys.argv[1:]
    return None


def open_request(req: TrainRequest) -> tuple[RunConfig, RunDir, Path | None, dict[str, Any]]:
    """(configuration, run directory, data directory, run.json so far) of a request; checks, writes nothing."""
    overrides = req.overrides or {}
    if req.resume is not None:
        run = RunDir(Path(req.resume)).require()
        if not run.last.is_file():
            raise UserError(f"{run.path}: nothing to resume (no checkpoints/last.pt)")
        if req.data is not None or req.test_data is not None:
            raise UserError(f"{run.path}: a resumed run trains on the data it started with; leave out data=")
        if req.out is not None and Path(req.out).absolute() != run.path.absolute():
            raise UserValueError(
                "out",
                f"{req.out}: a resumed run stays in its own directory ({run.path}); leave it out, or train a new run",
            )
        config = run.read_config(overrides)
        if isinstance(req.recipe, (str, Path)) and str(req.recipe) not in (config.recipe, str(run.path)):
            raise UserValueError(
                "recipe",
                f"{str(req.recipe)!r}: {run.path} was trained with recipe {config.recipe!r}, and a resumed run keeps "
                f"its configuration (changed only by overrides of its values); leave the recipe out",
            )
        return config, run, run_data_dir(run, req.data_dir), run.read_meta()
    if not req.recipe:
        raise UserError("train: name a recipe (see rnnkit.recipes()) or a task, or resume a run directory")
    if req.test_data is not None and req.data is None:
        raise UserError("test_data= goes with data= (your own training data); give both")
    config = resolve_recipe(req.recipe, overrides)
    out = Path(req.out) if req.out else default_out(config.recipe)
    run = RunDir(out)
    if is_file(run.last, "run directory") or run.best.is_file():
        raise UserError(
            f"{out} already holds a trained run; continue it (resume=...) or choose another directory (out=...)"
        )
    return config, run, data_dir_option(req.data_dir), {}  # a missing --data-dir fails before anything is written


def train_run(req: TrainRequest) -> TrainResult:
    """Start or resume one run and train it until its budget, a callback or Ctrl-C stops it."""
    import torch

    from rnnkit.distributed import init_from_env, shutdown
    from rnnkit.ops.device import pick_device
    from rnnkit.train.loop import Trainer
    from rnnkit.train.precision import resolve_precision
    from rnnkit.train.progress import Progress
    from rnnkit.version import __version__

    config, run, data_dir, meta = open_request(req)
    resume = req.resume is not None
    device = pick_device(config.train.device)
    # "auto" becomes the concrete choice in config.toml - here, and nowhere else - so a resume trains the same way
    requested = config.train.precision
    config.train.precision, precision_reason = resolve_precision(requested, device)
    dist, device = init_from_env(device)  # a no-op outside torchrun
    main = dist.is_main
    if req.data is not None and dist.enabled:
        raise UserError("in-memory data (data=...) trains in one process; write it to files to train in several")
    trainer: Trainer | None = None
    notes: list[str] = []
    materialised = False
    idle: tuple[str, str] | None = None
    datasets.set_progress(None if req.progress is not False and main else False)  # a fetch's bar: on a TTY
    datasets.drain_log()
    try:
        if main:  # held from here: in-memory data is written into the directory under the lock
            note = run.lock()
            if note:
                notes.append(note)
        if req.data is not None:
            overrides, record = memory.materialise(req.data, run.path, config, req.test_data)
            materialised = True
            config = reresolve(config, f"data= ({record['from']})", overrides)
            data_dir = run.path
            meta["materialised"] = record
        task = get_task(config.task)(config, data_dir, device)
        show = req.progress is not False and main
        trainer = Trainer(
            task,
            config,
            run,
            device,
            Progress(enabled=None if req.progress is None else req.progress) if show else Progress(enabled=False),
            echo=show,
            callbacks=req.callbacks,
            dist=dist,
        )
        try:
            # takes the run's lock (re-entrant), then checks the data and the checkpoint against the configuration;
            # only then are config.toml and run.json (re)written, so a refused resume leaves them as they were
            trainer.setup(resume=resume)
        except ValueError as e:  # an optimiser or model refusing the values (the tuner's samples can)
            raise UserError(f"cannot build this configuration: {e}") from None
        # a resume with nothing left to do (its budget reached, all epochs done, stopped early) trains no step
        # and writes nothing: config.toml, run.json and summary.json stay as they were, byte for byte
        idle = trainer.nothing_to_do() if resume else None
        if main and idle is None:
            if task.choices and show:
                trainer.progress.write(task.choices.line())
            run.write_config(config)
            now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            meta.setdefault("precision_requested", requested)
            meta.setdefault("started", now)
            meta.update(
                {
                    "schema": RUN_JSON_SCHEMA,
                    "recipe": config.recipe,
                    "task": config.task,
                    "data_dir": str(Path(data_dir).resolve()) if data_dir is not None else None,
                    "device": str(device),
                    "processes": dist.world,
                    "threads": torch.get_num_threads(),
                    "precision": config.train.precision,
                    "precision_reason": precision_reason,
                    "recurrence": task.recurrence.record(),
                    "rnnkit": __version__,
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                    "updated": now,
                    "command": req.command if req.command is not None else _command(),
                    **dict(req.meta),
                }
            )
            if task.choices:  # what the task chose from the data, and why (the values are in config.toml)
                meta["chosen"] = {**meta.get("chosen", {}), **task.choices.as_dict()}
            # where each data file came from (resolved while the task prepared its data in setup)
            meta["data"] = {**meta.get("data", {}), **datasets.drain_log()}
            run.write_meta(meta)
    except BaseException:
        if trainer is not None:
            trainer.close()
        if materialised and not resume and not run.config_file.is_file():
            memory.remove(run.path)
        while run.locked:
            run.unlock()
        shutdown()
        raise
    assert trainer is not None
    try:
        summary = trainer.fit()
    except BaseException:
        trainer.wrap_up()  # pruned, diverged, a callback's exception: event files closed, curves drawn
        raise
    finally:
        trainer.close()
        while run.locked:
            run.unlock()
        shutdown()
    if main and idle is None:
        note = task.summary_note()
        if note:
            summary["note"] = note
        run.write_summary(summary)
    return TrainResult(run, config, task, summary, notes + trainer.notes, dist.rank, trainer.state.best)


def check_request(req: TrainRequest) -> dict[str, Any]:
    """``rnnkit train --check``: resolve the configuration (every value checked) and build the task's model on the
    meta device from placeholder artifacts - what a run would refuse at start-up, without reading data or
    writing anything."""
    import torch

    if req.resume is not None:
        config = RunDir(Path(req.resume)).require().read_config(req.overrides or {})
    elif req.recipe:
        config = resolve_recipe(req.recipe, req.overrides or {})
    else:
        raise UserError("train: name a recipe (see rnnkit.recipes()) or a task, or resume a run directory")
    task = get_task(config.task)(config, Path(req.data_dir) if req.data_dir else None, torch.device("cpu"))
    artifacts = task.placeholder_artifacts()
    model_name, parameters = None, None
    if artifacts is not None:
        task.load_artifacts(artifacts)
        with torch.device("meta"):  # shapes only: no memory, however large the sizes
            model = task.build_model()
        model_name = type(model).__name__
        parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "recipe": config.recipe,
        "task": config.task,
        "ok": True,
        "model": model_name,
        "parameters": parameters,
        "config": config.to_dict(),
    }


def check_launch(req: TrainRequest, nproc: int) -> str:
    """Before starting ``nproc`` local processes: what can be checked here (one clear error instead of N).
    Returns the run directory the workers will write (one name for every rank)."""
    import torch

    from rnnkit.ops.device import pick_device

    if req.data is not None or req.callbacks:
        raise UserError(
            "nproc > 1 starts worker processes, which cannot take in-memory data or callbacks; "
            "train in one process, or write the data to files"
        )
    if req.resume is not None:
        config = RunDir(Path(req.resume)).require().read_config(req.overrides or {})
        out = str(req.resume)
        data_dir = run_data_dir(RunDir(Path(req.resume)), req.data_dir)
    else:
        if not req.recipe:
            raise UserError("train: name a recipe (see rnnkit.recipes()) or a task, or resume a run directory")
        config = resolve_recipe(req.recipe, req.overrides or {})
        out = str(req.out or default_out(config.recipe))
        data_dir = data_dir_option(req.data_dir)
    gpus = torch.cuda.device_count()
    if pick_device(config.train.device).type == "cuda" and nproc > gpus:
        raise UserError(f"nproc=... {nproc}: only {gpus} GPU(s) here, and each process needs its own")
    get_task(config.task)(config, data_dir, pick_device("cpu")).shard(0, nproc)
    return out

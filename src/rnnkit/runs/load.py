"""Opening a finished (or running) run directory for evaluation, generation, serving and export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.config import RunConfig
from rnnkit.errors import UserError
from rnnkit.ops.device import pick_device
from rnnkit.tasks import Task, get_task
from rnnkit.train.checkpoint import check_task, load_checkpoint, load_weights
from rnnkit.train.rundir import RunDir


def run_data_dir(run: RunDir, given: str | Path | None = None) -> Path | None:
    """Where a run's ``data.*`` paths are read from: the directory given (``--data-dir``), else the run directory
    itself for data materialised into it (``rnnkit.train(..., data=...)``: wherever the run has been moved), else
    the data directory recorded in run.json when it was trained (if it still exists; None: rnnkit's data cache,
    see rnnkit.datasets.resolve)."""
    from rnnkit.datasets import data_dir_option

    if given is not None:
        return data_dir_option(given)
    meta = run.read_meta()
    if meta.get("materialised"):
        return run.path
    return data_dir_option(meta.get("data_dir"), recorded=True)


@dataclass
class LoadedRun:
    run: RunDir
    config: RunConfig
    task: Task
    model: nn.Module
    checkpoint: dict[str, Any]


def load_run(
    path: str | Path, which: str = "best", device: str = "auto", data_dir: str | Path | None = None
) -> LoadedRun:
    """Rebuild task and model from ``RUN/config.toml`` and a checkpoint (``best``, falling back to ``last``)."""
    run = RunDir(Path(path)).require()
    config = run.read_config()
    ckpt_path = run.best if which == "best" else run.last
    if which == "best" and not ckpt_path.is_file():
        ckpt_path = run.last
    if not ckpt_path.is_file():
        raise UserError(f"{run.path}: no checkpoint yet (checkpoints/{which}.pt)")
    dev = pick_device(device)
    ckpt = load_checkpoint(ckpt_path, dev)
    check_task(ckpt, config.task, ckpt_path)
    task = get_task(config.task)(config, run_data_dir(run, data_dir), dev)
    try:
        task.load_artifacts(ckpt["artifacts"])
    except (KeyError, TypeError, ValueError, IndexError) as e:  # plain data read from a file someone changed
        raise UserError(f"{ckpt_path}: its artifacts (vocabulary, labels, scalers) are damaged ({e!r})") from None
    model = task.build_model().to(dev)
    load_weights(model, ckpt["model"], ckpt_path, run.config_file)
    if hasattr(model, "rnn") and hasattr(model.rnn, "flatten_parameters"):
        model.rnn.flatten_parameters()
    model.eval()
    return LoadedRun(run, config, task, model, ckpt)


def fresh_task(loaded: LoadedRun) -> Task:
    """A task of the run with its checkpoint's artifacts and no data read: for evaluating new data without
    disturbing the splits the loaded task holds (``Task.evaluate_data``)."""
    task = get_task(loaded.config.task)(loaded.config, loaded.task.data_dir, loaded.task.device)
    task.load_artifacts(loaded.checkpoint["artifacts"])
    return task

"""Run directories as a whole: starting, resuming and opening them - the layer the API, the CLI, the tuner and
``diagnose`` share.

* ``setup.train_run``: the one run set-up (configuration, device, precision, in-memory data, the lock, the Trainer,
  config.toml / run.json / summary.json); ``rnnkit.train`` and ``rnnkit train`` are front ends to it, the tuner
  trains its trials and ``diagnose --data-sizes`` its copies with it.
* ``load.load_run``: a trained run's task and model, for evaluation, prediction, serving and export.
* ``memory``: in-memory data (Python lists, numpy arrays, pandas objects) written into a run directory in the
  task's own file format, so the run never needs the Python objects again.
"""

from rnnkit.runs.load import LoadedRun, fresh_task, load_run, run_data_dir

__all__ = ["LoadedRun", "fresh_task", "load_run", "run_data_dir"]

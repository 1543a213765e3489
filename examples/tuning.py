"""Hyperparameter search with Optuna (TPE): every trial is an ordinary run directory, the study resumable.

python examples/tuning.py
"""

import os

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # None: rnnkit's data cache (fetched once, verified)

space = {
    "optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "model.hidden": {"type": "int", "low": 16, "high": 64, "step": 16},
}
settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.embedding": 16, "train.log_every": 5})

study = rnnkit.tune(
    "sms-spam",
    space=space,
    trials=2 if QUICK else 12,
    max_steps=15 if QUICK else 600,
    overrides=settings,
    data_dir=DATA,
    out="runs/tune-sms-spam",
    echo=print,
)
print("best:", study.best_value, study.best_params)
best = study.best_run()
print("its validation accuracy:", round(best.evaluate("valid")["accuracy"], 4))

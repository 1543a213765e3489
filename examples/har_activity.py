"""Human activity recognition from raw phone sensor signals (UCI HAR: 9 channels x 128 steps), a stacked LSTM.

python examples/har_activity.py
"""

import os

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # None: rnnkit's data cache (fetched once, verified)

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.hidden": 16, "model.layers": 1, "train.log_every": 5})

# the full UCI HAR set (fetched once); the toy run takes the 2,400-window subset
run = rnnkit.train("har-subset" if QUICK else "har", data_dir=DATA, overrides=settings, max_steps=15 if QUICK else None)
print("test accuracy:", round(run.summary["test"]["accuracy"], 4))
metrics, png = run.report("test")  # per-class precision / recall, and the confusion matrix as a PNG
for label in metrics["confusion"]["labels"]:
    print(f"{label:<20} recall {metrics['recall'][label]:.2f}")
print("confusion matrix:", png)

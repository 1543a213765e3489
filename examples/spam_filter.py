"""An SMS spam filter trained from a Python list of (text, label) pairs, stopped early by a callback.

The data could come from anywhere (a database, an API): here it is the UCI SMS Spam Collection read by hand.
The sms-spam recipe supplies the model and the training settings; your data replaces its files.

    python examples/spam_filter.py
"""

import os
from pathlib import Path

import rnnkit
from rnnkit.callbacks import EarlyStopping

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # a folder laid out like rnnkit's data cache; None: the cache
RELPATH = "sms-spam/SMSSpamCollection"
source = Path(DATA) / RELPATH if DATA else rnnkit.datasets.files("sms-spam")[RELPATH]  # fetched once, verified

pairs = []
for line in source.read_text(encoding="utf-8").splitlines():
    label, text = line.split("\t", 1)
    pairs.append((text, label))
if QUICK:
    pairs = pairs[:800]

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.embedding": 16, "model.hidden": 16, "train.log_every": 5})


def show(record: dict) -> None:  # any callable sees every record; this one prints the validations
    if record.get("split") == "valid":
        print(f"step {record['step']}: valid accuracy {record['accuracy']:.3f}")


run = rnnkit.train(
    "sms-spam",
    data=pairs,
    overrides=settings,
    max_steps=40 if QUICK else None,
    callbacks=[show, EarlyStopping(metric="macro_f1", patience=3)],
)
print(run.summary["stopped"], "- test accuracy:", round(run.summary["test"]["accuracy"], 4))
for r in run.classify(["WINNER!! You have won a 1000 cash prize, call 09061701461 now", "See you at lunch?"]):
    print(f"{r['label']:>5} {r['probability']:.2f}  {r['text']}")

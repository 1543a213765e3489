"""Sentence sentiment from a pandas DataFrame (text + label columns): a bidirectional GRU with attention pooling.

    python examples/sentiment.py
"""

import os
from pathlib import Path

import pandas as pd

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = Path(os.environ.get("RNNKIT_EXAMPLES_DATA") or "data")

frames = [pd.read_csv(DATA / "sentiment" / f"{name}_labelled.txt", sep="\t", names=["text", "label"], quoting=3)
          for name in ("amazon_cells", "imdb", "yelp")]
reviews = pd.concat(frames, ignore_index=True).dropna()
reviews["label"] = reviews["label"].map({0: "negative", 1: "positive"})

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.embedding": 16, "model.hidden": 16, "train.log_every": 5})

run = rnnkit.train("sentiment", data=reviews, overrides=settings, max_steps=30 if QUICK else None)
print("test accuracy:", round(run.summary["test"]["accuracy"], 4))
print(run.metrics.query("split == 'valid'")[["step", "accuracy", "macro_f1"]].to_string(index=False))
print(run.classify("The food was wonderful and the staff were kind")["label"])

"""Sentence sentiment from a pandas DataFrame (text + label columns): a bidirectional GRU with attention pooling.

python examples/sentiment.py
"""

import os
from pathlib import Path

import pandas as pd

import rnnkit

QUICK = os.environ.get("RNNKIT_EXAMPLES_QUICK") == "1"
DATA = os.environ.get("RNNKIT_EXAMPLES_DATA")  # a folder laid out like rnnkit's data cache; None: the cache
files = {f"sentiment/{name}_labelled.txt": None for name in ("amazon_cells", "imdb", "yelp")}
for rel in files:
    files[rel] = Path(DATA) / rel if DATA else rnnkit.datasets.files("sentiment-sentences")[rel]

frames = [pd.read_csv(path, sep="\t", names=["text", "label"], quoting=3) for path in files.values()]
reviews = pd.concat(frames, ignore_index=True).dropna()
reviews["label"] = reviews["label"].map({0: "negative", 1: "positive"})

settings = {"train.tensorboard": False}
if QUICK:
    settings.update({"model.embedding": 16, "model.hidden": 16, "train.log_every": 5})

run = rnnkit.train("sentiment", data=reviews, overrides=settings, max_steps=30 if QUICK else None)
print("test accuracy:", round(run.summary["test"]["accuracy"], 4))
print(run.metrics.query("split == 'valid'")[["step", "accuracy", "macro_f1"]].to_string(index=False))
print(run.classify("The food was wonderful and the staff were kind")["label"])
